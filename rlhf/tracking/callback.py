"""A ``transformers`` callback that sends a Trainer's logs to a stage's MLflow run.

TRL trainers (DPO, SFT, reward, GRPO) all log through ``TrainerCallback.on_log``; this callback
forwards the numeric values to a :class:`~rlhf.tracking.tracker.StageTracker` (buffered, batched)
at ``step = state.global_step``. Keys are renamed so curves group into two plots:
``eval_loss`` -> ``eval/loss``, anything else ``k`` -> ``train/k`` (``loss`` -> ``train/loss``,
``rewards/chosen`` -> ``train/rewards/chosen``). ``total_flos`` is dropped. Only the world's main
process logs. This module imports ``transformers`` and is meant for trainer code only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback

from rlhf.tracking.tracker import StageTracker

SKIPPED_KEYS = frozenset({"total_flos"})


def metric_name(key: str) -> str:
    """MLflow name of a Trainer log key: ``eval_x`` -> ``eval/x``, otherwise ``train/<key>``."""
    if key.startswith("eval_"):
        return "eval/" + key[len("eval_") :]
    return "train/" + key


def rename_logs(logs: Mapping[str, Any]) -> dict[str, Any]:
    """``logs`` with renamed keys and :data:`SKIPPED_KEYS` removed (values untouched)."""
    return {metric_name(k): v for k, v in logs.items() if k not in SKIPPED_KEYS}


class MlflowMetricsCallback(TrainerCallback):
    """Forward ``on_log`` values to ``stage`` and flush it when training ends.

    Non-numeric values (e.g. strings some trainers log) are skipped by the stage tracker and
    counted in ``stage.skipped``."""

    def __init__(self, stage: StageTracker) -> None:
        self.stage = stage

    def on_log(self, args, state, control, logs: Mapping[str, Any] | None = None, **kwargs):
        if not logs or not getattr(state, "is_world_process_zero", True):
            return control
        if not self.stage.closed:
            self.stage.log_metrics(rename_logs(logs), step=int(state.global_step))
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if getattr(state, "is_world_process_zero", True) and not self.stage.closed:
            self.stage.flush()
        return control
