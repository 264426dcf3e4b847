"""Score a file of rows with one reward or a reward design (behind ``rlhf rewards score``).

Each input row has ``prompt``, ``completion`` and the columns the rewards need; each output row
is the input row plus ``reward`` (number or null) and ``details`` (the raw metrics). Output order
is input order. A missing column fails before any scoring, naming the reward, the column and the
first row that lacks it.

Audio rows: a column ``audio`` (a WAV/FLAC path, relative to the input file's folder unless
absolute, or inline ``{array, sample_rate}``) stands in for ``completion``, and ``text`` holds the
intended words for the ``audio.*`` rewards. Output rows keep the paths as written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewards.compose import CompositeReward
from rlhf.errors import DataError

RESERVED = ("prompt", "completion")


@dataclass
class ScoreSummary:
    n_rows: int
    n_scored: int
    mean: float | None
    errors: dict[str, list[str]] = field(default_factory=dict)


def check_columns(design: CompositeReward, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Every row must have ``completion`` and each reward's required columns."""
    needs = [(label, col) for label, cols in design.required_columns().items() for col in cols]
    for location, row in rows:
        if row.get("completion") is None and row.get("audio") is None:
            raise DataError(f"{location}: completion: missing (every row needs a completion, "
                            "or an audio column for the audio rewards)")
    for label, col in needs:
        for location, row in rows:
            if row.get(col) is None:
                raise DataError(f"{location}: {col}: missing (reward {label!r} needs column "
                                f"{col!r}; this is the first row without it)")


def resolve_audio(value: Any, base_dir: Path | None) -> Any:
    """An ``audio`` value with a relative path made relative to ``base_dir``."""
    if base_dir is None or not isinstance(value, str) or not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base_dir / path)


def score_rows(design: CompositeReward, rows: list[tuple[str, dict[str, Any]]],
               batch_size: int = 256, group_size: int | None = None,
               progress: Callable[[int], None] | None = None, base_dir: Path | None = None
               ) -> tuple[list[dict], ScoreSummary]:
    """Score ``(location, row)`` pairs in batches; return output rows and a summary.
    ``base_dir``: where relative ``audio`` paths start (the input file's folder)."""
    check_columns(design, rows)
    single = len(design.labels) == 1
    out: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for start in range(0, len(rows), batch_size):
        batch = [row for _, row in rows[start:start + batch_size]]
        keys = {k for row in batch for k in row if k not in RESERVED}
        columns = {k: [row.get(k) for row in batch] for k in sorted(keys)}
        if "audio" in columns:
            columns["audio"] = [resolve_audio(v, base_dir) for v in columns["audio"]]
        result = design.score([row.get("prompt") for row in batch],
                              [row.get("completion") for row in batch], group_size=group_size,
                              **columns)
        for label, msgs in result.errors.items():
            errors.setdefault(label, []).extend(msgs)
        for i, row in enumerate(batch):
            if single:
                details = result.details[design.labels[0]][i]
            else:
                details = {label: {"value": result.components[label][i],
                                   **result.details[label][i]} for label in design.labels}
            out.append({**row, "reward": result.values[i], "details": details})
        if progress:
            progress(len(batch))
    scored = [r["reward"] for r in out if r["reward"] is not None]
    mean = sum(scored) / len(scored) if scored else None
    return out, ScoreSummary(len(out), len(scored), mean, errors)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write JSONL atomically (a crash leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)
