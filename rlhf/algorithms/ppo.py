"""Stage ``ppo``: PPO with a critic and GAE (Schulman et al., 2017; Ziegler et al., 2019).

The composite reward is placed on the last completion token; each token also gets the KL penalty
−beta·(log π − log π_ref); advantages come from GAE(gamma, lam) over the critic's values and are
whitened; the critic is trained with the clipped value loss. ``kl_target`` turns on the adaptive
KL controller.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlhf.algorithms.grpo import run
from rlhf.engine.options import CriticOptions, RLOptions
from rlhf.stages.base import StageSpec


class PPOOptions(RLOptions):
    advantage: Literal["group", "rloo", "gae"] = "gae"
    group_size: int = Field(1, ge=1)
    epochs: int = Field(2, ge=1)
    kl_coef: float = Field(0.05, ge=0)
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"] = \
        "token_mean"
    critic: CriticOptions | None = CriticOptions()


STAGE = StageSpec(PPOOptions, run, "PPO with a critic, GAE and a KL penalty (own engine)")
