"""Speed of the audio reward model's parts: eSpeak NG synthesis, and scoring batched vs one by one.

Prints clips per second of

- eSpeak NG synthesis (22.05 kHz, short sentences at random rates) and its real-time factor;
- reward scoring of the same clips with ``AudioRewardModel`` (``logmel_conv``, random weights:
  speed does not depend on training), each clip resampled to 16 kHz and featurised, then
  scored in batches of ``batch_size`` and one clip at a time; the ratio is the speed-up of
  batching (the baseline is measured in the same run).

Run: ``python -m bench.audio_reward_model [clips] [threads]``, or as a script:
``python bench/audio_reward_model.py [clips] [threads]``.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _sentences(n: int, seed: int = 0) -> list[tuple[str, int]]:
    from rewards.preference.audio_data import OBJECTS, SUBJECTS, VERBS

    rng = random.Random(seed)
    return [(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}.",
             rng.randint(80, 300)) for _ in range(n)]


def _best(fn, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls, seconds (the CPU is shared: the minimum is the
    least disturbed measurement)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(clips: int = 128, threads: int = 1, batch_size: int = 32, repeats: int = 3
         ) -> dict[str, float]:
    import torch

    from rewards.preference.audio_model import AudioRewardModel, AudioRMConfig
    from rlhf.audio.espeak import synthesize

    torch.set_num_threads(threads)
    items = _sentences(clips)
    synthesize("warm up")  # loads the library and its voice data
    waves = [synthesize(text, rate=rate)[0] for text, rate in items]
    sr = synthesize("warm up")[1]
    audio_s = sum(len(w) for w in waves) / sr
    synth_s = _best(lambda: [synthesize(text, rate=rate) for text, rate in items], repeats)

    torch.manual_seed(0)
    model = AudioRewardModel(AudioRMConfig()).eval()
    batched = model.score(waves, sr, batch_size=batch_size)  # warm-up at the batch shapes
    single = [model.score([w], sr)[0] for w in waves]
    batched_s = _best(lambda: model.score(waves, sr, batch_size=batch_size), repeats)
    single_s = _best(lambda: [model.score([w], sr) for w in waves], repeats)
    feats = [model.featurize(w, sr) for w in waves]
    feat_s = _best(lambda: [model.featurize(w, sr) for w in waves], repeats)
    forward_s = _best(lambda: model.score_features(feats, batch_size=batch_size), repeats)
    worst = max(abs(a - b) for a, b in zip(batched, single, strict=True))

    print(f"clips: {clips} sentences of 4 words at 80-300 words/min, "
          f"{audio_s / clips:.2f} s of audio each on average; torch threads: {threads}; "
          f"best of {repeats}")
    print(f"eSpeak NG synthesis:     {clips / synth_s:8.1f} clips/s "
          f"({audio_s / synth_s:.0f}x real time)")
    print(f"scoring, batches of {batch_size}: {clips / batched_s:8.1f} clips/s "
          f"(resample + log-mel {clips / feat_s:.0f} clips/s, "
          f"model forward {clips / forward_s:.0f} clips/s)")
    print(f"scoring, one by one:     {clips / single_s:8.1f} clips/s")
    print(f"speed-up of batching:    {single_s / batched_s:8.2f}x "
          f"(largest score difference {worst:.1e})")
    return {"synth_clips_per_s": clips / synth_s, "batched_clips_per_s": clips / batched_s,
            "single_clips_per_s": clips / single_s}


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
