"""Speed of ``asr.wer`` / ``asr.cer`` against ``jiwer`` on the same 20,000 random pairs.

Run ``python -m bench.rewards_asr`` (or ``python bench/rewards_asr.py``) from the repository
root. For each metric it prints rows per second of:

- ``jiwer per-pair``: one ``jiwer.wer(ref, hyp)`` / ``jiwer.cer(ref, hyp)`` call per pair;
- ``jiwer batched``: one call on the lists of references and hypotheses (pooled rate; the
  per-pair work is the same);
- ``ours batch``: one reward call on the whole batch, normaliser ``none`` (the text jiwer sees)
  and ``basic`` (lowercase + punctuation + whitespace, more work than jiwer's default);
- ``ours per-row``: one reward call per pair (normaliser ``none``);

and the ratios ours/jiwer (rows per second; > 1 means ours is faster). Each timing is the best
of ``repeats`` runs. Before timing, the per-pair rates of ours (``none``) are checked against
jiwer's to 1e-12.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def make_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` (reference, hypothesis) pairs: 3-40 words from a 2,000-word vocabulary, the
    hypothesis with 0-8 random word substitutions/deletions/insertions; single spaces, no
    leading or trailing whitespace, non-empty references."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 9))) for _ in range(2000)]
    refs, hyps = [], []
    for _ in range(n):
        ref = [rng.choice(vocab) for _ in range(rng.randint(3, 40))]
        hyp = list(ref)
        for _ in range(rng.randint(0, 8)):
            op = rng.random()
            if op < 1 / 3 and hyp:
                hyp[rng.randrange(len(hyp))] = rng.choice(vocab)
            elif op < 2 / 3 and hyp:
                del hyp[rng.randrange(len(hyp))]
            else:
                hyp.insert(rng.randint(0, len(hyp)), rng.choice(vocab))
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp))
    return refs, hyps


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(rows: int = 20_000, repeats: int = 3) -> None:
    import jiwer

    from rewards.verifiable.asr import CharErrorRate, WordErrorRate

    refs, hyps = make_pairs(rows)
    prompts = [""] * rows
    for metric, cls, jfn in (("wer", WordErrorRate, jiwer.wer), ("cer", CharErrorRate, jiwer.cer)):
        ours, ours_basic = cls(normalizer="none"), cls(normalizer="basic")
        ours_basic(prompts[:1], hyps[:1], reference=refs[:1])  # build the punctuation table
        check = ours(prompts, hyps, reference=refs)
        worst = max(abs((1 - v) - jfn(r, h)) for v, r, h in zip(check, refs, hyps))
        assert worst <= 1e-12, f"{metric}: ours and jiwer differ by {worst}"
        timings = {
            "jiwer per-pair": best_time(lambda: [jfn(r, h) for r, h in zip(refs, hyps)],
                                        repeats),
            "jiwer batched": best_time(lambda: jfn(refs, hyps), repeats),
            "ours batch (none)": best_time(
                lambda: ours(prompts, hyps, reference=refs), repeats),
            "ours batch (basic)": best_time(
                lambda: ours_basic(prompts, hyps, reference=refs), repeats),
            "ours per-row (none)": best_time(
                lambda: [ours(prompts[i:i + 1], hyps[i:i + 1], reference=refs[i:i + 1])
                         for i in range(rows)], repeats),
        }
        print(f"asr.{metric} on {rows:,} pairs (best of {repeats}):")
        for label, seconds in timings.items():
            print(f"  {label:<22} {rows / seconds:>12,.0f} rows/s")
        for label in ("ours batch (none)", "ours batch (basic)", "ours per-row (none)"):
            for base in ("jiwer per-pair", "jiwer batched"):
                print(f"  {label} / {base}: {timings[base] / timings[label]:.2f}x")


if __name__ == "__main__":
    main()
