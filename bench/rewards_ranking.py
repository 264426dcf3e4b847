"""Benchmark: ``ranking.ndcg`` against scikit-learn's ``ndcg_score`` on the same ranked lists.

Run from the repository root::

    python bench/rewards_ranking.py            # or: python -m bench.rewards_ranking
    python bench/rewards_ranking.py --rows 20000 --repeat 1

Inputs: ``--rows`` ranked lists (default 100,000), each of ``--items`` distinct ids (default 20)
drawn from a 10,000-id catalogue, with graded relevance 0-3 for every listed id; the completions
are the lists as JSON text (already clean: no fences, no prose), ``k = 10``.

Timed, best of ``--repeat`` runs, all in this process on the same inputs:

- ``ours``: ``NDCG(k).score_batch`` from the JSON completions and relevance dicts, one ``Scored``
  (value and details) per row;
- ``ours, groups of 8``: the same lists, with every 8 consecutive rows sharing one relevance
  object, as the rollouts of one prompt do (the ideal DCG is computed once per group);
- ``sklearn kernel``: ``ndcg_score(y_true, y_score, k, ignore_ties=True)`` on ready-made
  ``[rows, items]`` float arrays (its vectorised fast path; valid because the scores are
  distinct). It does not parse the completions and returns only the mean;
- ``sklearn end-to-end``: the same call plus building ``y_true`` from the same JSON completions
  and relevance dicts (``json.loads`` and one lookup per id), i.e. from our inputs;
- ``sklearn default``: ``ndcg_score(y_true, y_score, k)`` with its default ``ignore_ties=False``
  (one Python-level tie-averaging pass per row), timed once.

Before timing, the numbers are checked: our mean equals sklearn's to 1e-9, and the per-row values
of a sample equal sklearn's single-row ``ndcg_score`` to 1e-9 (the benchmark stops otherwise).
Each ratio is our rows/second divided by the baseline's (> 1: ours is faster).

Reading the figures: the sklearn kernel starts from ready-made arrays and returns one mean, while
the reward must decode every completion and return one ``Scored`` (value and details) per row, as
the reward contract asks. The ``floor`` line times those two steps alone (no metric); when it is
above the kernel's time, the kernel is a bound no per-row reward in Python can reach, and the
end-to-end line is the like-for-like comparison.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.metrics import ndcg_score  # noqa: E402

from rewards.base import Scored  # noqa: E402
from rewards.verifiable.ranking import NDCG  # noqa: E402

GRADES = (0, 0, 0, 1, 1, 2, 3)  # graded relevance, mostly 0 as in recommendation data
GROUP = 8


def make_inputs(rows: int, items: int, seed: int):
    """JSON completions, relevance dicts and sklearn's ``y_true`` (in list order) and
    ``y_score`` (``items .. 1``: distinct, so sklearn's ranking is the list order)."""
    rng = random.Random(seed)
    catalogue = [f"item_{j}" for j in range(10_000)]
    completions, relevances = [], []
    y_true = np.empty((rows, items))
    for r in range(rows):
        ids = rng.sample(catalogue, items)
        grades = [rng.choice(GRADES) for _ in ids]
        completions.append(json.dumps(ids))
        relevances.append(dict(zip(ids, grades)))
        y_true[r] = grades
    y_score = np.tile(np.arange(items, 0, -1, dtype=float), (rows, 1))
    return completions, relevances, y_true, y_score


def sklearn_end_to_end(completions: list[str], relevances: list[dict], k: int) -> float:
    """sklearn from our inputs: parse every list, look up its gains, then the batched call."""
    y_true = np.array([[rel.get(i, 0) for i in json.loads(text)]
                       for text, rel in zip(completions, relevances)], dtype=float)
    y_score = np.tile(np.arange(y_true.shape[1], 0, -1, dtype=float), (len(y_true), 1))
    return float(ndcg_score(y_true, y_score, k=k, ignore_ties=True))


def floor(completions: list[str]) -> list[Scored]:
    """The per-row work any contract-abiding reward does, without the metric: decode each
    completion and build one ``Scored`` with details."""
    decode = json.JSONDecoder().raw_decode
    return [Scored(float(len(decode(text)[0])), {"valid": True, "dcg": 0.0, "idcg": 0.0})
            for text in completions]


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def check(reward: NDCG, completions, relevances, y_true, y_score, k: int, sample: int) -> None:
    """Stop unless our numbers are sklearn's (mean over all rows; per row on a sample)."""
    ours = [s.value for s in reward.score_batch([None] * len(completions), completions,
                                                relevance=relevances)]
    mean_sk = float(ndcg_score(y_true, y_score, k=k, ignore_ties=True))
    if abs(float(np.mean(ours)) - mean_sk) > 1e-9:
        sys.exit(f"MISMATCH: mean NDCG ours {np.mean(ours)!r} vs sklearn {mean_sk!r}")
    if abs(sklearn_end_to_end(completions, relevances, k) - mean_sk) > 1e-9:
        sys.exit("MISMATCH: sklearn end-to-end differs from the sklearn kernel")
    for r in random.Random(0).sample(range(len(completions)), min(sample, len(completions))):
        ref = float(ndcg_score(y_true[r:r + 1], y_score[r:r + 1], k=k))
        if abs(ours[r] - ref) > 1e-9:
            sys.exit(f"MISMATCH at row {r}: ours {ours[r]!r} vs sklearn {ref!r}")
    print(f"check: mean NDCG@{k} {mean_sk:.12f} equal to 1e-9 (all rows); per-row equal to 1e-9 "
          f"on {min(sample, len(completions))} sampled rows")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20, help="ids per list")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--sample", type=int, default=500, help="rows checked one by one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-default", action="store_true",
                        help="skip sklearn with ignore_ties=False (slow)")
    args = parser.parse_args(argv)

    completions, relevances, y_true, y_score = make_inputs(args.rows, args.items, args.seed)
    grouped = [relevances[(r // GROUP) * GROUP] for r in range(args.rows)]
    reward = NDCG(k=args.k)
    prompts = [None] * args.rows
    check(reward, completions, relevances, y_true, y_score, args.k, args.sample)

    timings = {
        "ours": best_time(lambda: reward.score_batch(prompts, completions,
                                                     relevance=relevances), args.repeat),
        f"ours, groups of {GROUP}": best_time(lambda: reward.score_batch(
            prompts, completions, relevance=grouped), args.repeat),
        "sklearn kernel (ignore_ties=True)": best_time(
            lambda: ndcg_score(y_true, y_score, k=args.k, ignore_ties=True), args.repeat),
        "sklearn end-to-end (ignore_ties=True)": best_time(
            lambda: sklearn_end_to_end(completions, relevances, args.k), args.repeat),
    }
    timings["floor: decode + Scored only, no metric"] = best_time(
        lambda: floor(completions), args.repeat)
    if not args.skip_default:
        timings["sklearn kernel (default ignore_ties=False)"] = best_time(
            lambda: ndcg_score(y_true, y_score, k=args.k), 1)

    rate = {name: args.rows / seconds for name, seconds in timings.items()}
    print(f"\nNDCG@{args.k} of {args.rows:,} lists of {args.items} ids "
          f"(best of {args.repeat}; python {sys.version.split()[0]})")
    print(f"{'':44}{'seconds':>9}{'rows/s':>13}")
    for name, seconds in timings.items():
        print(f"{name:44}{seconds:9.3f}{rate[name]:13,.0f}")
    ours = [name for name in timings if name.startswith("ours")]
    print("\nratio = our rows/s / baseline rows/s (> 1: ours is faster)")
    print(f"{'baseline':44}" + "".join(f"{name:>20}" for name in ours))
    for name in timings:
        if name.startswith("sklearn"):
            print(f"{name:44}" + "".join(f"{rate[o] / rate[name]:20.2f}" for o in ours))

if __name__ == "__main__":
    main()
