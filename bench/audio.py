"""Audio reward throughput: clips per second of each ``audio.*`` reward with 1 worker process and
with 2 (``workers: N`` in a reward design), on the committed speech fixtures (16 kHz eSpeak NG
clips of 1.1-2.8 s). The intelligibility cache is off, so every clip is decoded; pools are
started (and pocketsphinx loaded) before timing. Also prints the real-time factor of
``audio.intelligibility`` (seconds of compute per second of audio, one worker).

    python -m bench audio          # or: python bench/audio.py [clips]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "speech"


def clips(n: int) -> dict:
    from rlhf.audio.io import read_audio

    rows = [json.loads(line) for line in (FIXTURES / "manifest.jsonl").read_text().splitlines()
            if json.loads(line)["kind"] == "clean"]
    waves, texts = [], []
    for i in range(n):
        row = rows[i % len(rows)]
        wave, sr = read_audio(FIXTURES / row["audio"])
        waves.append(wave)
        texts.append(row["text"])
    return {"waveform": waves, "sample_rate": [sr] * n, "text": texts}


def main(n: int = 40) -> None:
    from rewards.compose import CompositeReward
    from rewards.spec import RewardSpec

    cols = clips(n)
    seconds = sum(len(w) / sr for w, sr in zip(cols["waveform"], cols["sample_rate"]))
    print(f"{n} clips, {seconds:.1f} s of audio")
    rewards = {"audio.duration": {}, "audio.clipping": {}, "audio.silence": {},
               "audio.intelligibility": {"cache_size": 0}}
    for name, params in rewards.items():
        rates = {}
        for workers in (1, 2):
            spec = RewardSpec(name=name, params=params, workers=workers)
            with CompositeReward([spec]) as design:
                warm = {k: v[:workers] for k, v in cols.items()}
                design.score(["p"] * workers, ["c"] * workers, **warm)  # start the pool
                start = time.perf_counter()
                result = design.score(["p"] * n, ["c"] * n, **cols)
                elapsed = time.perf_counter() - start
            assert result.unscored() == 0, result.errors
            rates[workers] = n / elapsed
            if name == "audio.intelligibility" and workers == 1:
                print(f"{name}: real-time factor {elapsed / seconds:.3f} (1 worker)")
        print(f"{name:24s} 1 worker {rates[1]:8.1f} clips/s   2 workers {rates[2]:8.1f} clips/s"
              f"   speed-up {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
