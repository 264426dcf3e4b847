"""Audio evaluation samples of a run, for the report's side-by-side players.

A run's audio samples are found in two places, in this order:

1. audio artifacts (``.wav``, ``.flac``, ``.mp3``, ``.ogg``) of the parent run and of each stage's
   child run, listed recursively (folders ``model`` and ``checkpoints`` skipped); the sample's
   key is ``<stage>/<artifact path>`` (or the artifact path for the parent run);
2. sample tables: ``*.jsonl`` artifacts whose name contains ``sample`` (e.g. ``evaluate_policy``'s
   ``samples.jsonl``), whose rows hold a string ending in an audio suffix: a path, absolute or
   relative to the stage's directory in the run directory (tag ``rlhf.run_dir``). The key is
   ``<stage>/<table>#<row>:<column>``, the caption the row's ``prompt`` (or ``text``).

Per run at most :data:`MAX_SAMPLES` samples, each at most :data:`MAX_BYTES` (larger files are
skipped). The report pairs samples of different variants by key.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}
MAX_SAMPLES = 8
MAX_BYTES = 5 * 1024 * 1024
SKIP_DIRS = ("model", "checkpoints")
MAX_DEPTH = 4


@dataclass
class AudioSample:
    key: str
    caption: str
    data: bytes
    mime: str


def _list(client: Any, run_id: str, path: str | None = None, depth: int = 0) -> list[Any]:
    out = []
    for info in client.list_artifacts(run_id, path):
        name = info.path.rsplit("/", 1)[-1]
        if info.is_dir:
            if depth < MAX_DEPTH and name not in SKIP_DIRS:
                out += _list(client, run_id, info.path, depth + 1)
        else:
            out.append(info)
    return out


def _mime(path: str) -> str | None:
    return MIME.get(Path(path).suffix.lower())


def _table_samples(rows: list[dict[str, Any]], table: str, stage_dir: Path | None,
                   prefix: str, room: int) -> list[AudioSample]:
    found: list[AudioSample] = []
    for i, row in enumerate(rows):
        for column, value in row.items():
            if len(found) >= room:
                return found
            if not isinstance(value, str) or _mime(value) is None:
                continue
            path = Path(value).expanduser()
            if not path.is_absolute() and stage_dir is not None:
                path = stage_dir / value
            if not path.is_file() or path.stat().st_size > MAX_BYTES:
                continue
            caption = str(row.get("prompt") or row.get("text") or "")
            found.append(AudioSample(f"{prefix}{table}#{i}:{column}", caption,
                                     path.read_bytes(), _mime(value) or "audio/wav"))
    return found


def run_samples(client: Any, record: Any, limit: int = MAX_SAMPLES) -> list[AudioSample]:
    """Up to ``limit`` audio samples of a run (see module docstring), in a stable order."""
    samples: list[AudioSample] = []
    run_dir = record.tags.get("rlhf.run_dir")
    sources = [(record.run_id, "", None)] + [
        (rid, f"{stage}/", Path(run_dir) / stage if run_dir else None)
        for stage, rid in sorted(record.stages.items())]
    with tempfile.TemporaryDirectory(prefix="rlhf-audio-") as tmp:
        for run_id, prefix, stage_dir in sources:
            files = sorted(_list(client, run_id), key=lambda f: f.path)
            for info in files:
                if len(samples) >= limit:
                    return samples
                mime = _mime(info.path)
                if mime is not None and (info.file_size or 0) <= MAX_BYTES:
                    local = client.download_artifacts(run_id, info.path, tmp)
                    samples.append(AudioSample(prefix + info.path, "", Path(local).read_bytes(),
                                               mime))
            for info in files:
                name = info.path.rsplit("/", 1)[-1]
                if not (name.endswith(".jsonl") and "sample" in name) or len(samples) >= limit:
                    continue
                local = Path(client.download_artifacts(run_id, info.path, tmp))
                rows = []
                for line in local.read_text(encoding="utf-8", errors="replace").splitlines():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(row, dict):
                        rows.append(row)
                samples += _table_samples(rows, info.path, stage_dir, prefix,
                                          limit - len(samples))
    return samples


def group_samples(client: Any, groups: list[Any], limit: int = MAX_SAMPLES
                  ) -> dict[str, tuple[Any, list[AudioSample]]]:
    """For each group, its first run (lowest seed) that has audio samples, and those samples;
    groups without any are left out."""
    out: dict[str, tuple[Any, list[AudioSample]]] = {}
    for group in groups:
        for record in group.runs:
            samples = run_samples(client, record, limit)
            if samples:
                out[group.name] = (record, samples)
                break
    return out
