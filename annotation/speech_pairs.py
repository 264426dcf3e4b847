"""Speech pairs to annotate, rendered with eSpeak NG (for the demo, tests and benchmarks).

Each pair is one sentence spoken twice by the same voice at the same pitch, at two speaking
rates drawn from ``[min_rate, max_rate]`` words per minute. Nothing marks which is better: the
pairs file only holds ``prompt``, ``audio_a``, ``audio_b`` and ``metadata`` (voice, pitch and
the two rates, so that an analysis can compare the annotators' choices with the rates later).
"""

from __future__ import annotations

import random
from pathlib import Path

from rlhf.data import write_jsonl

SUBJECTS = ("The cat", "My neighbour", "A small bird", "The old train", "Our teacher", "The river",
            "A tired runner", "The baker")
VERBS = ("likes", "watches", "follows", "remembers", "carries", "finds", "paints", "hears")
OBJECTS = ("the morning rain", "a red balloon", "the quiet harbour", "two green apples",
           "the evening news", "a paper map", "the last bus home", "a warm blanket")


def render_speech_pairs(out_dir: str | Path, n: int, seed: int = 0, *, min_rate: int = 90,
                        max_rate: int = 320, min_gap: int = 40, sample_rate: int = 16_000,
                        voices: tuple[str, ...] = ("en-us", "en+f3", "en+m3"),
                        name: str = "pairs.jsonl") -> Path:
    """Write ``n`` pairs (``audio/<i>-a.wav``, ``audio/<i>-b.wav``) and ``<name>`` into
    ``out_dir``; the two rates of a pair differ by at least ``min_gap`` wpm. Returns the file."""
    from rewards.preference.audio_data import render_clip
    from rlhf.audio.io import write_audio

    out = Path(out_dir)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        while True:
            ra, rb = rng.randint(min_rate, max_rate), rng.randint(min_rate, max_rate)
            if abs(ra - rb) >= min_gap:
                break
        sentence = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."
        voice, pitch = rng.choice(voices), rng.randint(40, 60)
        names = {}
        for side, rate in (("a", ra), ("b", rb)):
            rel = f"audio/{i:05d}-{side}.wav"
            write_audio(out / rel, render_clip(sentence, voice, rate, pitch, sample_rate),
                        sample_rate)
            names[side] = rel
        rows.append({"id": f"pair-{i:05d}", "prompt": f"Read aloud: {sentence}",
                     "audio_a": names["a"], "audio_b": names["b"],
                     "metadata": {"voice": voice, "pitch": pitch, "rate_a": ra, "rate_b": rb}})
    return write_jsonl(out / name, rows)
