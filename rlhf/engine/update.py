"""The optimisation half of a step: epochs × minibatches × micro-batches over a rollout batch.

Gradient accumulation is exact: each micro-batch's loss is weighted by its share of the
minibatch's normaliser (masked tokens for ``token_mean``, sequences otherwise), so k micro-batches
give the same gradient as one pass over the minibatch.

Data parallel (``W`` ranks, see :mod:`rlhf.engine.distributed`): ``batch`` is this rank's share,
``minibatch_size`` / ``micro_batch_size`` are global and each rank takes ``1 / W`` of them; the
normaliser is the global minibatch's (summed over ranks) and the gradients are summed over ranks
before each optimiser step, so the step equals the single-process step on the global minibatch.
Each rank shuffles its own rows (the same permutation of positions on every rank), so with
several minibatches per epoch a global minibatch is the union of the ranks' local ones.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch

from rlhf.engine import distributed as dist
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


    def to(self, device: torch.device | str) -> "Batch":
        """The targets on ``device`` (the rollout itself stays where it is)."""
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Batch(self.rollout, self.advantages.to(device), self.loss_mask.to(device),
                     move(self.ref_logp), move(self.old_values), move(self.returns))


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


def _local_sizes(n: int, opts: Any, world: int) -> tuple[list[slice], int]:
    """This rank's minibatch slices (of its shuffled rows) and micro-batch size.

    Every rank gets the same number of minibatches (some may be empty on a rank that kept fewer
    rows, e.g. after dynamic sampling), so the collectives of each optimiser step line up."""
    if world == 1:
        mb_size = opts.minibatch_size or n
        return _slices(n, mb_size), opts.micro_batch_size or mb_size
    most = dist.max_int(n)
    size = max(1, opts.minibatch_size // world if opts.minibatch_size else most)
    micro = opts.micro_batch_size // world if opts.micro_batch_size else size
    return [slice(min(i, n), min(i + size, n)) for i in range(0, most, size)], micro


def _reduce_stats(sums: dict[str, float], world: int) -> dict[str, float]:
    """Sum the share-weighted statistics over ranks (gradient norms are the same everywhere)."""
    if world == 1:
        return sums
    same = {k: v for k, v in sums.items() if k.endswith("grad_norm")}
    parts = dist.gather({k: v for k, v in sums.items() if k not in same})
    total: dict[str, float] = defaultdict(float)
    for part in parts:
        for k, v in part.items():
            total[k] += v
    return {**total, **same}


def _rows(batch: Batch, index: torch.Tensor) -> Batch:
    pick = (lambda t: None if t is None else t[index])  # noqa: E731
    return Batch(batch.rollout.select(index), batch.advantages[index], batch.loss_mask[index],
                 pick(batch.ref_logp), pick(batch.old_values), pick(batch.returns))


def update(policy: Any, batch: Batch, opts: Any, optimizer: torch.optim.Optimizer,
           scheduler: Any, generator: torch.Generator, kl_coef: float,
           critic: torch.nn.Module | None = None,
           critic_optimizer: torch.optim.Optimizer | None = None) -> dict[str, float]:
    """Run ``opts.epochs`` passes of minibatch updates; return mean statistics.

    Under data parallelism every rank calls this with its own rows (possibly none) and gets the
    same statistics back: those of the global batch."""
    n = len(batch.rollout)
    world = dist.world_size()
    mb_slices, micro_size = _local_sizes(n, opts, world)
    max_len = policy.options.sampling.max_new_tokens
    sums: dict[str, float] = defaultdict(float)
    count = 0
    for _ in range(opts.epochs):
        order = torch.randperm(n, generator=generator)
        for mb_slice in mb_slices:
            mb = _rows(batch, order[mb_slice])
            total = _normaliser(mb.loss_mask, opts.loss_agg)
            if world > 1:
                (total,) = dist.sum_values(total)
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
    return {k: v / max(count, 1) for k, v in _reduce_stats(sums, world).items()}


def _micro_step(policy: Any, micro: Batch, opts: Any, kl_coef: float, max_len: int,
                share: float, critic: torch.nn.Module | None) -> dict[str, float]:
    logp = policy.log_probs(micro.rollout)
    micro = micro.to(logp.device)  # targets beside the log-probs (a no-op on the CPU)
    old_logp = micro.rollout.old_logp.to(logp.device)
    loss, stats = policy_loss(logp, old_logp, micro.advantages, micro.loss_mask,
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
    dist.sum_gradients(params)
    if max_grad_norm is not None:
        norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    else:
        norm = float(torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None])))
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
