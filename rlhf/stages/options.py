"""Option blocks shared by several stage kinds (models, data, pass-through trainer configs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rlhf.models.lora import LoraOptions


def _non_empty_policies(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("name at least one policy to evaluate")
    return value


PolicyMap = Annotated[dict[str, str], AfterValidator(_non_empty_policies)]
"""``{label: model}`` of an evaluation stage (``before: "@warmup/model"``); at least one."""


class ModelOptions(BaseModel):
    """A model slot: hub id, local directory, ``tiny:<preset>`` or ``@stage/model``."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str
    """Hub id, local path, ``tiny:lm`` / ``tiny:reward``, or an earlier stage's ``@stage/model``."""
    lora: LoraOptions | None = None
    """Train LoRA adapters instead of all weights (PEFT); merged into the saved model."""
    merge_lora: bool = True
    """Save the merged model (True) or the adapter only (False)."""
    trust_remote_code: bool = False
    """Run code shipped with a hub model. Off unless you trust its author."""


class DataOptions(BaseModel):
    """Where a stage's records come from (JSONL, Parquet, JSON or a HF dataset directory)."""

    model_config = ConfigDict(extra="forbid")

    train: str
    """Training records: a path or ``@stage/file.jsonl``."""
    eval: str | None = None
    """Held-out records for evaluation (optional)."""
    on_bad_rows: Literal["error", "skip"] = "error"
    """``error``: stop at the first bad row; ``skip``: write bad rows to the stage directory."""


def trainer_block() -> Any:
    """A pass-through block of TRL/transformers trainer arguments (checked against the config)."""
    return Field(default_factory=dict)


def merged_trainer_args(defaults: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """Our defaults, overridden by the user's ``trainer:`` block; MLflow reporting is ours.

    ``report_to`` entries naming mlflow are dropped: the stage's own callback logs to the stage's
    MLflow run, so metrics are never logged twice. Other integrations are kept.
    """
    args = {**defaults, **user}
    report = args.get("report_to", "none")
    if isinstance(report, str):
        report = [] if report in ("none", "mlflow", "all") else [report]
    args["report_to"] = [r for r in report if r not in ("mlflow", "none")] or "none"
    return args
