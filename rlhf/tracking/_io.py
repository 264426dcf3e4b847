"""Low-level MLflow writes shared by the recipe and stage trackers.

Everything goes through ``client.log_batch`` in chunks no larger than MLflow's per-request limits
(100 params or tags, 1000 metrics), never one call per value. MLflow is imported inside the
functions so that importing :mod:`rlhf.tracking` stays cheap.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rlhf.errors import UserError
from rlhf.tracking.params import MAX_TAG_VALUE, clip, redact, safe_key, to_params

MAX_PARAMS_PER_BATCH = 100  # mlflow.utils.validation.MAX_PARAMS_TAGS_PER_BATCH
MAX_METRICS_PER_BATCH = 1000  # mlflow.utils.validation.MAX_METRICS_PER_BATCH
STATUSES = ("FINISHED", "FAILED", "KILLED")


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_status(status: str) -> str:
    """Upper-cased ``status`` if it is a terminal MLflow run status, else ``ValueError``."""
    upper = str(status).upper()
    if upper not in STATUSES:
        raise ValueError(f"run status must be one of {', '.join(STATUSES)}, got {status!r}")
    return upper


def as_float(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` when it is not numeric or not finite.

    Accepts Python and NumPy numbers and one-element tensors/arrays (via ``.item()``); strings
    are not numbers here, even ``"1.0"``."""
    if isinstance(value, (str, bytes)):
        return None
    if not isinstance(value, numbers.Real) and hasattr(value, "item"):
        try:
            value = value.item()
        except (TypeError, ValueError, RuntimeError):
            return None
    if not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def now_ms() -> int:
    """Wall-clock time in milliseconds, MLflow's timestamp unit."""
    return int(time.time() * 1000)


def log_params(client: Any, run_id: str, params: Mapping[str, Any]) -> int:
    """Log ``params`` (flattened and redacted here) on ``run_id``; return how many were new.

    Keys already logged with the same value are skipped, so re-logging a config on ``--resume``
    is fine. A key logged before with a different value raises :class:`UserError` before anything
    is written (MLflow params are immutable; a changed config belongs in a new run)."""
    from mlflow.entities import Param

    flat = to_params(params)
    existing = client.get_run(run_id).data.params
    changed = {k: (existing[k], v) for k, v in flat.items() if k in existing and existing[k] != v}
    if changed:
        shown = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(changed.items()))
        raise UserError(
            f"run {run_id} already has different values for {len(changed)} param(s): {shown}. "
            "Resume with the same config, or start a new run."
        )
    new = [Param(k, v) for k, v in sorted(flat.items()) if k not in existing]
    for part in chunks(new, MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=list(part))
    return len(new)


def tag_entities(tags: Mapping[str, Any]) -> list[Any]:
    """``RunTag`` entities: valid keys, string values clipped to 8000 chars, secrets redacted."""
    from mlflow.entities import RunTag

    clean = redact({safe_key(k) if not k.startswith("mlflow.") else k: v for k, v in tags.items()})
    return [RunTag(k, clip(str(v), MAX_TAG_VALUE)) for k, v in sorted(clean.items())]


def set_tags(client: Any, run_id: str, tags: Mapping[str, Any]) -> None:
    """Set ``tags`` on ``run_id`` in batches of at most 100."""
    for part in chunks(tag_entities(tags), MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, tags=list(part))


def create_run(client: Any, experiment_id: str, run_name: str, tags: Mapping[str, Any]) -> str:
    """Create a run with ``tags`` and return its id."""
    tag_dict = {t.key: t.value for t in tag_entities(tags)}
    return client.create_run(experiment_id, run_name=run_name, tags=tag_dict).info.run_id


def reopen_run(client: Any, run_id: str) -> Any:
    """Fetch run ``run_id``, undelete it if needed, and mark it RUNNING; return the run.

    An unknown id is a :class:`UserError` (a wrong ``--resume`` id or a different store)."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        raise UserError(
            f"MLflow run {run_id!r} was not found in {client.tracking_uri}: check the run id "
            "and that the same tracking store is used"
        ) from err
    if run.info.lifecycle_stage == "deleted":
        client.restore_run(run_id)
    client.update_run(run_id, status="RUNNING")
    return run


def load_history(client: Any, run: Any) -> dict[str, list[tuple[int, float]]]:
    """Every metric of ``run`` as ``{key: [(step, value), ...]}`` in step order."""
    history: dict[str, list[tuple[int, float]]] = {}
    for key in sorted(run.data.metrics):
        points = client.get_metric_history(run.info.run_id, key)
        ordered = sorted(points, key=lambda m: (m.step, m.timestamp))
        history[key] = [(int(m.step), float(m.value)) for m in ordered]
    return history
