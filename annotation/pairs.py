"""Pairs of speech samples to annotate: reading and checking a pairs file, content-hash ids.

A pairs file is JSON Lines, one pair per line::

    {"id": "p1",                                  # optional: a string or an integer
     "prompt": "Read aloud: the cat likes rain.", # the text both clips answer
     "audio_a": "audio/p1-a.wav",                 # WAV or FLAC, relative to the file's folder
     "audio_b": "audio/p1-b.flac",
     "metadata": {"policy": "sft", "checkpoint": "step-200", "temperature": 0.7}}  # optional

Every bad row is reported as ``<file>:<line>: <field>: <problem>`` (all of them, up to
:data:`MAX_REPORTED`), raised together as one :class:`~rlhf.errors.DataError`.

A pair's *key* (its record id on the annotation server) is a hash of its content: the user's id
(if any), the prompt, and the bytes of both audio files, in order. Pushing the same pair twice
therefore addresses the same record; two identical rows are one pair.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlhf.errors import DataError, did_you_mean

FIELDS = ("id", "prompt", "audio_a", "audio_b", "metadata")
AUDIO_SUFFIXES = {".wav": "audio/wav", ".flac": "audio/flac"}
"""Audio file types a pair may use, with the MIME type of the browser player."""
MAX_AUDIO_BYTES = 5_000_000
"""Larger clips are refused: a data URI this big does not play reliably in the annotation UI."""
MAX_REPORTED = 20
KEY_LENGTH = 32


@dataclass(frozen=True)
class Pair:
    """One pair to annotate. ``audio_a`` / ``audio_b`` are absolute paths; ``key`` is the
    content hash (record id on the server); ``id`` is the user's id, or the key."""

    key: str
    id: str
    prompt: str
    audio_a: str
    audio_b: str
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    """Where the pair was read (``pairs.jsonl:3``), for messages."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pair:
        return cls(**{k: data[k] for k in ("key", "id", "prompt", "audio_a", "audio_b")},
                   metadata=dict(data.get("metadata") or {}), source=data.get("source"))


def file_digest(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_key(prompt: str, audio_a: str | os.PathLike[str], audio_b: str | os.PathLike[str],
                user_id: str | None = None) -> str:
    """The content hash of a pair (hex, :data:`KEY_LENGTH` characters)."""
    payload = json.dumps({"id": user_id, "prompt": prompt, "audio_a": file_digest(audio_a),
                          "audio_b": file_digest(audio_b)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def make_pair(prompt: str, audio_a: str | os.PathLike[str], audio_b: str | os.PathLike[str],
              metadata: dict[str, Any] | None = None, id: str | int | None = None,
              source: str | None = None) -> Pair:
    """A :class:`Pair` from values already checked (paths made absolute here)."""
    a, b = str(Path(audio_a).expanduser().resolve()), str(Path(audio_b).expanduser().resolve())
    user_id = None if id is None else str(id)
    key = content_key(prompt, a, b, user_id)
    return Pair(key, user_id or key, prompt, a, b, dict(metadata or {}), source)


def _audio_problem(value: Any, base: Path) -> tuple[str | None, Path | None]:
    if not isinstance(value, str) or not value.strip():
        return "expected a path to a WAV or FLAC file", None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        return f"{value}: unsupported audio type (use .wav or .flac)", None
    if not path.is_file():
        return f"{path}: file not found", None
    size = path.stat().st_size
    if size > MAX_AUDIO_BYTES:
        return (f"{path}: {size / 1e6:.1f} MB; clips over {MAX_AUDIO_BYTES / 1e6:.0f} MB do not "
                "play reliably in the annotation UI"), None
    try:
        import soundfile as sf

        sf.info(str(path))
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types
        return f"{path}: not a readable audio file ({str(exc).splitlines()[0][:120]})", None
    return None, path


def check_row(row: Any, base: Path) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """``(problems, values)`` of one parsed row; ``values`` holds resolved paths when valid."""
    if not isinstance(row, dict):
        return [("", f"expected a JSON object, got {type(row).__name__}")], {}
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key in row:
        if key not in FIELDS:
            problems.append((key, f"unknown field; {did_you_mean(key, FIELDS)}"))
    pid = row.get("id")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, (str, int))
                            or (isinstance(pid, str) and not pid.strip())):
        problems.append(("id", f"expected a non-empty string or an integer, got {pid!r}"))
    prompt = row.get("prompt")
    if prompt is None:
        problems.append(("prompt", "missing"))
    elif not isinstance(prompt, str) or not prompt.strip():
        problems.append(("prompt", "expected a non-empty string"))
    for side in ("audio_a", "audio_b"):
        if row.get(side) is None:
            problems.append((side, "missing"))
            continue
        problem, path = _audio_problem(row[side], base)
        if problem:
            problems.append((side, problem))
        else:
            values[side] = path
    meta = row.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            problems.append(("metadata", f"expected an object, got {type(meta).__name__}"))
        else:
            try:
                json.dumps(meta)
            except (TypeError, ValueError) as exc:
                problems.append(("metadata", f"not JSON-serialisable: {exc}"))
    if not problems and values["audio_a"].resolve() == values["audio_b"].resolve():
        problems.append(("audio_b", "the same file as audio_a"))
    return problems, values


def load_pairs(path: str | os.PathLike[str]) -> tuple[list[Pair], int]:
    """Read and check a pairs file; return ``(pairs, duplicates)`` where identical rows (same
    key) are kept once and counted in ``duplicates``. Raises :class:`DataError` listing every
    bad row as ``file:line: field: problem``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    base = p.resolve().parent
    problems: list[str] = []
    pairs: list[Pair] = []
    seen: set[str] = set()
    duplicates = 0
    n_bad = 0
    with p.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            where = f"{p}:{lineno}"
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                n_bad += 1
                problems.append(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})")
                continue
            row_problems, values = check_row(row, base)
            if row_problems:
                n_bad += 1
                problems.extend(f"{where}: {f}: {m}" if f else f"{where}: {m}"
                                for f, m in row_problems)
                continue
            pair = make_pair(row["prompt"], values["audio_a"], values["audio_b"],
                             row.get("metadata"), row.get("id"), where)
            if pair.key in seen:
                duplicates += 1
                continue
            seen.add(pair.key)
            pairs.append(pair)
    if problems:
        shown = problems[:MAX_REPORTED]
        more = len(problems) - len(shown)
        raise DataError(f"{n_bad} bad row{'s' if n_bad != 1 else ''} in {p}:\n"
                        + "\n".join(shown) + (f"\n... and {more} more" if more else ""))
    if not pairs:
        raise DataError(f"{p}: no pairs (the file is empty)")
    ids = [pr.id for pr in pairs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        where = [pr.source for pr in pairs if pr.id == dup]
        raise DataError(f"{where[1]}: id: {dup!r} is used by another pair too ({where[0]})")
    return pairs, duplicates
