"""Process-pool speed-up of a deliberately slow reward: ``workers: 0`` vs ``workers: 2``.

Prints rows per second of each and the speed-up. The reward sleeps 5 ms per row and burns
5 ms of CPU per row, so both waiting and computing rewards are represented.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def slow_reward(prompts, completions, **columns):  # noqa: ANN001, ANN201
    out = []
    for c in completions:
        time.sleep(0.005)
        end = time.perf_counter() + 0.005
        while time.perf_counter() < end:
            pass
        out.append(float(len(c)))
    return out


def main(rows: int = 400, workers: int = 2) -> None:
    from rewards.compose import CompositeReward
    from rewards.spec import RewardSpec

    completions = [f"completion {i}" for i in range(rows)]
    prompts = ["p"] * rows
    target = "bench.rewards_pool:slow_reward"
    timings = {}
    for n in (0, workers):
        with CompositeReward([RewardSpec(name=target, workers=n)]) as design:
            design.score(prompts[:workers], completions[:workers])  # start the pool
            start = time.perf_counter()
            result = design.score(prompts, completions)
            timings[n] = time.perf_counter() - start
        assert result.values == [float(len(c)) for c in completions]
    for n, t in timings.items():
        print(f"workers={n}: {rows / t:8.1f} rows/s")
    print(f"speed-up with {workers} workers: {timings[0] / timings[workers]:.2f}x")


if __name__ == "__main__":
    main()
