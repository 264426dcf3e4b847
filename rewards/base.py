"""The reward contract and the one registry of rewards.

A reward is a plain callable ``fn(prompts, completions, **columns) -> list[float | None]``
(the signature TRL's GRPO trainer uses: dataset columns and ``completion_ids`` arrive as keyword
arguments). ``None`` means "could not score": it is excluded from means and counted, never
silently turned into 0. Rewards are found by short registered name or by ``"module:function"``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rlhf.errors import did_you_mean
from rlhf.registry import Registry


class RewardFn(Protocol):
    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 **columns: Any) -> list[float | None]: ...


REWARDS: Registry[Callable[..., list[float | None]]] = Registry("reward")

REWARDS.register(
    "synthetic.sentiment", "rewards.synthetic:sentiment_reward",
    "Ground truth of the quickstart task: (positive - negative words) / words, in [-1, 1]",
)


class RewardSpec(BaseModel):
    """One reward in a stage's reward design: a name, a weight and keyword parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Registered short name (``rlhf rewards ls``) or ``module:function``."""
    weight: float = 1.0
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if not REWARDS.is_known(value):
            raise ValueError(f"unknown reward {value!r}; {did_you_mean(value, REWARDS.names())}")
        return value


def build_reward(spec: RewardSpec) -> Callable[..., list[float | None]]:
    """The callable of one reward with its parameters bound."""
    fn = REWARDS.get(spec.name)
    return functools.partial(fn, **spec.params) if spec.params else fn


def score(specs: Sequence[RewardSpec], prompts: Sequence[Any], completions: Sequence[Any],
          **columns: Any) -> list[float | None]:
    """Weighted sum of several rewards per row; a row is None only if every reward is None."""
    totals: list[float | None] = [None] * len(completions)
    for spec in specs:
        values = build_reward(spec)(prompts, completions, **columns)
        if len(values) != len(completions):
            raise ValueError(f"reward {spec.name!r} returned {len(values)} values "
                             f"for {len(completions)} completions")
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            totals[i] = (totals[i] or 0.0) + spec.weight * float(v)
    return totals
