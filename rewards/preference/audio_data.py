"""Speech preference pairs: reading, validating, filtering, bucketing by length.

A record (one JSON object per line in ``.jsonl``; any format :mod:`rlhf.data.readers` reads)::

    {"prompt": "Read aloud: the cat likes rain.",          # optional text
     "chosen_audio": "audio/0001-a.wav",                   # path relative to the file's folder
     "rejected_audio": {"array": [0.0, 0.01, ...], "sample_rate": 16000},   # or inline samples
     "margin": 0.4,                                        # optional finite number
     "tie": false}                                         # optional: the two are equally good

``chosen_audio`` / ``rejected_audio``: a WAV or FLAC path (relative paths are resolved against
the folder of the record file) or an inline object. A bad row is reported as
``<file>:<line>: <field>: <problem>`` (a missing audio file is named by its resolved path).

Filters (the same options as the text reward model's preference data):

- ``ties``: a pair is a tie when ``tie`` is true or ``margin`` is 0. ``drop`` removes ties;
  ``half`` keeps them with the Bradley–Terry target ½ (loss ``-½ log σ(d) − ½ log σ(−d)``).
- ``min_margin``: large-margin filtering (Step-Audio-EditX): a non-tie pair is kept only when
  its ``margin`` ≥ ``min_margin``; with the filter on, a non-tie row without a margin is bad.

Batching by length: :func:`bucket_batches` shuffles the pairs, sorts each pool of
``pool_batches`` batches by duration and cuts it into batches, so a batch pads little.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhf.audio.io import (
    AUDIO_SUFFIXES,
    AudioError,
    audio_duration,
    from_inline,
    inline_duration,
    inline_problem,
    read_audio,
)
from rlhf.data.readers import iter_entries, write_jsonl
from rlhf.data.validate import BadRowError, rejected_row
from rlhf.errors import DataError

log = logging.getLogger(__name__)

AUDIO_FIELDS = ("chosen_audio", "rejected_audio")
TIES = ("drop", "half")
Problem = tuple[str, str]
AudioSource = str | dict[str, Any]
"""An absolute file path, or an inline ``{"array": [...], "sample_rate": N}`` object."""


@dataclass
class AudioPair:
    """One validated preference pair over speech clips."""

    location: str
    """``<file>:<line>`` the pair came from."""
    chosen: AudioSource
    rejected: AudioSource
    prompt: str | None = None
    margin: float | None = None
    tie: bool = False
    duration: float = 0.0
    """Seconds of the longer clip (for batching by length)."""
    row: dict[str, Any] = field(default_factory=dict)
    """The original record, unchanged."""


@dataclass
class AudioPairs:
    """The pairs kept from one file, and counts of what was set aside and why."""

    pairs: list[AudioPair]
    n_total: int
    n_bad: int = 0
    n_ties_dropped: int = 0
    n_below_margin: int = 0
    rejected_path: Path | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def stats(self, label: str) -> dict[str, float]:
        """``data/<label>_pairs`` and the counts of bad rows, dropped ties, small margins."""
        return {f"data/{label}_pairs": float(len(self.pairs)),
                f"data/{label}_bad_rows": float(self.n_bad),
                f"data/{label}_ties_dropped": float(self.n_ties_dropped),
                f"data/{label}_below_min_margin": float(self.n_below_margin)}


# ---------------------------------------------------------------------------------------------
# Row validation
# ---------------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def resolve_source(value: Any, base_dir: Path) -> AudioSource:
    """A record's audio value as a source: a path made absolute against ``base_dir``, or as is."""
    if isinstance(value, str):
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else base_dir / p)
    return value


def _audio_problem(name: str, value: Any, base_dir: Path) -> tuple[list[Problem], float]:
    """Problems of one audio field, and the clip's duration in seconds when it is valid."""
    if value is None:
        return [(name, "missing")], 0.0
    if isinstance(value, str):
        if not value.strip():
            return [(name, "empty path")], 0.0
        path = Path(resolve_source(value, base_dir))
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            kind = f"'{path.suffix}'" if path.suffix else "(no extension)"
            return [(name, f"unsupported audio type {kind}; use "
                           f"{' or '.join(AUDIO_SUFFIXES)}")], 0.0
        if not path.is_file():
            return [(name, f"file not found: {path}")], 0.0
        try:
            return [], audio_duration(path)
        except AudioError as exc:
            return [(name, str(exc))], 0.0
    problem = inline_problem(value)
    if problem:
        return [(name, problem)], 0.0
    return [], inline_duration(value)


