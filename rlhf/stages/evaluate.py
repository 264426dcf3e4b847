"""Stage ``evaluate_policy``: sample completions from one or more policies and score them.

For each policy (label → model), every prompt gets ``samples_per_prompt`` sampled completions;
the stage reports the mean reward (weighted sum of ``rewards``) per policy as
``eval/<label>/reward_mean``, and ``eval/reward_gain`` = after − before when both labels exist.
All samples go to ``samples.jsonl`` (logged to MLflow as the completion table).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rewards.spec import RewardSpec
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec
from rlhf.stages.options import PolicyMap


class EvaluatePolicyOptions(StageOptions):
    policies: PolicyMap
    """Label → model (hub id, path, ``tiny:lm`` or ``@stage/model``); e.g. before/after."""
    prompts: str
    """Prompt records (``prompt`` column; extra columns reach the rewards)."""
    rewards: list[RewardSpec] = Field(min_length=1)
    reward_aggregation: Literal["sum", "normalize_then_sum"] = "sum"
    """How the rewards combine: weighted sum, or z-normalise each within its prompt group first."""
    reward_clip: tuple[float, float] | None = None
    """Bounds of the total reward, ``[lo, hi]``."""
    samples_per_prompt: int = Field(4, ge=1)
    max_new_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, gt=0)
    batch_size: int = Field(32, ge=1)
    trust_remote_code: bool = False


def sample(model: Any, tokenizer: Any, prompts: list[str], n: int, max_new_tokens: int,
           temperature: float, batch_size: int, seed: int) -> list[str]:
    """``n`` sampled completions per prompt (prompt-major order), decoded without special tokens."""
    import torch

    torch.manual_seed(seed)
    tokenizer.padding_side = "left"
    model.eval()
    expanded = [p for p in prompts for _ in range(n)]
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, len(expanded), batch_size):
            enc = tokenizer(expanded[start:start + batch_size], return_tensors="pt", padding=True)
            gen = model.generate(**enc, do_sample=True, temperature=temperature, top_k=0,
                                 top_p=1.0, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id)
            new = gen[:, enc["input_ids"].shape[1]:]
            out.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    return out


def run(ctx: StageContext, opts: EvaluatePolicyOptions) -> StageResult:
    from rlhf.data import load_records, write_jsonl
    from rlhf.models import load_causal_lm, load_tokenizer

    rows = load_records(ctx.path(opts.prompts), "prompt").rows
    prompts = [r["prompt"] for r in rows]
    columns = {k: [r.get(k) for r in rows for _ in range(opts.samples_per_prompt)]
               for k in rows[0] if k != "prompt"}
    from rewards.compose import CompositeReward

    metrics: dict[str, float] = {}
    samples: list[dict[str, Any]] = []
    design = CompositeReward(opts.rewards, opts.reward_aggregation, opts.reward_clip)
    for label, spec in opts.policies.items():
        path = ctx.resolve(spec)
        tokenizer = load_tokenizer(path, opts.trust_remote_code)
        model = load_causal_lm(path, opts.trust_remote_code)
        completions = sample(model, tokenizer, prompts, opts.samples_per_prompt,
                             opts.max_new_tokens, opts.temperature, opts.batch_size, ctx.seed)
        expanded = [p for p in prompts for _ in range(opts.samples_per_prompt)]
        result = design.score(expanded, completions, group_size=opts.samples_per_prompt,
                              **columns)
        rewards = result.values
        scored = [r for r in rewards if r is not None]
        metrics[f"eval/{label}/reward_mean"] = sum(scored) / len(scored) if scored else float("nan")
        metrics[f"eval/{label}/unscored"] = float(len(rewards) - len(scored))
        samples += [{"policy": label, "prompt": p, "completion": c, "reward": r,
                     **{f"reward/{k}": v[i] for k, v in result.components.items()}}
                    for i, (p, c, r) in enumerate(zip(expanded, completions, rewards,
                                                      strict=True))]
    design.close()
    write_jsonl(ctx.stage_dir / "samples.jsonl", samples)
    ctx.tracker.log_artifact(ctx.stage_dir / "samples.jsonl")
    summary = [f"{label}: mean reward {metrics[f'eval/{label}/reward_mean']:+.3f}"
               for label in opts.policies]
    if "before" in opts.policies and "after" in opts.policies:
        gain = metrics["eval/after/reward_mean"] - metrics["eval/before/reward_mean"]
        metrics["eval/reward_gain"] = gain
        summary.append(f"gain {gain:+.3f}")
    return StageResult(metrics=metrics, outputs={"samples": "samples.jsonl"}, summary=summary)


STAGE = StageSpec(EvaluatePolicyOptions, run,
                  "Sample from policies and score them with a reward (before/after)")
