"""The on-policy RL loop shared by ``grpo``, ``dapo`` and ``ppo``.

Per step: prompts → policy adapter generates G completions each → composite reward → optional
dynamic-sampling filter and refill → advantages (group, RLOO or GAE) → ``epochs`` passes of
minibatch updates → metrics and monitors → checkpoint every ``save_every`` steps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from rewards.compose import CompositeReward
from rlhf.engine import advantages as adv
from rlhf.engine.checkpoint import Stateful, load_checkpoint, save_checkpoint
from rlhf.engine.collect import Collected, collect, fill_unscored
from rlhf.engine.kl_control import AdaptiveKLController, FixedKLController
from rlhf.engine.losses import masked_whiten
from rlhf.engine.options import RLOptions
from rlhf.engine.reporting import StepReporter, evaluate_prompts
from rlhf.engine.sampler import PromptSampler
from rlhf.engine.update import Batch, update
from rlhf.stages.base import StageContext, StageResult


class Engine:
    """Builds the parts of an RL stage from its options and runs the loop."""

    def __init__(self, ctx: StageContext, opts: RLOptions) -> None:
        from rlhf.data import load_records
        from rlhf.policies.text import TextPolicy

        self.ctx, self.opts = ctx, opts
        torch.manual_seed(ctx.seed)
        loaded = load_records(ctx.path(opts.data.train), "prompt",
                              on_bad_rows=opts.data.on_bad_rows,
                              rejected_path=ctx.stage_dir / "rejected_train.jsonl")
        self.sampler = PromptSampler(loaded.rows, ctx.seed)
        self.eval_rows = (load_records(ctx.path(opts.data.eval), "prompt").rows
                          if opts.data.eval else [])
        self.policy = TextPolicy(ctx.resolve(opts.policy.model), opts.policy,
                                 need_reference=opts.kl_coef > 0)
        self.design = CompositeReward(opts.rewards, opts.reward_aggregation, opts.reward_clip)
        self.kl = (AdaptiveKLController(opts.kl_coef, opts.kl_target, opts.kl_horizon)
                   if opts.kl_target else FixedKLController(opts.kl_coef))
        self.critic = self.critic_optimizer = None
        if opts.advantage == "gae":
            from rlhf.engine.critic import ValueModel

            spec = (opts.critic.model if opts.critic and opts.critic.model else opts.policy.model)
            self.critic = ValueModel.from_spec(ctx.resolve(spec), opts.policy.trust_remote_code)
            lr = opts.critic.learning_rate if opts.critic else 1e-3
            self.critic_optimizer = torch.optim.AdamW(self.critic.parameters(), lr=lr)
        params = [p for p in self.policy.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=opts.learning_rate,
                                           weight_decay=opts.weight_decay)
        warm = opts.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
        self.generator = torch.Generator().manual_seed(ctx.seed + 1)
        self.reporter = StepReporter(ctx, opts)
        self.step = 0

    # -- checkpoints -----------------------------------------------------------------------------
    def _parts(self) -> Stateful:
        optimizers = {"policy": self.optimizer}
        if self.critic_optimizer is not None:
            optimizers["critic"] = self.critic_optimizer
        return Stateful(self.policy.model, optimizers, {"policy": self.scheduler}, self.critic)

    def save(self) -> None:
        extra = {"sampler": self.sampler.state_dict(), "kl": self.kl.state_dict(),
                 "generator": self.generator.get_state().tolist(),
                 "reporter": self.reporter.state_dict()}
        save_checkpoint(self.ctx.stage_dir / "checkpoints", self.step, self._parts(), extra,
                        keep=self.opts.keep_checkpoints)

    def restore(self, path: Path) -> None:
        state = load_checkpoint(path, self._parts())
        self.step = int(state["step"])
        self.sampler.load_state_dict(state["sampler"])
        self.kl.load_state_dict(state["kl"])
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        self.reporter.load_state_dict(state.get("reporter", {}))

    # -- one step --------------------------------------------------------------------------------
    def _targets(self, c: Collected) -> Batch:
        o = self.opts
        rollout = c.rollout
        scored = ~torch.isnan(c.rewards)
        loss_mask = rollout.completion_mask * scored.float().unsqueeze(1)
        if o.mask_truncated:
            loss_mask = loss_mask * (~rollout.truncated).float().unsqueeze(1)
        need_ref = self.kl.value > 0
        ref_logp = self.policy.log_probs(rollout, reference=True) if need_ref else None
        if o.advantage == "gae":
            rewards = torch.where(scored, c.rewards, torch.zeros_like(c.rewards))
            with torch.no_grad():
                values = self.critic(rollout)
            token_rewards = torch.zeros_like(rollout.old_logp)
            if ref_logp is not None:
                token_rewards = -self.kl.value * (rollout.old_logp - ref_logp)
            last = (rollout.completion_mask.sum(1).long() - 1).clamp(min=0)
            token_rewards[torch.arange(len(rollout)), last] += rewards
            token_rewards = token_rewards * rollout.completion_mask
            advantages, returns = adv.gae(token_rewards, values, rollout.completion_mask,
                                          o.gamma, o.lam)
            advantages = masked_whiten(advantages, loss_mask) * loss_mask \
                if loss_mask.sum() > 1 else advantages
            return Batch(rollout, advantages, loss_mask, None, values, returns)
        filled = fill_unscored(c.rewards, o.group_size)
        if o.advantage == "rloo":
            advantages = adv.rloo_advantages(filled, o.group_size)
        else:
            advantages = adv.group_advantages(filled, o.group_size, scale=o.advantage_scale)
        return Batch(rollout, advantages, loss_mask, ref_logp)

    def train_step(self) -> dict[str, float]:
        o = self.opts
        started = time.perf_counter()
        c = collect(self.sampler.next, self.policy, self.design, o.prompts_per_step,
                    o.group_size, o.dynamic_sampling, o.max_rounds)
        generated = time.perf_counter()
        stats: dict[str, float] = {}
        if len(c.rollout):
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
        elif self.eval_rows:
            self.reporter.eval_before = evaluate_prompts(self.policy, self.design, self.eval_rows,
                                                         o.data.eval_samples)
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
        self.policy.save(ctx.stage_dir / "model")
        after = (evaluate_prompts(self.policy, self.design, self.eval_rows, o.data.eval_samples)
                 if self.eval_rows else None)
        return self.reporter.result(after)


def run_rl_stage(ctx: StageContext, opts: RLOptions) -> StageResult:
    """Entry point of the ``grpo`` / ``dapo`` / ``ppo`` stage kinds."""
    return Engine(ctx, opts).run()

