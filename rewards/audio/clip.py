"""Reading one row's audio for the audio rewards: sources, checks, mono-mix, resampling, limits.

:func:`row_clip` returns a :class:`Clip` (float32 mono ``[samples]`` and its rate in Hz) or
raises :class:`AudioProblem` with a short reason; :func:`frame_rms` is the 10 ms frame energy
the guards share. Thresholds are in dBFS (0 dB = a full-scale sample, 1.0).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from rewards.base import RewardParams, Scored

log = logging.getLogger("rewards.audio")

SILENT_PEAK = 1e-4
"""A clip whose largest absolute sample is below this (-80 dBFS) counts as silent."""
WARNINGS: Counter[str] = Counter()
"""Problems met in this process, by reason (``empty``, ``non-finite``, ``silent``, ...)."""


class AudioProblem(ValueError):
    """The row's audio cannot be scored; ``kind`` is a short tag, the message says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Clip:
    """A checked mono waveform: ``wave`` float32 ``[samples]``, ``sample_rate`` Hz.
    ``seconds`` is the duration before the length limit; ``truncated`` tells whether it bit."""

    wave: np.ndarray
    sample_rate: int
    seconds: float
    truncated: bool = False

    def digest(self, *extra: Any) -> str:
        """SHA-1 of the samples, the rate and ``extra`` (a cache key)."""
        h = hashlib.sha1(np.ascontiguousarray(self.wave, dtype=np.float32).tobytes())
        h.update(repr((self.sample_rate, *extra)).encode())
        return h.hexdigest()


class AudioParams(RewardParams):
    """Parameters every audio reward has."""

    max_seconds: float = Field(30.0, gt=0)
    """Length limit: longer clips are cut to this many seconds before scoring."""


def _mono(data: Any) -> np.ndarray:
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 2:  # [samples, channels], or [channels, samples] when that is the short side
        arr = arr.mean(axis=1) if arr.shape[1] <= arr.shape[0] else arr.mean(axis=0)
    if arr.ndim != 1:
        raise AudioProblem("shape", f"expected a 1-D waveform, got shape {list(arr.shape)}")
    return np.ascontiguousarray(arr)


def _source(completion: Any, row: Mapping[str, Any]) -> tuple[Any, int | None]:
    """``(samples or path, rate)`` from the row's columns or the completion."""
    wave = row.get("waveform")
    if wave is not None:
        return wave, row.get("sample_rate")
    audio = row.get("audio")
    if isinstance(audio, (str, Path)):
        return Path(audio), None
    if isinstance(audio, Mapping):
        return audio.get("array"), audio.get("sample_rate")
    if isinstance(completion, Mapping):
        data = completion.get("waveform", completion.get("array"))
        if data is not None:
            return data, completion.get("sample_rate", row.get("sample_rate"))
    raise AudioProblem("missing", "no audio: expected columns waveform + sample_rate, a column "
                       "audio (file path or {array, sample_rate}), or a waveform completion")


def row_clip(completion: Any, row: Mapping[str, Any], max_seconds: float,
             sample_rate: int | None = None) -> Clip:
    """The row's audio as a checked :class:`Clip`, resampled to ``sample_rate`` when given."""
    data, rate = _source(completion, row)
    if isinstance(data, Path):
        from rlhf.audio.io import AudioError, read_audio

        try:
            wave, rate = read_audio(data)
        except AudioError as exc:
            raise AudioProblem("unreadable", str(exc)) from None
    else:
        if rate is None or isinstance(rate, bool) or not float(rate) > 0:
            raise AudioProblem("rate", f"sample_rate: expected a positive number, got {rate!r}")
        wave = _mono(data)
    rate = int(rate)
    if wave.size == 0:
        raise AudioProblem("empty", "empty waveform")
    if not np.all(np.isfinite(wave)):
        raise AudioProblem("non-finite", "waveform holds NaN or infinite samples")
    if float(np.max(np.abs(wave))) < SILENT_PEAK:
        raise AudioProblem("silent", f"silent waveform (peak below {SILENT_PEAK:g})")
    seconds = wave.size / rate
    limit = int(max_seconds * rate)
    truncated = wave.size > limit
    wave = wave[:limit] if truncated else wave
    if sample_rate is not None and sample_rate != rate:
        from rlhf.audio.features import resample

        wave, rate = resample(wave, rate, sample_rate), sample_rate
    return Clip(np.asarray(wave, dtype=np.float32), rate, seconds, truncated)


def unscored(reward: str, problem: Exception) -> Scored:
    """``None`` with ``details.error``, counted in :data:`WARNINGS` and logged (first of each
    kind per process at WARNING, later ones at DEBUG)."""
    kind = getattr(problem, "kind", type(problem).__name__)
    WARNINGS[kind] += 1
    level = logging.WARNING if WARNINGS[kind] == 1 else logging.DEBUG
    log.log(level, "%s: row not scored: %s (%d so far in this process)", reward, problem,
            WARNINGS[kind])
    return Scored(None, {"error": f"{kind}: {problem}"})


def frame_rms(wave: np.ndarray, sample_rate: int, frame_ms: float = 10.0) -> np.ndarray:
    """RMS of consecutive, non-overlapping ``frame_ms`` frames (a last partial frame counts)."""
    n = max(1, int(round(sample_rate * frame_ms / 1000.0)))
    frames = math.ceil(wave.size / n)
    padded = np.zeros(frames * n, dtype=np.float64)
    padded[:wave.size] = wave
    sq = (padded ** 2).reshape(frames, n).sum(axis=1)
    counts = np.full(frames, n, dtype=np.float64)
    counts[-1] = wave.size - (frames - 1) * n
    return np.sqrt(sq / counts)


def db(x: float) -> float:
    """Amplitude ratio in decibels (20·log10)."""
    return 20.0 * math.log10(max(x, 1e-12))


def word_count(text: str) -> int:
    """Words of the intended text: whitespace-separated tokens holding a letter or digit."""
    return sum(1 for w in str(text).split() if any(c.isalnum() for c in w))
