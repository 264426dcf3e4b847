"""MLflow tracking of a recipe run: one parent run per recipe run, one child run per stage.

Everything goes through an explicit :class:`~mlflow.tracking.MlflowClient` (no ``mlflow.start_run``
global state), so several trackers, on one store or several, can live in one process.

Typical use::

    tracker = RecipeTracker(None, experiment="asr-dapo", run_name="dapo-tiny",
                            tags={"rlhf.reward_fingerprint": reward_fingerprint(terms)})
    tracker.start()                       # or start(resume_run_id=...) on --resume
    tracker.log_params(recipe_dict)       # flattened, redacted, batched
    with tracker.stage("dapo", kind="dapo") as stage:
        stage.log_metrics({"train/loss": 0.7, "train/reward": 0.1}, step=1)   # buffered
    tracker.end()

A disabled tracker (``enabled=False``) touches no store and no file; its methods do nothing and
its run ids are ``None``, so calling code never branches on whether tracking is on.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlhf.errors import UserError
from rlhf.tracking import _io
from rlhf.tracking.fingerprint import git_commit
from rlhf.tracking.params import safe_key
from rlhf.tracking.plots import plot_curves
from rlhf.tracking.store import artifact_root, get_or_create_experiment, make_client, resolve_uri

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
STAGE_TAG = "rlhf.stage"
STAGE_KIND_TAG = "rlhf.stage_kind"
COMMIT_TAG = "rlhf.toolkit_commit"
PLOTS_DIR = "plots"
DEFAULT_FLUSH_EVERY = 200


def _exit_status(exc_type: type[BaseException] | None) -> str:
    if exc_type is None:
        return "FINISHED"
    return "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"


class StageTracker:
    """One stage's child run: buffered metrics, params, tags, artifacts, and curves at close.

    ``log_metrics`` keeps values in memory and writes them with one ``client.log_batch`` per
    ``flush_every`` metrics (and on :meth:`flush`/:meth:`close`). Non-numeric and non-finite
    values are skipped and counted in :attr:`skipped`. :attr:`history` holds every logged point
    (``{key: [(step, value), ...]}``, including a resumed run's earlier points) for the plots.
    With ``client=None`` (tracking disabled) only :attr:`history` is kept.
    """

    def __init__(
        self,
        client: Any,
        run_id: str | None,
        name: str,
        kind: str,
        flush_every: int = DEFAULT_FLUSH_EVERY,
        history: dict[str, list[tuple[int, float]]] | None = None,
        parent_run_id: str | None = None,
    ) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self._client = client
        self._run_id = run_id
        self.name = name
        self.kind = kind
        self.flush_every = flush_every
        self.history: dict[str, list[tuple[int, float]]] = history or {}
        self.parent_run_id = parent_run_id
        self.parent_metrics: dict[str, float] = {}
        """What :meth:`log_parent_metrics` recorded (kept when tracking is disabled, too)."""
        self.skipped = 0
        self._buffer: list[Any] = []
        self._closed = False

    @property
    def run_id(self) -> str | None:
        """The child run's id (``None`` when tracking is disabled)."""
        return self._run_id

    @property
    def enabled(self) -> bool:
        return self._client is not None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """How many metric values wait in the buffer."""
        return len(self._buffer)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> int:
        """Record ``metrics`` at ``step``; return how many values were kept.

        Values may be Python/NumPy numbers or one-element tensors; others, and NaN/inf, are
        skipped. Keys are made valid MLflow names (``train/loss`` stays as is)."""
        self._check_open()
        step = int(step)
        timestamp = _io.now_ms()
        kept = 0
        for key, raw in metrics.items():
            value = _io.as_float(raw)
            if value is None:
                self.skipped += 1
                continue
            key = safe_key(key)
            self.history.setdefault(key, []).append((step, value))
            if self._client is not None:
                from mlflow.entities import Metric

                self._buffer.append(Metric(key, value, timestamp, step))
            kept += 1
        if len(self._buffer) >= self.flush_every:
            self.flush()
        return kept

    def log_parent_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> int:
        """Record ``metrics`` on the recipe's PARENT run (not this stage's child run), at once.

        For results that compare stages and belong to the whole recipe run, e.g. an evaluation
        stage's ``eval/<model>/<metric>``. Values are filtered as in :meth:`log_metrics` and kept
        in :attr:`parent_metrics`; nothing is written when tracking is disabled or the stage has
        no parent run. Returns how many values were kept."""
        self._check_open()
        timestamp = _io.now_ms()
        kept = 0
        batch: list[Any] = []
        for key, raw in metrics.items():
            value = _io.as_float(raw)
            if value is None:
                self.skipped += 1
                continue
            key = safe_key(key)
            self.parent_metrics[key] = value
            kept += 1
            if self._client is not None and self.parent_run_id is not None:
                from mlflow.entities import Metric

                batch.append(Metric(key, value, timestamp, int(step)))
        for part in _io.chunks(batch, _io.MAX_METRICS_PER_BATCH):
            self._client.log_batch(self.parent_run_id, metrics=list(part))
        return kept

    def flush(self) -> None:
        """Write the buffered metrics (one ``log_batch`` per 1000 values)."""
        if self._client is None or not self._buffer:
            return
        buffer, self._buffer = self._buffer, []
        for part in _io.chunks(buffer, _io.MAX_METRICS_PER_BATCH):
            self._client.log_batch(self._run_id, metrics=list(part))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params (nested dicts are flattened, secrets redacted); see :func:`_io.log_params`."""
        if self._client is not None:
            _io.log_params(self._client, self._run_id, params)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags on the stage run (values become strings)."""
        if self._client is not None:
            _io.set_tags(self._client, self._run_id, tags)

    def log_artifact(self, path: Path | str, artifact_path: str | None = None) -> None:
        """Copy a file (or a whole folder) into the run's artifacts, under ``artifact_path``."""
        if self._client is None:
            return
        path = Path(path)
        if path.is_dir():
            self._client.log_artifacts(self._run_id, str(path), artifact_path)
        else:
            self._client.log_artifact(self._run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store ``text`` as the artifact ``artifact_file`` (a run-relative path)."""
        if self._client is not None:
            self._client.log_text(self._run_id, text, artifact_file)

    def log_dict(self, obj: Mapping[str, Any], artifact_file: str) -> None:
        """Store ``obj`` as JSON, or YAML when ``artifact_file`` ends in ``.yaml``/``.yml``."""
        if self._client is not None:
            self._client.log_dict(self._run_id, dict(obj), artifact_file)

    def log_plots(self) -> list[str]:
        """Draw :attr:`history` (see :func:`plot_curves`) and log the PNGs under ``plots/``;
        return their artifact paths."""
        if self._client is None:
            return []
        with tempfile.TemporaryDirectory(prefix="rlhf-plots-") as tmp:
            paths = plot_curves(self.history, tmp)
            if paths:
                self._client.log_artifacts(self._run_id, tmp, PLOTS_DIR)
            return [f"{PLOTS_DIR}/{p.name}" for p in paths]

    def close(self, status: str = "FINISHED", plots: bool = True) -> None:
        """Flush, log the curves under ``plots/``, and end the run with ``status``.

        Closing twice is harmless. A plotting failure is logged, never raised, so it cannot hide
        the stage's real outcome."""
        status = _io.check_status(status)
        if self._closed:
            return
        self._closed = True
        if self._client is None:
            return
        try:
            self.flush()
            if plots:
                try:
                    self.log_plots()
                except Exception:  # noqa: BLE001 - plots are a convenience, not the result
                    log.warning("could not plot the curves of stage %r", self.name, exc_info=True)
        finally:
            self._client.set_terminated(self._run_id, status=status)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"stage {self.name!r} is closed; open a new stage to log more")

    def __enter__(self) -> StageTracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close("FINISHED")
            return
        try:
            self.close(_exit_status(exc_type))
        except Exception:  # noqa: BLE001 - never mask the stage's own exception
            log.warning("could not close stage %r after an error", self.name, exc_info=True)


class RecipeTracker:
    """The parent run of one recipe run, and the factory of its stages' child runs.

    ``uri`` goes through :func:`~rlhf.tracking.store.resolve_uri` (``None``:
    ``$MLFLOW_TRACKING_URI`` or ``./mlflow.db``). Nothing touches the store until :meth:`start`.
    """

    def __init__(
        self,
        uri: str | None,
        experiment: str,
        run_name: str,
        tags: Mapping[str, Any] | None = None,
        enabled: bool = True,
        flush_every: int = DEFAULT_FLUSH_EVERY,
    ) -> None:
        self._uri = resolve_uri(uri)
        self.experiment = experiment
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.enabled = enabled
        self.flush_every = flush_every
        self._client: Any = None
        self._experiment_id: str | None = None
        self._run_id: str | None = None
        self._stages: list[StageTracker] = []
        self._ended = False

    @property
    def uri(self) -> str:
        """The resolved tracking URI."""
        return self._uri

    @property
    def run_id(self) -> str | None:
        """The parent run's id (``None`` before :meth:`start` or when disabled)."""
        return self._run_id

    @property
    def experiment_id(self) -> str | None:
        return self._experiment_id

    @property
    def client(self) -> Any:
        """The :class:`~mlflow.tracking.MlflowClient` in use (``None`` when disabled/unstarted)."""
        return self._client

    @property
    def started(self) -> bool:
        return self._run_id is not None

    def start(self, resume_run_id: str | None = None) -> str | None:
        """Create the parent run, or re-open ``resume_run_id`` (status back to RUNNING).

        A new run is tagged with the tracker's tags plus ``rlhf.toolkit_commit``; a resumed run
        gets the tags again (values may change, e.g. the commit). Returns the run id."""
        if not self.enabled:
            return None
        if self._run_id is not None:
            raise RuntimeError(f"tracker already started (run {self._run_id})")
        self._client = make_client(self._uri)
        self._experiment_id = get_or_create_experiment(
            self._client, self.experiment, artifact_root(self._uri)
        )
        tags = {**self.tags, COMMIT_TAG: git_commit()}
        if resume_run_id:
            run = _io.reopen_run(self._client, resume_run_id)
            self._experiment_id = run.info.experiment_id
            self._run_id = run.info.run_id
            _io.set_tags(self._client, self._run_id, tags)
        else:
            self._run_id = _io.create_run(self._client, self._experiment_id, self.run_name, tags)
        self._ended = False
        return self._run_id

    def log_params(self, flat: Mapping[str, Any]) -> None:
        """Log the recipe's params on the parent run: flattened (nested input is fine), redacted,
        batched by 100. Same key and value as before: skipped; changed value: :class:`UserError`."""
        if self.enabled:
            _io.log_params(self._require_client(), self._run_id, flat)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags on the parent run."""
        if self.enabled:
            _io.set_tags(self._require_client(), self._run_id, tags)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store ``text`` as an artifact of the parent run (e.g. the resolved recipe)."""
        if self.enabled:
            self._require_client().log_text(self._run_id, text, artifact_file)

    def stage(
        self,
        name: str,
        kind: str,
        tags: Mapping[str, Any] | None = None,
        resume_run_id: str | None = None,
        flush_every: int | None = None,
    ) -> StageTracker:
        """A child run for stage ``name`` (run name = ``name``; tags ``mlflow.parentRunId``,
        ``rlhf.stage``, ``rlhf.stage_kind`` and ``tags``), or ``resume_run_id`` re-opened, with
        its earlier metric history loaded so the final plots cover the whole stage."""
        every = flush_every or self.flush_every
        if not self.enabled:
            stage = StageTracker(None, None, name, kind, every)
            self._stages.append(stage)
            return stage
        client = self._require_client()
        all_tags = {PARENT_TAG: self._run_id, STAGE_TAG: name, STAGE_KIND_TAG: kind}
        all_tags.update(tags or {})
        history = None
        if resume_run_id:
            run = _io.reopen_run(client, resume_run_id)
            parent = run.data.tags.get(PARENT_TAG)
            if parent != self._run_id:
                raise UserError(
                    f"run {resume_run_id} is not a stage of run {self._run_id} "
                    f"(its parent is {parent or 'none'})"
                )
            run_id = run.info.run_id
            history = _io.load_history(client, run)
            extra = {k: v for k, v in all_tags.items() if run.data.tags.get(k) != str(v)}
            if extra:
                _io.set_tags(client, run_id, extra)
        else:
            run_id = _io.create_run(client, self._experiment_id, name, all_tags)
        stage = StageTracker(client, run_id, name, kind, every, history,
                             parent_run_id=self._run_id)
        self._stages.append(stage)
        return stage

    def stage_runs(self) -> dict[str, str]:
        """``{stage name: run id}`` of this run's child runs (the newest run per name), to find
        what to resume. Empty when disabled."""
        if not self.enabled:
            return {}
        client = self._require_client()
        runs = client.search_runs(
            [self._experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{self._run_id}'",
            order_by=["attributes.start_time ASC"],
            max_results=1000,
        )
        return {r.data.tags.get(STAGE_TAG, r.info.run_name): r.info.run_id for r in runs}

    def end(self, status: str = "FINISHED") -> None:
        """Close any stage still open (with the same status) and end the parent run.
        Ending twice, or ending a tracker never started, is harmless."""
        status = _io.check_status(status)
        for stage in self._stages:
            if not stage.closed:
                stage.close(status)
        if self._ended or self._run_id is None or self._client is None:
            self._ended = True
            return
        self._client.set_terminated(self._run_id, status=status)
        self._ended = True

    def _require_client(self) -> Any:
        if self._client is None or self._run_id is None:
            raise RuntimeError("call RecipeTracker.start() before logging")
        return self._client

    def __enter__(self) -> RecipeTracker:
        if self.enabled and self._run_id is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end("FINISHED")
            return
        try:
            self.end(_exit_status(exc_type))
        except Exception:  # noqa: BLE001 - never mask the run's own exception
            log.warning("could not end the MLflow run after an error", exc_info=True)
