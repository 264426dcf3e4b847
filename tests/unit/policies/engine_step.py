"""One engine step (collect → group advantages → update) with an adapter, shared by adapter tests."""

from __future__ import annotations

from typing import Any

import torch

from rewards.compose import CompositeReward
from rlhf.engine.advantages import group_advantages
from rlhf.engine.collect import Collected, collect
from rlhf.engine.update import Batch, update
from rlhf.policies import build_policy


def run_engine_step(opts: Any, prompts: list[str] | list[dict[str, Any]],
                    spec: str = "tiny:lm", policy: Any = None
                    ) -> tuple[Collected, dict[str, float]]:
    """Build ``opts.policy`` from ``spec`` (or use ``policy``), collect one batch over
    ``prompts`` (strings, or whole prompt rows with their columns) with ``opts.rewards`` and take
    one update; return the batch and the update's statistics."""
    torch.manual_seed(0)
    pol = policy if policy is not None else build_policy(spec, opts.policy, need_reference=False)
    rows = iter([p if isinstance(p, dict) else {"prompt": p} for p in prompts] * 4)
    with CompositeReward(opts.rewards) as design:
        c = collect(lambda n: [next(rows) for _ in range(n)], pol, design,
                    opts.prompts_per_step, opts.group_size, False, 1)
    # spread rewards so every group has signal whatever the random policy produced
    adv = group_advantages(c.rewards + torch.arange(len(c.rewards)) * 0.01, opts.group_size)
    opt = torch.optim.AdamW([p for p in pol.model.parameters() if p.requires_grad], lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    stats = update(pol, Batch(c.rollout, adv, c.rollout.completion_mask.clone()), opts, opt,
                   sched, torch.Generator().manual_seed(0), 0.0)
    return c, stats


def assert_scores_its_own_samples(policy: Any, rollout: Any) -> None:
    """The adapter's log-probs of a fresh rollout carry gradients and equal the sampling-time
    ``old_logp`` (within 1e-5), and so does its frozen reference at the start of training."""
    logp = policy.log_probs(rollout)
    assert logp.requires_grad
    torch.testing.assert_close(logp.detach(), rollout.old_logp, atol=1e-5, rtol=0)
    torch.testing.assert_close(policy.log_probs(rollout, reference=True), rollout.old_logp,
                               atol=1e-5, rtol=0)
