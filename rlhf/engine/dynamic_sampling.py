"""DAPO dynamic sampling (Yu et al. 2025, arXiv 2503.14476, section 3.2).

A group whose completions all get the same reward has zero group-relative advantage, so it
contributes no policy gradient and only dilutes the batch. DAPO drops such groups and keeps
generating until the batch holds the wanted number of informative groups, within a bounded
number of generation rounds.

- :func:`keep_mask`: which groups have reward std > 0. With 0/1 rewards this drops groups that
  are all right or all wrong. With continuous rewards the std rule is the correct filter; a
  rule on the range of group *means* would let zero-variance groups through.
- :class:`GroupBuffer`: accumulates kept groups (of any item type) over rounds and hands back
  exactly ``target_groups`` of them, with the statistics to log.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from rlhf.engine.advantages import reshape_groups

__all__ = ["GroupBuffer", "STD_TOL", "keep_mask"]

STD_TOL = 1e-12
"""A group is kept when its reward std (computed in float64) is strictly above this."""


@torch.no_grad()
def keep_mask(rewards: Tensor, group_size: int) -> Tensor:
    """Which groups to keep: those whose rewards are not all equal (std > 0).

    A group is kept when its largest and smallest rewards differ and its unbiased std, computed
    in float64, is above :data:`STD_TOL` (``1e-12``). The float64 std keeps a group of equal
    float32 rewards from passing on rounding error, while any real spread (e.g.
    ``[0.5, 0.5000001]``) is kept. A group of size 1 has no spread and is dropped; a group
    containing NaN is dropped.

    Args:
        rewards: ``[N]`` one scalar reward per completion, groups of ``group_size`` contiguous.
        group_size: completions per prompt; ``N`` must be divisible by it.

    Returns:
        ``BoolTensor[N // group_size]``, True for groups to keep.
    """
    grouped = reshape_groups(rewards, group_size, who="keep_mask").detach().to(torch.float64)
    spread = grouped.amax(dim=1) > grouped.amin(dim=1)
    if group_size == 1:
        return torch.zeros_like(spread)
    return spread & (grouped.std(dim=1) > STD_TOL)


class GroupBuffer:
    """Collect informative groups across generation rounds until a batch is full.

    Typical use, one buffer per training step::

        buf = GroupBuffer(target_groups=32, max_rounds=4)
        while not buf.done:
            groups, rewards = generate_and_score()   # list of G-completion groups, Tensor[N]
            buf.add(groups, rewards, group_size=G)
        batch = buf.take()                           # exactly 32 groups if buf.full
        log(buf.stats())

    ``groups`` items are opaque (a rollout slice, a dict, an index); the buffer only stores the
    kept ones in arrival order. When more groups are kept than needed, :meth:`take` returns the
    first ``target_groups`` and the surplus is dropped and counted. If ``max_rounds`` rounds
    pass before the buffer is full, :meth:`take` returns the groups kept so far, which may be
    fewer than ``target_groups`` (possibly none), and ``stats()["filled"]`` is False; the
    caller decides whether to train on a short batch or skip the step.

    Args:
        target_groups: kept groups wanted per batch (>= 1).
        max_rounds: bound on the number of :meth:`add` calls (generation rounds, >= 1).
    """

    def __init__(self, target_groups: int, max_rounds: int) -> None:
        if target_groups < 1:
            raise ValueError(f"GroupBuffer: target_groups must be >= 1, got {target_groups}")
        if max_rounds < 1:
            raise ValueError(f"GroupBuffer: max_rounds must be >= 1, got {max_rounds}")
        self.target_groups = int(target_groups)
        self.max_rounds = int(max_rounds)
        self.rounds = 0
        self.groups_generated = 0
        self._kept: list[Any] = []

    @property
    def groups_kept(self) -> int:
        """Groups that passed :func:`keep_mask` so far, surplus included."""
        return len(self._kept)

    @property
    def full(self) -> bool:
        """At least ``target_groups`` groups have been kept."""
        return len(self._kept) >= self.target_groups

    @property
    def done(self) -> bool:
        """Full, or ``max_rounds`` rounds used: time to :meth:`take`."""
        return self.full or self.rounds >= self.max_rounds

    def add(self, groups: list[Any], rewards: Tensor, group_size: int) -> int:
        """Add one round of candidate groups; keep those with reward std > 0.

        Args:
            groups: ``N // group_size`` items, one per group, in the order of ``rewards``.
            rewards: ``[N]`` rewards, each group's ``group_size`` rewards contiguous.
            group_size: completions per group.

        Returns:
            The number of groups kept from this round.

        Raises:
            RuntimeError: the buffer is already :attr:`done` (full or out of rounds).
            ValueError: ``len(groups)`` does not match the number of reward groups.
        """
        if self.done:
            why = "full" if self.full else f"out of rounds ({self.max_rounds})"
            raise RuntimeError(f"GroupBuffer.add: the buffer is {why}; call take()")
        keep = keep_mask(rewards, group_size)
        if len(groups) != keep.numel():
            raise ValueError(
                f"GroupBuffer.add: {len(groups)} groups but {keep.numel()} groups of "
                f"{group_size} rewards"
            )
        self.rounds += 1
        self.groups_generated += len(groups)
        kept = [g for g, k in zip(groups, keep.tolist(), strict=True) if k]
        self._kept.extend(kept)
        return len(kept)

    def take(self) -> list[Any]:
        """The first ``target_groups`` kept groups (fewer if the rounds ran out before full)."""
        return list(self._kept[: self.target_groups])

    def stats(self) -> dict[str, float | int | bool]:
        """Counts to log for the batch.

        Returns:
            ``kept_fraction`` (kept / generated, 0 if nothing generated), ``rounds``,
            ``generated_per_kept`` (generated / kept; ``inf`` if nothing was kept),
            ``groups_generated``, ``groups_kept`` (surplus included), ``groups_surplus``
            (kept beyond ``target_groups``, dropped by :meth:`take`), and ``filled``.
        """
        generated, kept = self.groups_generated, self.groups_kept
        return {
            "kept_fraction": kept / generated if generated else 0.0,
            "rounds": self.rounds,
            "generated_per_kept": generated / kept if kept else math.inf,
            "groups_generated": generated,
            "groups_kept": kept,
            "groups_surplus": max(kept - self.target_groups, 0),
            "filled": self.full,
        }
