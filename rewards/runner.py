"""Run the rewards of a design over a batch: in-process, in a process pool, or awaited.

- A plain reward runs in this process.
- ``workers: N`` splits the batch into N chunks scored in a pool of N processes (spawned, so
  torch threads in the parent are safe); the pool is kept for the next batch.
- ``timeout: S`` bounds a batch: a reward still running after S seconds is stopped (its worker
  processes are terminated) and its rows get ``None`` with ``details.error``.
- Async reward functions (``async def fn(prompts, completions, **columns)``) of one design are
  awaited concurrently, each bounded by its own timeout.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from typing import Any

from rewards.base import FunctionReward, Reward, Scored
from rewards.spec import RewardSpec


def _score_chunk(reward: Reward, prompts: list[Any], completions: list[Any],
                 columns: dict[str, Any]) -> list[Scored]:
    return reward.score_batch(prompts, completions, **columns)


def _chunk(columns: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    return {k: (v[lo:hi] if isinstance(v, (list, tuple)) else v) for k, v in columns.items()}


def _failed(n: int, message: str) -> list[Scored]:
    return [Scored(None, {"error": message}) for _ in range(n)]


def is_async(reward: Reward) -> bool:
    return isinstance(reward, FunctionReward) and inspect.iscoroutinefunction(reward.fn)


class RewardRunner:
    """Holds process pools between batches; ``close()`` ends them."""

    def __init__(self) -> None:
        self.pools: dict[str, ProcessPoolExecutor] = {}

    def run_all(self, labels: Sequence[str], rewards: Sequence[Reward],
                specs: Sequence[RewardSpec], prompts: Sequence[Any], completions: Sequence[Any],
                columns: dict[str, Any]) -> dict[str, list[Scored]]:
        prompts, completions = list(prompts), list(completions)
        out: dict[str, list[Scored]] = {}
        pending_async = []
        for label, reward, spec in zip(labels, rewards, specs, strict=True):
            if is_async(reward):
                pending_async.append((label, reward, spec))
            elif spec.workers or spec.timeout:
                out[label] = self._in_pool(label, reward, spec, prompts, completions, columns)
            else:
                out[label] = reward.score_batch(prompts, completions, **columns)
        if pending_async:
            out.update(asyncio.run(self._gather(pending_async, prompts, completions, columns)))
        for label in labels:  # a reward must give one result per completion
            if len(out[label]) != len(completions):
                raise ValueError(f"reward {label!r} gave {len(out[label])} results for "
                                 f"{len(completions)} completions")
        return {label: out[label] for label in labels}

    async def _gather(self, items: list[tuple[str, Reward, RewardSpec]], prompts: list[Any],
                      completions: list[Any], columns: dict[str, Any]
                      ) -> dict[str, list[Scored]]:
        async def one(reward: Any, spec: RewardSpec) -> list[Scored]:
            try:
                values = await asyncio.wait_for(
                    reward.fn(prompts, completions, **columns, **reward.bound), spec.timeout)
            except TimeoutError:
                return _failed(len(completions), f"timeout: batch took over {spec.timeout}s")
            except Exception as exc:  # noqa: BLE001 - reported per row
                return _failed(len(completions), f"{type(exc).__name__}: {exc}")
            return [Scored(None if v is None else float(v)) for v in values]

        results = await asyncio.gather(*(one(r, s) for _, r, s in items))
        return {label: res for (label, _, _), res in zip(items, results, strict=True)}

    def _pool(self, label: str, workers: int) -> ProcessPoolExecutor:
        if label not in self.pools:
            self.pools[label] = ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        return self.pools[label]

    def _in_pool(self, label: str, reward: Reward, spec: RewardSpec, prompts: list[Any],
                 completions: list[Any], columns: dict[str, Any]) -> list[Scored]:
        n = len(completions)
        workers = max(1, spec.workers)
        pool = self._pool(label, workers)
        size = max(1, -(-n // workers))
        futures = [pool.submit(_score_chunk, reward, prompts[lo:lo + size],
                               completions[lo:lo + size], _chunk(columns, lo, lo + size))
                   for lo in range(0, n, size)]
        done, not_done = wait(futures, timeout=spec.timeout)
        if not_done:
            self._kill(label)
            return _failed(n, f"timeout: batch took over {spec.timeout}s")
        out: list[Scored] = []
        for fut in futures:
            try:
                out.extend(fut.result())
            except Exception as exc:  # noqa: BLE001 - a crashed worker fails its chunk only
                out.extend(_failed(min(size, n - len(out)), f"{type(exc).__name__}: {exc}"))
        return out

    def _kill(self, label: str) -> None:
        pool = self.pools.pop(label, None)
        if pool is None:
            return
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self.pools.clear()
