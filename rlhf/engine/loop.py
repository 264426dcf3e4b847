"""The on-policy RL loop shared by ``grpo``, ``dapo`` and ``ppo``.

Per step: prompts → policy adapter generates G completions each → composite reward → optional
dynamic-sampling filter and refill → advantages (group, RLOO or GAE) → ``epochs`` passes of
minibatch updates → metrics and monitors → checkpoint every ``save_every`` steps.

Under data parallelism (``rlhf run --num-processes N``) each rank runs this loop on its share of
every step's prompts; see :mod:`rlhf.engine.distributed` for how the work and the loss are
split. Rank 0 alone evaluates, logs, writes checkpoints (each rank's RNG state included) and saves
the model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from rewards.compose import CompositeReward
from rlhf.engine import advantages as adv
from rlhf.engine import distributed as dist
from rlhf.engine.checkpoint import Stateful, load_checkpoint, load_rank_state, save_checkpoint
from rlhf.engine.collect import Collected, collect, fill_unscored
from rlhf.engine.device import place
from rlhf.engine.kl_control import AdaptiveKLController, FixedKLController
from rlhf.engine.losses import masked_whiten
from rlhf.engine.options import RLOptions
from rlhf.engine.reporting import StepReporter, evaluate_prompts
from rlhf.engine.sampler import PromptSampler, resolve_audio_paths
from rlhf.engine.update import Batch, update
from rlhf.errors import UserError
from rlhf.stages.base import StageContext, StageResult


def check_world(opts: RLOptions, world: int) -> None:
    """Sizes that must split evenly over ``world`` ranks (whole groups, global batch sizes)."""
    sizes = {"prompts_per_step": opts.prompts_per_step, "minibatch_size": opts.minibatch_size,
             "micro_batch_size": opts.micro_batch_size}
    for name, value in sizes.items():
        if value is not None and value % world:
            raise UserError(f"{name} ({value}) must be divisible by the number of processes "
                            f"({world}): every process takes an equal share")


class Engine:
    """Builds the parts of an RL stage from its options and runs the loop."""

    def __init__(self, ctx: StageContext, opts: RLOptions) -> None:
        from rlhf.data import load_records
        from rlhf.policies import build_policy

        self.ctx, self.opts = ctx, opts
        self.world, self.rank = dist.world_size(), dist.rank()
        check_world(opts, self.world)
        torch.manual_seed(ctx.seed)
        loaded = load_records(ctx.path(opts.data.train), "prompt",
                              on_bad_rows=opts.data.on_bad_rows,
                              rejected_path=ctx.stage_dir / "rejected_train.jsonl")
        self.sampler = PromptSampler(resolve_audio_paths(loaded.rows, ctx.path(opts.data.train)),
                                     ctx.seed)
        self.eval_rows = (resolve_audio_paths(load_records(ctx.path(opts.data.eval), "prompt").rows,
                                              ctx.path(opts.data.eval))
                          if opts.data.eval else [])
        self.policy = build_policy(ctx.resolve(opts.policy.model), opts.policy,
                                   need_reference=opts.kl_coef > 0)
        # ``@stage/path`` in a reward's params (e.g. preference.model's ``path: "@rm/model"``)
        rewards = [r.model_copy(update={"params": {k: ctx.resolve(v) if isinstance(v, str) else v
                                                   for k, v in r.params.items()}})
                   for r in opts.rewards]
        self.design = CompositeReward(rewards, opts.reward_aggregation, opts.reward_clip)
        self.kl = (AdaptiveKLController(opts.kl_coef, opts.kl_target, opts.kl_horizon)
                   if opts.kl_target else FixedKLController(opts.kl_coef))
        self.critic = self.critic_optimizer = None
        if opts.advantage == "gae":
            from rlhf.engine.critic import ValueModel

            spec = (opts.critic.model if opts.critic and opts.critic.model else opts.policy.model)
            self.critic = ValueModel.from_spec(ctx.resolve(spec), opts.policy.trust_remote_code)
            lr = opts.critic.learning_rate if opts.critic else 1e-3
            self.critic_optimizer = torch.optim.AdamW(self.critic.parameters(), lr=lr)
        self.device = place(self.policy, self.critic, opts.device)
        params = [p for p in self.policy.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=opts.learning_rate,
                                           weight_decay=opts.weight_decay)
        warm = opts.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
        self.generator = torch.Generator().manual_seed(ctx.seed + 1)
        self.reporter = StepReporter(ctx, opts)
        self.step = 0
        if self.world > 1:  # identical replicas; then each rank samples its own completions
            for module in (self.policy.model, self.policy.reference_model, self.critic):
                dist.broadcast_module(module)
            torch.manual_seed(ctx.seed + self.rank)

    # -- checkpoints -----------------------------------------------------------------------------
    def _parts(self) -> Stateful:
        optimizers = {"policy": self.optimizer}
        if self.critic_optimizer is not None:
            optimizers["critic"] = self.critic_optimizer
        return Stateful(self.policy.model, optimizers, {"policy": self.scheduler}, self.critic)

    def _rank_state(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        tensors, metadata = dist.rng_state()
        return {**tensors, "generator": self.generator.get_state()}, metadata

    def save(self) -> None:
        extra = {"sampler": self.sampler.state_dict(), "kl": self.kl.state_dict(),
                 "generator": self.generator.get_state().tolist(),
                 "reporter": self.reporter.state_dict()}
        ranks = dist.gather(self._rank_state()) if self.world > 1 else None
        if dist.is_main():
            save_checkpoint(self.ctx.stage_dir / "checkpoints", self.step, self._parts(), extra,
                            keep=self.opts.keep_checkpoints, rank_states=ranks)
        dist.barrier()

    def restore(self, path: Path) -> None:
        state = load_checkpoint(path, self._parts())
        self.step = int(state["step"])
        self.sampler.load_state_dict(state["sampler"])
        self.kl.load_state_dict(state["kl"])
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        self.reporter.load_state_dict(state.get("reporter", {}))
        own = load_rank_state(path, self.rank) if self.world > 1 else None
        if own is not None:
            tensors, metadata = own
            dist.set_rng_state(tensors, metadata)
            self.generator.set_state(tensors["generator"])

    def _next_rows(self, n: int) -> list[dict[str, Any]]:
        """This rank's ``n`` rows of a global draw of ``n × world`` (the same on every rank)."""
        if self.world == 1:
            return self.sampler.next(n)
        return self.sampler.next(n * self.world)[self.rank * n:(self.rank + 1) * n]

    # -- one step --------------------------------------------------------------------------------
    def _targets(self, c: Collected) -> Batch:
        o = self.opts
        rollout = c.rollout
        scored = ~torch.isnan(c.rewards)
        loss_mask = rollout.completion_mask * scored.float().unsqueeze(1)
        if o.mask_truncated:
            loss_mask = loss_mask * (~rollout.truncated).float().unsqueeze(1)
        need_ref = self.kl.value > 0
        empty = len(rollout) == 0  # possible on one rank with dynamic sampling
        ref_logp = None
        if need_ref:
            ref_logp = (torch.zeros_like(rollout.old_logp) if empty
                        else self.policy.log_probs(rollout, reference=True).cpu())
        if o.advantage == "gae":
            rewards = torch.where(scored, c.rewards, torch.zeros_like(c.rewards))
            with torch.no_grad():
                values = (torch.zeros_like(rollout.old_logp) if empty
                          else self.critic(rollout).cpu())
            token_rewards = torch.zeros_like(rollout.old_logp)
            if ref_logp is not None:
                token_rewards = -self.kl.value * (rollout.old_logp - ref_logp)
            last = (rollout.completion_mask.sum(1).long() - 1).clamp(min=0)
            token_rewards[torch.arange(len(rollout)), last] += rewards
            token_rewards = token_rewards * rollout.completion_mask
            advantages, returns = adv.gae(token_rewards, values, rollout.completion_mask,
                                          o.gamma, o.lam)
            return Batch(rollout, self._whiten(advantages, loss_mask), loss_mask, None, values,
                         returns)
        filled = fill_unscored(c.rewards, o.group_size)
        if o.advantage == "rloo":
            advantages = adv.rloo_advantages(filled, o.group_size)
        elif o.advantage_scale == "batch" and self.world > 1:  # the std of the global batch
            parts = dist.gather(filled)
            start = sum(len(p) for p in parts[:self.rank])
            whole = adv.group_advantages(torch.cat(parts), o.group_size, scale="batch")
            advantages = whole[start:start + len(filled)]
        else:
            advantages = adv.group_advantages(filled, o.group_size, scale=o.advantage_scale)
        return Batch(rollout, advantages, loss_mask, ref_logp)

    def _whiten(self, advantages: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
        """PPO's advantage whitening, over the global batch."""
        if self.world == 1:
            return masked_whiten(advantages, loss_mask) * loss_mask \
                if loss_mask.sum() > 1 else advantages
        (count,) = dist.sum_values(float(loss_mask.sum()))
        return dist.masked_whiten(advantages, loss_mask) * loss_mask if count > 1 else advantages

    def train_step(self) -> dict[str, float]:
        o = self.opts
        started = time.perf_counter()
        c = collect(self._next_rows, self.policy, self.design, o.prompts_per_step // self.world,
                    o.group_size, o.dynamic_sampling, o.max_rounds, dist.all_true, o.refill,
                    dist.max_int)
        generated = time.perf_counter()
        stats: dict[str, float] = {}
        if dist.any_true(len(c.rollout) > 0):
            batch = self._targets(c)
            self.policy.model.train()
            stats = update(self.policy, batch, o, self.optimizer, self.scheduler, self.generator,
                           self.kl.value if o.advantage != "gae" else 0.0, self.critic,
                           self.critic_optimizer)
            kl_ref = self.reporter.kl_to_reference(self.policy, batch, self.kl.value > 0)
            if kl_ref is not None:
                stats["kl_ref"] = kl_ref
                self.kl.update(kl_ref, o.prompts_per_step * o.group_size)
        stats.update(c.stats if o.dynamic_sampling else {})
        stats["kl_coef"] = self.kl.value
        stats["lr"] = self.scheduler.get_last_lr()[0]
        stats["time/generate_s"] = generated - started
        stats["time/update_s"] = time.perf_counter() - generated
        return self.reporter.step(self.step, self.policy, c, stats)

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> StageResult:
        o, ctx = self.opts, self.ctx
        if ctx.checkpoint is not None:
            self.restore(ctx.checkpoint)
        elif self.eval_rows and dist.is_main():
            self.reporter.eval_before = evaluate_prompts(self.policy, self.design, self.eval_rows,
                                                         o.data.eval_samples)
        if dist.is_main():
            self.reporter.start_progress(self.step, o.steps)
        try:
            while self.step < o.steps:
                self.step += 1
                self.train_step()
                if self.step % o.save_every == 0 or self.step == o.steps:
                    self.save()
        finally:
            self.reporter.stop_progress()
            self.design.close()
        if not dist.is_main():
            return self.reporter.result(None)
        self.policy.save(ctx.stage_dir / "model")
        after = (evaluate_prompts(self.policy, self.design, self.eval_rows, o.data.eval_samples)
                 if self.eval_rows else None)
        return self.reporter.result(after)


def run_rl_stage(ctx: StageContext, opts: RLOptions) -> StageResult:
    """Entry point of the ``grpo`` / ``dapo`` / ``ppo`` stage kinds."""
    return Engine(ctx, opts).run()

