"""Stage ``grpo``: group-relative policy optimisation (Shao et al., 2024) on our engine.

Advantages A_i = (R_i − mean(group)) / (std(group) + eps); per-sequence mean of the clipped token
losses, then the mean over sequences; optional KL(π‖π_ref) in the loss with coefficient
``kl_coef`` (k3 estimator; 0 loads no reference). ``advantage: rloo`` uses the leave-one-out
baseline instead; ``loss_agg: seq_mean_token_sum_norm`` with ``advantage_scale: none`` is
Dr.GRPO.
"""

from __future__ import annotations

from rlhf.engine.options import RLOptions
from rlhf.stages.base import StageSpec


class GRPOOptions(RLOptions):
    """GRPO defaults: group advantages, symmetric clip 0.2, sequence-mean aggregation."""


def run(ctx, opts):  # noqa: ANN001, ANN201 - StageSpec signature
    from rlhf.engine.loop import run_rl_stage

    return run_rl_stage(ctx, opts)


STAGE = StageSpec(GRPOOptions, run, "Group-relative policy optimisation (own engine)")
