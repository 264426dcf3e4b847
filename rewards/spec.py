"""A reward as a recipe names it (``{name, weight, params, gate}``) and how it is built."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewards.base import REWARDS, FunctionReward, Reward
from rlhf.errors import RegistryError, UserError, did_you_mean


class Gate(BaseModel):
    """Zero this reward on rows where another reward of the same design is below ``min``."""

    model_config = ConfigDict(extra="forbid")

    reward: str
    """Name of the gating reward (as written in the same ``rewards:`` list)."""
    min: float


class RewardSpec(BaseModel):
    """One reward in a stage's reward design."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Registered short name (``rlhf rewards ls``) or ``module:function``."""
    weight: float = 1.0
    params: dict[str, Any] = Field(default_factory=dict)
    gate: Gate | None = None
    timeout: float | None = Field(None, gt=0)
    """Seconds a batch may take; then the reward is stopped and its rows get ``None``."""
    workers: int = Field(0, ge=0)
    """Score in a pool of this many processes (for slow rewards); 0 = in this process."""

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if not REWARDS.is_known(value):
            raise ValueError(f"unknown reward {value!r}; {did_you_mean(value, REWARDS.names())}")
        return value

    @model_validator(mode="after")
    def _params_valid(self) -> "RewardSpec":
        if self.name in REWARDS:  # check typed parameters now, before any compute
            try:
                build_reward(self)
            except UserError as exc:
                raise ValueError(str(exc)) from None
        return self


def build_reward(spec: RewardSpec) -> Reward:
    """The :class:`Reward` of a spec, parameters validated (a user error names the reward)."""
    try:
        obj = REWARDS.get(spec.name)
    except RegistryError:
        raise
    if isinstance(obj, type) and issubclass(obj, Reward):
        return obj(**spec.params)
    if callable(obj):
        return FunctionReward(obj, spec.name, **spec.params)
    raise RegistryError(f"reward {spec.name!r} is neither a Reward class nor a function")
