"""Render the speech fixtures of the tests into ``tests/fixtures/speech/`` (committed).

    python scripts/render_speech_fixtures.py [--out tests/fixtures/speech]

Writes 16 kHz mono 16-bit WAV files rendered with eSpeak NG (deterministic: the same eSpeak NG
build gives the same samples) and ``manifest.jsonl``, one row per clip: ``audio`` (file name,
relative to the manifest), ``text`` (the words meant, which for a corrupted clip are still the
*clean* sentence), ``kind`` (``clean`` or a corruption), ``voice``, ``rate`` and ``pitch``.

Corruptions of clean clips, for the intelligibility tests: ``noise`` (white noise of the clean
clip's RMS, seed 0), ``reversed`` (time-reversed) and ``wrong`` (another sentence spoken, the
row's ``text`` still the intended one). Tests read these files, never live synthesis timing.
Re-run only when the set changes; keep the folder small (a few hundred KB).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE_RATE = 16_000
CLEAN = [  # (name, text, voice, rate, pitch)
    ("fox", "the quick brown fox jumps over the lazy dog", "en-us", 175, 50),
    ("baker", "the baker brings a warm blanket", "en-us", 140, 50),
    ("bird_f3", "a small bird hears the evening news", "en+f3", 200, 60),
    ("train_m3", "the old train follows the river", "en+m3", 160, 40),
    ("apples_fast", "my sister finds two green apples", "en-us", 320, 50),
]
WRONG = ("wrong", "please call stella and ask her to bring these things")


def render(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    from rlhf.audio.espeak import synthesize
    from rlhf.audio.features import resample

    wave, sr = synthesize(text, voice=voice, rate=rate, pitch=pitch)
    return resample(wave, sr, SAMPLE_RATE).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    from rlhf.audio.io import write_audio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "speech")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    rows = []

    def save(name: str, wave: np.ndarray, text: str, kind: str, voice: str, rate: int,
             pitch: int) -> None:
        write_audio(out / f"{name}.wav", wave, SAMPLE_RATE)
        rows.append({"audio": f"{name}.wav", "text": text, "kind": kind, "voice": voice,
                     "rate": rate, "pitch": pitch})

    for name, text, voice, rate, pitch in CLEAN:
        save(name, render(text, voice, rate, pitch), text, "clean", voice, rate, pitch)
    name, text, voice, rate, pitch = CLEAN[0]
    clean = render(text, voice, rate, pitch)
    rms = float(np.sqrt(np.mean(clean ** 2)))
    noise = np.random.default_rng(0).normal(0.0, rms, clean.size).astype(np.float32)
    save(f"{name}_noise", noise, text, "noise", voice, rate, pitch)
    save(f"{name}_reversed", clean[::-1].copy(), text, "reversed", voice, rate, pitch)
    save(f"{name}_wrong", render(WRONG[1], voice, rate, pitch), text, "wrong", voice, rate,
         pitch)
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows),
                                        encoding="utf-8")
    total = sum(p.stat().st_size for p in out.glob("*.wav"))
    print(f"{len(rows)} clips, {total / 1024:.0f} KB → {out}")


if __name__ == "__main__":
    main()
