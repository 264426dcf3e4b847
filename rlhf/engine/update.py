"""The optimisation half of a step: epochs × minibatches × micro-batches over a rollout batch.

Gradient accumulation is exact: each micro-batch's loss is weighted by its share of the
minibatch's normaliser (masked tokens for ``token_mean``, sequences otherwise), so k micro-batches
give the same gradient as one pass over the minibatch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch

from rlhf.engine.losses import kl_penalty, policy_loss, value_loss
from rlhf.policies.base import Rollout


@dataclass
class Batch:
    """A scored rollout with its training targets (rows already filtered)."""

    rollout: Rollout
    advantages: torch.Tensor
    """[N] or [N, T]."""
    loss_mask: torch.Tensor
    """[N, T]: completion mask with unscored / filtered rows zeroed."""
    ref_logp: torch.Tensor | None = None
    """[N, T] reference log-probs (KL in the loss), or None."""
    old_values: torch.Tensor | None = None
    returns: torch.Tensor | None = None


def _normaliser(mask: torch.Tensor, agg: str) -> float:
    if agg == "token_mean":
        return float(mask.sum())
    if agg == "seq_mean_token_mean":
        return float((mask.sum(dim=1) > 0).sum())
    return float(mask.shape[0])


def _aggregate(per_token: torch.Tensor, mask: torch.Tensor, agg: str,
               max_len: int | None) -> torch.Tensor:
    """The same aggregation as the policy loss, for the KL term."""
    if agg == "token_mean":
        return (per_token * mask).sum() / mask.sum().clamp(min=1)
    lengths = mask.sum(dim=1)
    if agg == "seq_mean_token_mean":
        valid = lengths > 0
        per_seq = (per_token * mask).sum(dim=1)[valid] / lengths[valid]
        return per_seq.mean() if valid.any() else (per_token * 0).sum()
    return ((per_token * mask).sum(dim=1) / float(max_len)).mean()


def _slices(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _rows(batch: Batch, index: torch.Tensor) -> Batch:
    pick = (lambda t: None if t is None else t[index])  # noqa: E731
    return Batch(batch.rollout.select(index), batch.advantages[index], batch.loss_mask[index],
                 pick(batch.ref_logp), pick(batch.old_values), pick(batch.returns))


def update(policy: Any, batch: Batch, opts: Any, optimizer: torch.optim.Optimizer,
           scheduler: Any, generator: torch.Generator, kl_coef: float,
           critic: torch.nn.Module | None = None,
           critic_optimizer: torch.optim.Optimizer | None = None) -> dict[str, float]:
    """Run ``opts.epochs`` passes of minibatch updates; return mean statistics."""
    n = len(batch.rollout)
    mb_size = opts.minibatch_size or n
    micro_size = opts.micro_batch_size or mb_size
    max_len = policy.options.sampling.max_new_tokens
    sums: dict[str, float] = defaultdict(float)
    count = 0
    for _ in range(opts.epochs):
        order = torch.randperm(n, generator=generator)
        for mb_slice in _slices(n, mb_size):
            mb = _rows(batch, order[mb_slice])
            total = _normaliser(mb.loss_mask, opts.loss_agg)
            if total == 0:
                continue
            for micro_slice in _slices(len(mb.rollout), micro_size):
                micro = _rows(mb, torch.arange(len(mb.rollout))[micro_slice])
                share = _normaliser(micro.loss_mask, opts.loss_agg) / total
                if share == 0:
                    continue
                stats = _micro_step(policy, micro, opts, kl_coef, max_len, share, critic)
                for k, v in stats.items():
                    sums[k] += v * share
            norms = _optimizer_step(policy.model, optimizer, scheduler, opts.max_grad_norm)
            sums["grad_norm"] += norms
            if critic is not None and critic_optimizer is not None:
                sums["critic_grad_norm"] += _optimizer_step(critic, critic_optimizer, None,
                                                            opts.max_grad_norm)
            count += 1
    return {k: v / max(count, 1) for k, v in sums.items()}


def _micro_step(policy: Any, micro: Batch, opts: Any, kl_coef: float, max_len: int,
                share: float, critic: torch.nn.Module | None) -> dict[str, float]:
    logp = policy.log_probs(micro.rollout)
    loss, stats = policy_loss(logp, micro.rollout.old_logp, micro.advantages, micro.loss_mask,
                              opts.eps_low, opts.eps_high, agg=opts.loss_agg, max_len=max_len)
    out = {"policy_loss": float(loss.detach()), **{k: float(v) for k, v in stats.items()}}
    if micro.ref_logp is not None and kl_coef > 0:
        kl = _aggregate(kl_penalty(logp, micro.ref_logp, kind=opts.kl_estimator),
                        micro.loss_mask, opts.loss_agg, max_len)
        loss = loss + kl_coef * kl
        out["kl_loss"] = float(kl.detach())
    (loss * share).backward()
    if critic is not None and micro.returns is not None:
        values = critic(micro.rollout)
        clip = opts.critic.value_clip if opts.critic else None
        v_loss, v_stats = value_loss(values, micro.old_values, micro.returns, micro.loss_mask, clip)
        coef = opts.critic.coef if opts.critic else 0.5
        (coef * v_loss * share).backward()
        out["value_loss"] = float(v_loss.detach())
        out.update({k: float(v) for k, v in v_stats.items()})
    return out


def _optimizer_step(module: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    max_grad_norm: float | None) -> float:
    params = [p for p in module.parameters() if p.requires_grad]
    if max_grad_norm is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    else:
        norm = float(torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
