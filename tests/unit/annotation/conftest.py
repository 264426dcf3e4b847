"""Tiny audio files and pairs files for the annotation unit tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def write_tone(path: Path, freq: float = 440.0, amp: float = 0.3, seconds: float = 0.1,
               sample_rate: int = 8000) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), sample_rate,
             subtype="PCM_16")
    return path


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    """``pairs.jsonl`` with 6 pairs of tones (relative paths; one FLAC)."""
    rows = []
    for i in range(6):
        a = write_tone(tmp_path / "audio" / f"{i}-a.wav", 300 + 10 * i, 0.2)
        suffix = ".flac" if i == 5 else ".wav"
        b = write_tone(tmp_path / "audio" / f"{i}-b{suffix}", 300 + 10 * i, 0.4)
        rows.append({"id": f"p{i}", "prompt": f"Say {i}", "audio_a": f"audio/{a.name}",
                     "audio_b": f"audio/{b.name}", "metadata": {"policy": "sft", "i": i}})
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
