"""Options of the on-policy RL stages (``grpo``, ``dapo``, ``ppo``), validated before compute.

The three stage kinds share this schema; they differ in defaults (see ``rlhf/algorithms``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewards.spec import RewardSpec
from rlhf.policies import adapter_has_critic
from rlhf.policies.text import TextPolicyOptions
from rlhf.stages.base import StageOptions


class PromptData(BaseModel):
    """Prompt records for RL (``prompt`` + columns the rewards need)."""

    model_config = ConfigDict(extra="forbid")

    train: str
    """Training prompts: a path or ``@stage/file.jsonl``."""
    eval: str | None = None
    """Held-out prompts, sampled before and after training (``eval/reward_before|after``)."""
    eval_samples: int = Field(4, ge=1)
    """Completions per held-out prompt."""
    on_bad_rows: Literal["error", "skip"] = "error"


class CriticOptions(BaseModel):
    """PPO's value model: a copy of a causal-LM backbone with a scalar head per token."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = None
    """Backbone of the critic; default: the policy's starting model."""
    learning_rate: float = Field(1e-3, gt=0)
    value_clip: float | None = Field(0.2, gt=0)
    """Clip range of the value update around the old values (None: unclipped)."""
    coef: float = Field(0.5, ge=0)
    """Weight of the value loss."""


class RLOptions(StageOptions):
    """One on-policy RL stage. Sizes are in completions unless stated."""

    policy: TextPolicyOptions
    data: PromptData
    rewards: list[RewardSpec] = Field(min_length=1)
    reward_aggregation: Literal["sum", "normalize_then_sum"] = "sum"
    reward_clip: tuple[float, float] | None = None
    steps: int = Field(100, ge=1)
    """Optimisation steps (one rollout batch each)."""
    prompts_per_step: int = Field(8, ge=1)
    group_size: int = Field(8, ge=1)
    """Completions per prompt (G)."""
    epochs: int = Field(1, ge=1)
    """Passes over each rollout batch (PPO's mu)."""
    minibatch_size: int | None = Field(None, ge=1)
    """Completions per optimiser step; default: the whole batch (one step per epoch)."""
    micro_batch_size: int | None = Field(None, ge=1)
    """Completions per forward/backward (gradient accumulation); default: the minibatch."""
    learning_rate: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    warmup_steps: int = Field(0, ge=0)
    advantage: Literal["group", "rloo", "gae"] = "group"
    advantage_scale: Literal["group", "batch", "none"] = "group"
    eps_low: float = Field(0.2, ge=0)
    eps_high: float = Field(0.2, ge=0)
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"] = \
        "seq_mean_token_mean"
    kl_coef: float = Field(0.0, ge=0)
    """beta: 0 loads no reference model. GRPO: KL term in the loss; PPO: penalty in the reward."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    kl_target: float | None = Field(None, gt=0)
    """Adaptive KL controller target (Ziegler et al. 2019); None = fixed coefficient."""
    kl_horizon: int = Field(10000, ge=1)
    dynamic_sampling: bool = False
    """DAPO: drop groups whose rewards are all equal and generate more until the batch is full."""
    max_rounds: int = Field(4, ge=1)
    """Generation rounds per step at most, with dynamic sampling."""
    refill: Literal["full", "missing"] = "full"
    """Dynamic sampling: each extra round generates a full batch of groups (``full``, DAPO's
    reference behaviour) or only the groups the batch still lacks (``missing``: less compute,
    fewer surplus groups)."""
    mask_truncated: bool = False
    """Leave completions that hit max_new_tokens out of the loss (DAPO overlong filtering)."""
    gamma: float = Field(1.0, ge=0, le=1)
    lam: float = Field(0.95, ge=0, le=1)
    critic: CriticOptions | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the policy (and critic) train: ``auto`` = this process's GPU when CUDA is present,
    else the CPU. Rollouts and rewards stay on the CPU either way."""
    save_every: int = Field(50, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    log_completions_every: int = Field(10, ge=0)
    """Save a completion table every this many steps (0: never)."""

    @model_validator(mode="after")
    def _consistent(self) -> "RLOptions":
        batch = self.prompts_per_step * self.group_size
        mb = self.minibatch_size or batch
        if mb > batch:
            raise ValueError(f"minibatch_size {mb} exceeds the batch ({batch} completions)")
        if self.micro_batch_size and self.micro_batch_size > mb:
            raise ValueError(f"micro_batch_size {self.micro_batch_size} exceeds the minibatch "
                             f"({mb})")
        if self.advantage == "gae" and not adapter_has_critic(self.policy.adapter):
            raise ValueError(f"policy.adapter {self.policy.adapter!r} has no PPO critic; use "
                             "grpo or dapo (advantage: group or rloo)")
        if self.advantage in ("group", "rloo") and self.group_size < 2:
            raise ValueError("group advantages need group_size >= 2")
        if self.loss_agg == "seq_mean_token_sum_norm" and self.policy.sampling.max_new_tokens < 1:
            raise ValueError("seq_mean_token_sum_norm needs policy.sampling.max_new_tokens")
        return self
