"""Stage ``dapo``: DAPO (Yu et al., 2025, arXiv 2503.14476) as a preset of the engine.

Clip-higher (eps_low 0.2, eps_high 0.28), token-level loss (sum over all tokens / number of
tokens), no KL term, dynamic sampling (drop groups whose rewards are all equal; refill up to
``max_rounds``), and overlong handling: add ``length.overlong`` to ``rewards`` for the soft
punishment and set ``mask_truncated: true`` to leave truncated completions out of the loss.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlhf.algorithms.grpo import run
from rlhf.engine.options import RLOptions
from rlhf.stages.base import StageSpec


class DAPOOptions(RLOptions):
    eps_high: float = Field(0.28, ge=0)
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"] = \
        "token_mean"
    dynamic_sampling: bool = True
    kl_coef: float = Field(0.0, ge=0)


STAGE = StageSpec(DAPOOptions, run,
                  "DAPO: clip-higher, token-level loss, dynamic sampling, overlong shaping")
