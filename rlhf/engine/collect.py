"""The sampling half of a step: generate groups, score them, filter (DAPO dynamic sampling).

Rewards that could not be scored are ``NaN`` in the reward tensor; their rows stay out of the loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from rewards.compose import CompositeReward
from rlhf.engine.dynamic_sampling import keep_mask
from rlhf.policies.base import Rollout


@dataclass
class Collected:
    rollout: Rollout
    rewards: torch.Tensor
    """[N] total reward, NaN where unscored."""
    components: dict[str, list[float | None]]
    errors: dict[str, list[str]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)


def split_columns(rows: list[dict[str, Any]]) -> tuple[list[Any], dict[str, list[Any]]]:
    prompts = [r["prompt"] for r in rows]
    keys = sorted({k for r in rows for k in r if k != "prompt"})
    return prompts, {k: [r.get(k) for r in rows] for k in keys}


def score_rollout(design: CompositeReward, rollout: Rollout, group_size: int
                  ) -> tuple[torch.Tensor, dict[str, list[float | None]], dict[str, list[str]]]:
    result = design.score(rollout.prompts, rollout.completions, group_size=group_size,
                          completion_ids=rollout.token_lists(), **rollout.columns,
                          **rollout.extras)
    rewards = torch.tensor([math.nan if v is None else float(v) for v in result.values],
                           dtype=torch.float32)
    return rewards, result.components, result.errors


def fill_unscored(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Replace NaN by the group's mean of scored rows (0 when none scored): adds no variance."""
    groups = rewards.view(-1, group_size)
    valid = ~torch.isnan(groups)
    means = torch.where(valid, groups, torch.zeros_like(groups)).sum(1) / valid.sum(1).clamp(min=1)
    return torch.where(valid, groups, means.unsqueeze(1)).view(-1)


def _select_groups(c: Collected, groups: list[int], group_size: int) -> Collected:
    rows = [g * group_size + j for g in groups for j in range(group_size)]
    return Collected(c.rollout.select(rows), c.rewards[rows],
                     {k: [v[i] for i in rows] for k, v in c.components.items()}, c.errors)


def collect(next_rows: Callable[[int], list[dict[str, Any]]], policy: Any,
            design: CompositeReward, prompts_per_step: int, group_size: int,
            dynamic_sampling: bool, max_rounds: int,
            all_done: Callable[[bool], bool] = bool, refill: str = "full",
            all_max: Callable[[int], int] = int) -> Collected:
    """One step's batch: ``prompts_per_step`` groups of ``group_size`` completions.

    Under data parallelism ``prompts_per_step`` is this rank's share, ``next_rows`` hands out this
    rank's rows of each global draw, and ``all_done`` tells whether every rank has filled its
    batch: a rank that is full keeps drawing (so the sampler stays in step on all ranks) without
    generating, until all are full or ``max_rounds`` is reached.

    ``refill`` (dynamic sampling only): ``full`` generates ``prompts_per_step`` groups every
    round (as DAPO's reference implementation does, surplus dropped); ``missing`` generates, after
    the first round, only as many groups as the batch still lacks (the largest shortfall over
    ranks is drawn so the sampler stays in step; a rank generates its own shortfall).
    """
    kept: list[Collected] = []
    n_kept = generated = rounds = 0
    while True:
        rounds += 1
        missing = prompts_per_step - n_kept
        draw = prompts_per_step if rounds == 1 or refill == "full" else all_max(missing)
        rows = next_rows(draw)
        if missing > 0:
            if refill == "missing":
                rows = rows[:missing]
            prompts, columns = split_columns(rows)
            rollout = policy.generate(prompts, group_size, columns)
            rewards, components, errors = score_rollout(design, rollout, group_size)
            batch = Collected(rollout, rewards, components, errors)
            generated += len(rows)
            if not dynamic_sampling:
                kept.append(batch)
                n_kept += prompts_per_step
                break
            keep = keep_mask(fill_unscored(rewards, group_size), group_size)
            groups = [g for g in range(len(rows)) if bool(keep[g])]
            groups = groups[: prompts_per_step - n_kept]
            if groups:
                kept.append(_select_groups(batch, groups, group_size))
                n_kept += len(groups)
        if all_done(n_kept >= prompts_per_step or rounds >= max_rounds):
            break
    stats = {"ds_rounds": float(rounds), "ds_groups_kept": float(n_kept),
             "ds_kept_fraction": n_kept / generated,
             "ds_generated_per_kept": generated / n_kept if n_kept else math.inf}
    if not kept:
        return Collected(rollout.select([]), rewards[:0], {k: [] for k in components}, errors,
                         stats)
    merged = Collected(
        Rollout.concat([k.rollout for k in kept], policy.pad_token_id),
        torch.cat([k.rewards for k in kept]),
        {k: [v for part in kept for v in part.components[k]] for k in kept[0].components},
        {k: [m for part in kept for m in part.errors.get(k, [])]
         for k in {k for part in kept for k in part.errors}}, stats)
    return merged
