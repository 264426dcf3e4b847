"""Per-step metrics, monitors, completion tables and the progress bar of an RL stage.

Under data parallelism every rank computes its metrics, they are reduced across ranks
(:func:`rlhf.engine.distributed.reduce_metrics`) and rank 0 logs, warns and writes the
completion tables (with every rank's rows); the other ranks print nothing.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from rlhf.engine import distributed as dist
from rlhf.engine.collect import Collected, fill_unscored, score_rollout, split_columns
from rlhf.monitors import Monitors
from rlhf.stages.base import StageContext, StageResult

EVAL_SEED = 12_345


def evaluate_prompts(policy: Any, design: Any, rows: list[dict[str, Any]], n: int) -> float:
    """Mean reward of ``n`` samples per held-out prompt, with a fixed sampling seed and the
    global RNG state left untouched (so evaluation never changes training)."""
    prompts, columns = split_columns(rows)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(EVAL_SEED)
        rollout = policy.generate(prompts, n, columns)
    rewards, _, _ = score_rollout(design, rollout, n)
    valid = rewards[~torch.isnan(rewards)]
    return float(valid.mean()) if len(valid) else math.nan


class StepReporter:
    def __init__(self, ctx: StageContext, opts: Any) -> None:
        self.ctx, self.opts = ctx, opts
        self.monitors = Monitors()
        self.reward_history: list[float] = []
        self.eval_before: float | None = None
        self.console = Console(stderr=True, quiet=not dist.is_main())
        self.progress: Progress | None = None
        self.task: Any = None

    # -- progress --------------------------------------------------------------------------------
    def start_progress(self, done: int, total: int) -> None:
        self.progress = Progress(TextColumn(f"  {self.ctx.name}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                 TimeRemainingColumn(), console=self.console)
        self.progress.start()
        self.task = self.progress.add_task(self.ctx.name, total=total, completed=done, info="")

    def stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # -- metrics ---------------------------------------------------------------------------------
    def kl_to_reference(self, policy: Any, batch: Any, has_ref: bool) -> float | None:
        """Mean over sequences of Σ_t (log π_old − log π_ref), nats (k1 estimator)."""
        if not has_ref:
            return None
        if len(batch.rollout) == 0:  # a rank left without rows (dynamic sampling)
            per_seq = batch.rollout.old_logp.sum(1)
        else:
            ref = batch.ref_logp if batch.ref_logp is not None else policy.log_probs(
                batch.rollout, reference=True).cpu()
            mask = batch.rollout.completion_mask
            per_seq = ((batch.rollout.old_logp - ref) * mask).sum(1)
        if dist.world_size() == 1:
            return float(per_seq.mean())
        total, count = dist.sum_values(float(per_seq.sum()), len(per_seq))
        return total / count if count else 0.0

    def step(self, step: int, policy: Any, c: Collected, stats: dict[str, float]
             ) -> dict[str, float]:
        o = self.opts
        metrics = {f"train/{k}" if "/" not in k else k: v for k, v in stats.items()}
        valid = c.rewards[~torch.isnan(c.rewards)]
        if len(c.rollout):
            mask = c.rollout.completion_mask
            metrics["train/reward_mean"] = float(valid.mean()) if len(valid) else math.nan
            metrics["train/reward_std"] = float(valid.std()) if len(valid) > 1 else 0.0
            metrics["train/unscored"] = float(len(c.rewards) - len(valid))
            metrics["train/completion_length"] = float(mask.sum(1).mean())
            metrics["train/truncated_frac"] = float(c.rollout.truncated.float().mean())
            metrics["train/entropy"] = float((policy.entropy(c.rollout).sum() / mask.sum()
                                              .clamp(min=1)))
            groups = fill_unscored(c.rewards, o.group_size).view(-1, o.group_size)
            metrics["train/zero_std_groups"] = float((groups.std(1) <= 1e-12).float().mean())
            for label, values in c.components.items():
                scored = [v for v in values if v is not None]
                if scored:
                    metrics[f"reward/{label}"] = sum(scored) / len(scored)
        if dist.world_size() > 1:
            metrics = dist.reduce_metrics(metrics)
        if "train/reward_mean" in metrics:
            self.reward_history.append(metrics["train/reward_mean"])
        flags, warnings = self.monitors.check(metrics)
        metrics.update(flags)
        for msg in warnings:
            self.console.print(f"[yellow]warning (step {step}): {msg}[/yellow]")
        errors = {f"reward_errors/{label}": float(len(e)) for label, e in c.errors.items()}
        metrics.update(dist.reduce_metrics(errors) if dist.world_size() > 1 else errors)
        self.ctx.tracker.log_metrics(metrics, step=step)
        if o.log_completions_every and step % o.log_completions_every == 0:
            self._completion_table(step, c)
        if self.progress is not None:
            mean = metrics.get("train/reward_mean", math.nan)
            # n/a: no sample kept this step (dynamic sampling found no group with a reward
            # spread) or none was scored
            info = "reward n/a" if math.isnan(mean) else f"reward {mean:+.3f}"
            self.progress.update(self.task, completed=step, info=info)
        return metrics

    def _completion_table(self, step: int, c: Collected) -> None:
        rows = []
        for i in range(len(c.rollout)):
            reward = float(c.rewards[i])
            rows.append({"step": step, "prompt": c.rollout.prompts[i],
                         "completion": c.rollout.completions[i],
                         "reward": None if math.isnan(reward) else reward,
                         **{f"reward/{k}": v[i] for k, v in c.components.items()}})
        if dist.world_size() > 1:
            rows = [row for part in dist.gather(rows) for row in part]
        if not rows or not dist.is_main():
            return
        path = self.ctx.stage_dir / "completions" / f"step-{step:06d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows),
                        encoding="utf-8")
        self.ctx.tracker.log_artifact(path, "completions")

    # -- results and state -----------------------------------------------------------------------
    def result(self, eval_after: float | None) -> StageResult:
        hist = [r for r in self.reward_history if not math.isnan(r)]
        k = max(1, len(hist) // 10)
        metrics: dict[str, float] = {}
        summary = []
        if hist:
            metrics["train/reward_first"] = sum(hist[:k]) / k
            metrics["train/reward_last"] = sum(hist[-k:]) / k
            summary.append(f"train reward {metrics['train/reward_first']:+.3f} → "
                           f"{metrics['train/reward_last']:+.3f} (first/last {k} steps)")
        if self.eval_before is not None and eval_after is not None:
            metrics.update({"eval/reward_before": self.eval_before,
                            "eval/reward_after": eval_after,
                            "eval/reward_gain": eval_after - self.eval_before})
            summary.append(f"held-out reward {self.eval_before:+.3f} → {eval_after:+.3f}")
        return StageResult(metrics=metrics, outputs={"model": "model"}, summary=summary)

    def state_dict(self) -> dict[str, Any]:
        return {"reward_history": self.reward_history, "eval_before": self.eval_before,
                "monitors": self.monitors.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reward_history = list(state.get("reward_history", []))
        self.eval_before = state.get("eval_before")
        self.monitors.load_state_dict(state.get("monitors", {}))
