"""Reading and writing audio: WAV/FLAC files through ``soundfile``, and inline arrays.

Every reader returns ``(wave, sample_rate)``: a float32 mono waveform in [-1, 1], shape
``[samples]`` (several channels are averaged), and the rate in Hz. Inline audio is the object
``{"array": [...], "sample_rate": N}`` (the form Hugging Face ``datasets`` uses for decoded
audio). Problems raise :class:`AudioError` with a short message that names the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

AUDIO_SUFFIXES = (".wav", ".flac")
"""File types the preference data may reference."""


class AudioError(ValueError):
    """An audio file or inline array that cannot be used (the message says why)."""


def to_mono(data: np.ndarray) -> np.ndarray:
    """``[samples]`` or ``[samples, channels]`` → float32 ``[samples]`` (channels averaged)."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if data.ndim != 1:
        raise AudioError(f"expected a 1-D or [samples, channels] array, got shape {data.shape}")
    return np.ascontiguousarray(data)


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read a WAV or FLAC file; return ``(float32 mono [samples] in [-1, 1], rate in Hz)``."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioError(f"{p}: file not found")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=False)
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types
        raise AudioError(f"{p}: cannot read audio: {exc}") from None
    return to_mono(data), int(sr)


def audio_duration(path: str | os.PathLike[str]) -> float:
    """Duration of an audio file in seconds, from its header (the samples are not read)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001
        raise AudioError(f"{path}: cannot read audio: {exc}") from None
    return info.frames / float(info.samplerate)


def write_audio(path: str | os.PathLike[str], wave: np.ndarray, sample_rate: int,
                subtype: str = "PCM_16") -> Path:
    """Write a mono waveform ``[samples]`` in [-1, 1] (clipped) as WAV or FLAC (by suffix).

    ``subtype``: soundfile's sample format, 16-bit PCM by default. Parent folders are created.
    """
    import soundfile as sf

    p = Path(path)
    if p.suffix.lower() not in AUDIO_SUFFIXES:
        raise AudioError(f"{p}: unsupported audio type; use one of {', '.join(AUDIO_SUFFIXES)}")
    p.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(to_mono(wave), -1.0, 1.0)
    sf.write(str(p), data, int(sample_rate), subtype=subtype)
    return p


def inline_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid inline audio object, or ``None`` when it is."""
    if not isinstance(value, Mapping):
        return "expected a file path or an object {array, sample_rate}"
    missing = [k for k in ("array", "sample_rate") if k not in value]
    if missing:
        return f"inline audio without {' and '.join(missing)}"
    sr = value["sample_rate"]
    if isinstance(sr, bool) or not isinstance(sr, int) or sr <= 0:
        return f"sample_rate: expected a positive integer, got {sr!r}"
    array = value["array"]
    if not isinstance(array, (list, tuple, np.ndarray)) or len(array) == 0:
        return "array: expected a non-empty list of numbers"
    try:
        data = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        return "array: expected a list of numbers"
    if data.ndim != 1:
        return f"array: expected a flat list of samples, got shape {list(data.shape)}"
    if not np.all(np.isfinite(data)):
        return "array: holds NaN or infinite values"
    return None


def from_inline(value: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """``{"array": [...], "sample_rate": N}`` → ``(float32 [samples], N)``."""
    problem = inline_problem(value)
    if problem:
        raise AudioError(problem)
    return np.asarray(value["array"], dtype=np.float32), int(value["sample_rate"])


def inline_duration(value: Mapping[str, Any]) -> float:
    """Seconds of an inline audio object (``len(array) / sample_rate``)."""
    return len(value["array"]) / float(value["sample_rate"]) if value["sample_rate"] else math.nan
