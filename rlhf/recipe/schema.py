"""Recipe schema (pydantic): a header (name, seed, tracking) and a list of typed stages.

In YAML a stage is one mapping: ``name``, ``kind`` and the options of that kind, e.g.::

    stages:
      - name: dpo
        kind: dpo
        policy: {model: "@sft/model"}
        trainer: {max_steps: 60}

Options are validated by the kind's own options model (unknown keys are errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rlhf.stages.base import StageOptions, StageSpec

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class TrackingConfig(BaseModel):
    """Where runs are tracked (MLflow)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Log to MLflow at all. Off: the run directory still holds everything."""
    uri: str | None = None
    """MLflow tracking URI; default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///./mlflow.db``."""
    experiment: str | None = None
    """MLflow experiment name; default: the recipe's name."""


class RecipeHeader(BaseModel):
    """The top level of a recipe file; stages are validated per kind afterwards."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    cpu_time: str = ""
    """Expected wall time on a 2-core CPU machine (shown by ``rlhf recipes ls``)."""
    seed: int = 0
    tracking: TrackingConfig = TrackingConfig()
    stages: list[dict[str, Any]] = Field(min_length=1)


@dataclass
class ResolvedStage:
    """One validated stage: its name, kind, the kind's spec and typed options."""

    name: str
    kind: str
    spec: StageSpec
    options: StageOptions

    def to_dict(self) -> dict[str, Any]:
        body = self.options.model_dump(mode="json", exclude_unset=False)
        return {"name": self.name, "kind": self.kind, **body}


@dataclass
class Recipe:
    """A validated recipe with overrides applied. ``source`` is the file it came from."""

    name: str
    description: str
    cpu_time: str
    seed: int
    tracking: TrackingConfig
    stages: list[ResolvedStage]
    source: str
    overrides: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config: every option with its default filled in."""
        return {
            "name": self.name,
            "description": self.description,
            "cpu_time": self.cpu_time,
            "seed": self.seed,
            "tracking": self.tracking.model_dump(mode="json"),
            "stages": [s.to_dict() for s in self.stages],
        }

    def stage(self, name: str) -> ResolvedStage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)
