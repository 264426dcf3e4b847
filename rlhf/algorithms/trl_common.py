"""What every TRL-backed stage shares: records → dataset, config, MLflow callback, resume, save.

Multi-process runs (``distributed:`` in the recipe): under a launched job the transformers
``Trainer`` already trains data-parallel (DDP; ``per_device_train_batch_size`` is per process).
:func:`trl_config` passes the recipe's DeepSpeed config and mixed precision to the TRL config, and
:func:`save` writes the final model from rank 0 (gathered from all ranks under ZeRO-3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlhf.stages.base import StageContext
from rlhf.stages.options import DataOptions, ModelOptions, merged_trainer_args

# Defaults sized for CPU; every key can be overridden in the recipe's ``trainer:`` block.
CPU_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 32,
    "learning_rate": 5e-4,
    "num_train_epochs": 1,
    "logging_steps": 5,
    "save_strategy": "steps",
    "save_steps": 50,
    "save_total_limit": 2,
    "disable_tqdm": True,
    "use_cpu": False,
    "dataloader_num_workers": 0,
}


def load_split(ctx: StageContext, path: str, kind: str, data: DataOptions, label: str) -> Any:
    """Validated records of one split as a ``datasets.Dataset``; bad rows per ``on_bad_rows``."""
    from rlhf.data import load_records, to_dataset

    loaded = load_records(ctx.path(path), kind, on_bad_rows=data.on_bad_rows,
                          rejected_path=ctx.stage_dir / f"rejected_{label}.jsonl")
    if loaded.n_bad:
        ctx.tracker.log_metrics({f"data/{label}_bad_rows": float(loaded.n_bad)}, step=0)
    return to_dataset(loaded.rows)


def trl_config(config_cls: type, ctx: StageContext, user: dict[str, Any],
               defaults: dict[str, Any] | None = None) -> Any:
    """Build a TRL config dataclass from our CPU defaults, stage defaults and the user's block."""
    import torch

    from rlhf.engine import distributed

    args = merged_trainer_args({**CPU_DEFAULTS, **(defaults or {})}, user)
    args.setdefault("seed", ctx.seed)
    settings = distributed.settings()
    if not torch.cuda.is_available():
        args["use_cpu"] = True
        if settings is None or settings.mixed_precision == "no":
            # TRL's configs resolve bf16 to True when unset: on CPU, autocast to bf16 is several
            # times slower for small models, so train in float32 unless the recipe asks.
            args.setdefault("bf16", False)
    if settings is not None:
        if settings.deepspeed:
            args.setdefault("deepspeed", settings.deepspeed_path())
        if settings.mixed_precision != "no":
            args.setdefault(settings.mixed_precision, True)  # bf16=True or fp16=True
    return config_cls(output_dir=str(ctx.stage_dir / "checkpoints"), **args)


def peft_config(model: ModelOptions, task_type: str) -> Any:
    from rlhf.models import lora

    return lora.to_peft_config(model.lora, task_type) if model.lora else None


def callbacks(ctx: StageContext) -> list[Any]:
    from rlhf.tracking.callback import MlflowMetricsCallback

    return [MlflowMetricsCallback(ctx.tracker)]


def train(trainer: Any, ctx: StageContext) -> Any:
    """Train with a progress bar, continuing from the stage's last checkpoint if there is one."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from rlhf.algorithms.progress import RichProgressCallback

    if not ctx.debug:  # the bar replaces the per-step dict prints
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(RichProgressCallback(ctx.name))
    resume = str(ctx.checkpoint) if ctx.checkpoint else None
    return trainer.train(resume_from_checkpoint=resume)


def save(trainer: Any, tokenizer: Any, ctx: StageContext, model: ModelOptions) -> Path:
    """Save the trained model (LoRA merged unless ``merge_lora: false``) to ``<stage>/model``.

    Rank 0 writes it; every rank waits until it is written. Under DeepSpeed ZeRO-3 the weights
    are partitioned, so every rank takes part in ``trainer.save_model``, which gathers them."""
    from rlhf.engine import distributed
    from rlhf.models import save_model

    out = ctx.stage_dir / "model"
    if _zero3(trainer):
        trainer.save_model(str(out))
        if distributed.is_main():
            tokenizer.save_pretrained(out)
    elif distributed.is_main():
        save_model(trainer.model, tokenizer, out, merge=model.merge_lora)
    distributed.barrier()
    return out


def _zero3(trainer: Any) -> bool:
    """Whether the trainer runs DeepSpeed ZeRO stage 3 (partitioned weights)."""
    if not getattr(trainer, "is_deepspeed_enabled", False):
        return False
    plugin = trainer.accelerator.state.deepspeed_plugin
    return plugin is not None and plugin.zero_stage == 3