def _optional_problems(row: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    prompt = row.get("prompt")
    if prompt is not None and not (isinstance(prompt, str) and prompt.strip()):
        problems.append(("prompt", "expected a non-empty string"
                         if isinstance(prompt, str) else
                         f"expected a string, got {_type_name(prompt)}"))
    margin = row.get("margin")
    if margin is not None:
        if isinstance(margin, bool) or not isinstance(margin, (int, float)):
            problems.append(("margin", f"expected a finite number, got {_type_name(margin)}"))
        elif not math.isfinite(margin):
            problems.append(("margin", "not a finite number"))
    tie = row.get("tie")
    if tie is not None and not isinstance(tie, bool):
        problems.append(("tie", f"expected true or false, got {_type_name(tie)}"))
    return problems


def validate_audio_row(row: Any, base_dir: Path) -> tuple[list[Problem], float]:
    """Every problem of one record as ``(field, problem)``, and the longer clip's seconds."""
    if not isinstance(row, dict):
        return [("", f"expected an object, got {_type_name(row)}")], 0.0
    problems: list[Problem] = []
    duration = 0.0
    for name in AUDIO_FIELDS:
        found, seconds = _audio_problem(name, row.get(name), base_dir)
        problems += found
        duration = max(duration, seconds)
    if not problems and resolve_source(row["chosen_audio"], base_dir) == \
            resolve_source(row["rejected_audio"], base_dir):
        problems.append(("", "chosen_audio and rejected_audio are the same clip"))
    return problems + _optional_problems(row), duration


def is_tie(row: Mapping[str, Any]) -> bool:
    """A tie: ``tie`` is true, or ``margin`` is exactly 0."""
    return bool(row.get("tie")) or row.get("margin") == 0


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_audio_pairs(path: str | os.PathLike[str], on_bad_rows: str = "error",
                     rejected_path: str | os.PathLike[str] | None = None,
                     ties: str = "drop", min_margin: float | None = None) -> AudioPairs:
    """Read, validate and filter the pairs of one record file (see the module docstring).

    ``on_bad_rows="error"`` raises :class:`~rlhf.data.validate.BadRowError` at the first bad
    row; ``"skip"`` writes bad rows to ``rejected_path`` (required then) and goes on. Raises
    :class:`DataError` when no row is usable.
    """
    if ties not in TIES:
        raise DataError(f"ties: expected one of {', '.join(TIES)}, got {ties!r}")
    if on_bad_rows not in ("error", "skip"):
        raise DataError(f"data.on_bad_rows: expected error or skip, got {on_bad_rows!r}")
    if on_bad_rows == "skip" and rejected_path is None:
        raise ValueError("load_audio_pairs(on_bad_rows='skip') needs a rejected_path")
    base_dir = Path(path).expanduser().resolve().parent
    out = AudioPairs([], 0, rejected_path=Path(rejected_path) if rejected_path else None)
    rejected: list[dict[str, Any]] = []
    for entry in iter_entries(path):
        out.n_total += 1
        problems, duration = ([("", entry.problem)], 0.0) if entry.problem else \
            validate_audio_row(entry.row, base_dir)
        row = entry.row or {}
        tie = not problems and is_tie(row)
        if not problems and not tie and min_margin is not None and row.get("margin") is None:
            problems = [("margin", "missing; min_margin is set, so every pair that is not a "
                                   "tie needs one")]
        if problems:
            if on_bad_rows == "error":
                raise BadRowError(entry.location, problems)
            rejected.append(rejected_row(entry, problems))
            continue
        if tie and ties == "drop":
            out.n_ties_dropped += 1
            continue
        if not tie and min_margin is not None and row["margin"] < min_margin:
            out.n_below_margin += 1
            continue
        margin = row.get("margin")
        out.pairs.append(AudioPair(
            entry.location, resolve_source(row["chosen_audio"], base_dir),
            resolve_source(row["rejected_audio"], base_dir), row.get("prompt"),
            None if margin is None else float(margin), tie, duration, row))
    out.n_bad = len(rejected)
    if out.rejected_path is not None:
        write_jsonl(out.rejected_path, rejected)
    _report(path, out, rejected, ties, min_margin)
    return out


def _report(path: Any, out: AudioPairs, rejected: list[dict[str, Any]], ties: str,
            min_margin: float | None) -> None:
    if out.n_total == 0:
        raise DataError(f"{path}: no rows")
    first = (f" (the first: {rejected[0]['_location']}: {rejected[0]['_errors'][0]})"
             if rejected else "")
    if not out.pairs:
        raise DataError(f"{path}: no usable pairs among {out.n_total} rows: {out.n_bad} bad"
                        f"{first}, {out.n_ties_dropped} ties dropped (ties={ties}), "
                        f"{out.n_below_margin} below min_margin={min_margin}")
    if rejected:
        log.warning("%s: skipped %d of %d rows%s; the bad rows are in %s", path, out.n_bad,
                    out.n_total, first, out.rejected_path)


def load_wave(source: AudioSource) -> tuple[np.ndarray, int]:
    """The clip of a source: ``(float32 mono [samples] in [-1, 1], rate in Hz)``."""
    if isinstance(source, str):
        return read_audio(source)
    return from_inline(source)


# ---------------------------------------------------------------------------------------------
# Batching by length
# ---------------------------------------------------------------------------------------------


def bucket_batches(durations: list[float], batch_size: int, seed: int,
                   pool_batches: int = 8) -> list[list[int]]:
    """One epoch of batches (lists of indices) grouped by similar duration.

    The indices are shuffled with ``random.Random(seed)``, split into pools of
    ``pool_batches * batch_size``, each pool sorted by duration and cut into batches; the
    batches are shuffled again. The last batch of a pool may be smaller. Deterministic in
    ``seed``, so a resumed run finds the same batch for the same step.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rng = random.Random(seed)
    order = list(range(len(durations)))
    rng.shuffle(order)
    pool = max(1, pool_batches) * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start: start + pool], key=lambda i: durations[i])
        batches += [chunk[s: s + batch_size] for s in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


# ---------------------------------------------------------------------------------------------
# A synthetic speech-preference task (eSpeak NG): preferred = speaking rate nearer the target
# ---------------------------------------------------------------------------------------------

SUBJECTS = ("the cat", "my friend", "the old man", "a small dog", "the teacher", "our neighbour",
            "the child", "a green bird", "her sister", "the farmer", "his uncle", "the baker")
VERBS = ("likes", "sees", "finds", "paints", "wants", "hears", "loves", "brings", "needs",
         "draws")
OBJECTS = ("rain", "apples", "music", "trains", "bread", "flowers", "boats", "water", "stones",
           "letters", "honey", "kites")


class SyntheticAudioOptions(BaseModel):
    """The synthetic task: one sentence rendered at two speaking rates (same voice and pitch);
    the rendering whose rate is nearer ``target_rate`` is preferred."""

    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(256, ge=4)
    """Training pairs."""
    n_eval: int = Field(64, ge=4)
    """Held-out pairs (new random draws of sentence, voice, pitch and rates)."""
    target_rate: int = Field(175, ge=80, le=450)
    """The preferred speaking rate, words per minute."""
    min_rate: int = Field(80, ge=80, le=450)
    max_rate: int = Field(300, ge=80, le=450)
    """Candidate rates are drawn uniformly from [min_rate, max_rate] words per minute."""
    min_gap: float = Field(25.0, ge=0)
    """A pair's two distances to the target differ by at least this many words per minute."""
    voices: list[str] = Field(default_factory=lambda: ["en-us", "en+f3", "en+m3"])
    """eSpeak NG voices, drawn per pair."""
    min_pitch: int = Field(35, ge=0, le=100)
    max_pitch: int = Field(65, ge=0, le=100)
    """Pitch (eSpeak's 0-100 scale) drawn per pair from [min_pitch, max_pitch]."""
    sample_rate: int = Field(16_000, ge=8_000)
    """Hz of the written 16-bit WAV files."""

    @model_validator(mode="after")
    def _ranges(self) -> SyntheticAudioOptions:
        if self.min_rate >= self.max_rate:
            raise ValueError("min_rate must be below max_rate")
        if self.min_pitch > self.max_pitch:
            raise ValueError("min_pitch must not exceed max_pitch")
        if not self.voices:
            raise ValueError("voices: name at least one eSpeak NG voice")
        reach = max(self.target_rate - self.min_rate, self.max_rate - self.target_rate)
        if self.min_gap >= reach:
            raise ValueError(f"min_gap {self.min_gap} wpm leaves no pair in "
                             f"[{self.min_rate}, {self.max_rate}] around {self.target_rate}")
        return self


def _draw_pair(rng: random.Random, opts: SyntheticAudioOptions) -> dict[str, Any]:
    """Sentence, voice, pitch and two rates whose distances to the target differ enough."""
    while True:
        a, b = (rng.randint(opts.min_rate, opts.max_rate) for _ in range(2))
        da, db = abs(a - opts.target_rate), abs(b - opts.target_rate)
        if abs(da - db) >= max(opts.min_gap, 1e-9):
            break
    sentence = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."
    chosen, rejected = (a, b) if da < db else (b, a)
    return {"sentence": sentence, "voice": rng.choice(opts.voices),
            "pitch": rng.randint(opts.min_pitch, opts.max_pitch), "chosen_rate": chosen,
            "rejected_rate": rejected, "margin": round(abs(da - db) / 100.0, 4)}


def trim_silence(wave: np.ndarray, sample_rate: int, threshold: float = 1e-3,
                 keep_ms: float = 30.0) -> np.ndarray:
    """Cut leading/trailing samples below ``threshold`` (|x|), keeping ``keep_ms`` of each."""
    loud = np.nonzero(np.abs(wave) > threshold)[0]
    if len(loud) == 0:
        return wave
    keep = int(sample_rate * keep_ms / 1000.0)
    return wave[max(0, loud[0] - keep): loud[-1] + 1 + keep]


def render_clip(text: str, voice: str, rate: int, pitch: int, sample_rate: int) -> np.ndarray:
    """``text`` spoken by eSpeak NG at ``rate`` wpm, resampled to ``sample_rate`` Hz, trimmed."""
    from rlhf.audio.espeak import synthesize
    from rlhf.audio.features import resample

    wave, sr = synthesize(text, voice=voice, rate=rate, pitch=pitch)
    return trim_silence(resample(wave, sr, sample_rate), sample_rate)


def render_synthetic(out_dir: Path, opts: SyntheticAudioOptions, seed: int,
                     progress: Any = None) -> dict[str, Path]:
    """Render ``train.jsonl`` and ``eval.jsonl`` (+ ``audio/*.wav``) into ``out_dir``.

    Records: ``prompt`` ("Read aloud: <sentence>"), ``chosen_audio``/``rejected_audio``
    (relative paths), ``margin`` (difference of the distances to the target, in hundreds of
    words per minute) and ``metadata`` (sentence, voice, pitch, both rates). Deterministic in
    ``seed``. ``progress(done, total)`` is called after each pair when given.
    """
    from rlhf.audio.io import write_audio

    rng = random.Random(seed)
    splits = {"train": [_draw_pair(rng, opts) for _ in range(opts.n_train)],
              "eval": [_draw_pair(rng, opts) for _ in range(opts.n_eval)]}
    total, done = opts.n_train + opts.n_eval, 0
    files: dict[str, Path] = {}
    for split, draws in splits.items():
        rows = []
        for i, d in enumerate(draws):
            names = {}
            for side in ("chosen", "rejected"):
                # a/b file names, so a listing of the folder does not give the label away
                letter = "a" if (side == "chosen") == (i % 2 == 0) else "b"
                name = f"audio/{split}-{i:05d}-{letter}.wav"
                wave = render_clip(d["sentence"], d["voice"], d[f"{side}_rate"], d["pitch"],
                               opts.sample_rate)
                write_audio(out_dir / name, wave, opts.sample_rate)
                names[side] = name
            rows.append({"id": f"{split}-{i}", "prompt": f"Read aloud: {d['sentence']}",
                         "chosen_audio": names["chosen"], "rejected_audio": names["rejected"],
                         "margin": d["margin"],
                         "metadata": {k: d[k] for k in ("sentence", "voice", "pitch",
                                                        "chosen_rate", "rejected_rate")}})
            done += 1
            if progress is not None:
                progress(done, total)
        files[split] = write_jsonl(out_dir / f"{split}.jsonl", rows)
    return files
