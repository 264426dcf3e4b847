"""Recipe schema (pydantic): a header (name, seed, tracking) and a list of typed stages.

In YAML a stage is one mapping: ``name``, ``kind`` and the options of that kind, e.g.::

    stages:
      - name: dpo
        kind: dpo
        policy: {model: "@sft/model"}
        trainer: {max_steps: 60}

Options are validated by the kind's own options model (unknown keys are errors).

An optional ``distributed:`` block runs the recipe on several processes (``rlhf run`` launches
them; see :mod:`rlhf.launch`)::

    distributed: {num_processes: 2, deepspeed: null, mixed_precision: "no"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rlhf.errors import RecipeError
from rlhf.stages.base import StageOptions, StageSpec

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
DEEPSPEED_PRESETS = ("zero2", "zero3")
"""Shipped DeepSpeed configs, ``recipes/deepspeed/<name>.json``."""


class TrackingConfig(BaseModel):
    """Where runs are tracked (MLflow)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Log to MLflow at all. Off: the run directory still holds everything."""
    uri: str | None = None
    """MLflow tracking URI; default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///./mlflow.db``."""
    experiment: str | None = None
    """MLflow experiment name; default: the recipe's name."""


def deepspeed_config_path(value: str) -> Path:
    """The JSON file of a ``deepspeed:`` value: a shipped preset name or a path."""
    if value in DEEPSPEED_PRESETS:
        return Path(str(resources.files("rlhf._recipes") / "deepspeed" / f"{value}.json"))
    return Path(value).expanduser()


class DistributedConfig(BaseModel):
    """Multi-process training: data-parallel processes, optional DeepSpeed ZeRO (GPU only)."""

    model_config = ConfigDict(extra="forbid")

    num_processes: int = Field(1, ge=1)
    """Processes, one per GPU (or CPU processes talking gloo). ``--num-processes`` overrides it.
    RL stages split ``prompts_per_step`` (and minibatch / micro-batch sizes) evenly over them."""
    deepspeed: str | None = None
    """``zero2``, ``zero3`` (shipped configs) or a path to a DeepSpeed JSON config; used by the
    TRL stages (sft, dpo, reward_model). Needs CUDA. null: plain data parallel (DDP)."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """TRL stages: train in bf16 / fp16 autocast (fp16 needs CUDA); the RL stages stay float32."""

    @field_validator("deepspeed")
    @classmethod
    def _config_exists(cls, value: str | None) -> str | None:
        if value is None:
            return value
        path = deepspeed_config_path(value)
        if not path.is_file():
            raise ValueError(f"no DeepSpeed config {value!r}: use "
                             f"{' or '.join(DEEPSPEED_PRESETS)}, or the path of a JSON file")
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
        if not isinstance(body, dict):
            raise ValueError(f"{path}: a DeepSpeed config must be a JSON object")
        return value

    def deepspeed_path(self) -> str | None:
        """The DeepSpeed JSON config file to use, or ``None``."""
        return str(deepspeed_config_path(self.deepspeed)) if self.deepspeed else None

    def zero_stage(self) -> int | None:
        """The ZeRO stage of the DeepSpeed config (``None`` without DeepSpeed)."""
        path = self.deepspeed_path()
        if path is None:
            return None
        zero = json.loads(Path(path).read_text(encoding="utf-8")).get("zero_optimization") or {}
        return int(zero.get("stage", 0))


class RecipeHeader(BaseModel):
    """The top level of a recipe file; stages are validated per kind afterwards."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    cpu_time: str = ""
    """Expected wall time on a 2-core CPU machine (shown by ``rlhf recipes ls``)."""
    seed: int = 0
    tracking: TrackingConfig = TrackingConfig()
    distributed: DistributedConfig = DistributedConfig()
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
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def __post_init__(self) -> None:
        check_distributed(self)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config: every option with its default filled in."""
        return {
            "name": self.name,
            "description": self.description,
            "cpu_time": self.cpu_time,
            "seed": self.seed,
            "tracking": self.tracking.model_dump(mode="json"),
            "distributed": self.distributed.model_dump(mode="json"),
            "stages": [s.to_dict() for s in self.stages],
        }

    def stage(self, name: str) -> ResolvedStage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)


def check_distributed(recipe: Recipe) -> None:
    """Stage sizes that must split over ``num_processes``, and what ZeRO-3 cannot save.

    (Whether the machine can run it, e.g. DeepSpeed needing CUDA, is checked by ``rlhf run``.)"""
    config = recipe.distributed
    world = config.num_processes
    zero3 = config.deepspeed is not None and config.zero_stage() == 3
    for stage in recipe.stages:
        opts = stage.options
        if hasattr(opts, "prompts_per_step") and world > 1:  # an RL engine stage
            for key in ("prompts_per_step", "minibatch_size", "micro_batch_size"):
                value = getattr(opts, key)
                if value is not None and value % world:
                    raise RecipeError(
                        f"{recipe.source}: {stage.name}.{key}: {value} is not divisible by "
                        f"distributed.num_processes ({world}); each process takes an equal share")
        lora = getattr(getattr(opts, "policy", None) or getattr(opts, "model", None), "lora", None)
        if zero3 and lora is not None and stage.spec.passthrough:
            raise RecipeError(
                f"{recipe.source}: {stage.name}: LoRA under DeepSpeed ZeRO-3 is not supported "
                "(the merged model cannot be saved from partitioned weights); use zero2")
