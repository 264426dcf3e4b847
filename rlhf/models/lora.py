"""LoRA options, PEFT wrapping, and saving (merged full model or adapter only).

:class:`LoraOptions` is the recipe-facing schema (importable without torch). The functions build
a ``peft.LoraConfig`` from it, wrap a model, and save the result so that reloading gives the same
outputs: for reward models (``SEQ_CLS``) the freshly trained ``score`` head is trained and saved
along with the adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rlhf.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from peft import LoraConfig
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

TaskType = Literal["CAUSAL_LM", "SEQ_CLS", "SEQ_2_SEQ_LM"]
_TASK_TYPES = ("CAUSAL_LM", "SEQ_CLS", "SEQ_2_SEQ_LM")  # SEQ_2_SEQ_LM: Whisper ASR policies
SEQ_CLS_HEAD = "score"
"""Name of the classification head of ``*ForSequenceClassification`` models (Llama, Qwen, ...)."""

ADAPTER_CONFIG = "adapter_config.json"


class LoraOptions(BaseModel):
    """LoRA settings of a recipe stage (``lora:`` block). Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    r: int = Field(8, gt=0)
    """Rank of the low-rank update ``B @ A`` (``A``: ``[r, in]``, ``B``: ``[out, r]``)."""
    alpha: int = Field(16, gt=0)
    """Scaling numerator: the update is multiplied by ``alpha / r``."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout probability on the LoRA branch input, in ``[0, 1)``."""
    target_modules: list[str] | str = "all-linear"
    """Module names (or suffixes) that get adapters, or ``"all-linear"`` for every linear layer
    except the output head."""
    modules_to_save: list[str] | None = None
    """Extra modules trained in full and saved with the adapter. For ``SEQ_CLS`` the ``score``
    head is added automatically."""


def _check_task(task_type: str) -> None:
    if task_type not in _TASK_TYPES:
        raise UserError(f"unknown LoRA task_type {task_type!r}: use one of {', '.join(_TASK_TYPES)}")


def to_peft_config(opts: LoraOptions, task_type: TaskType, model: Any = None) -> LoraConfig:
    """Build the ``peft.LoraConfig`` for ``opts``.

    For ``SEQ_CLS``, ``"score"`` is added to ``modules_to_save`` so the (usually freshly
    initialised) head is trained and saved; when ``model`` is given, only if it has a ``score``
    module. Pass the result as ``peft_config=`` to TRL trainers, or use :func:`apply_lora`.
    """
    from peft import LoraConfig

    _check_task(task_type)
    to_save = list(opts.modules_to_save or [])
    if task_type == "SEQ_CLS" and SEQ_CLS_HEAD not in to_save:
        if model is None or _has_module(model, SEQ_CLS_HEAD):
            to_save.append(SEQ_CLS_HEAD)
    targets = opts.target_modules if isinstance(opts.target_modules, str) else list(opts.target_modules)
    return LoraConfig(
        r=opts.r,
        lora_alpha=opts.alpha,
        lora_dropout=opts.dropout,
        target_modules=targets,
        modules_to_save=to_save or None,
        bias="none",
        task_type=task_type,
    )


def _has_module(model: Any, name: str) -> bool:
    return any(full == name or full.endswith("." + name) for full, _ in model.named_modules())


def apply_lora(model: PreTrainedModel, opts: LoraOptions, task_type: TaskType) -> Any:
    """Wrap ``model`` with LoRA adapters; returns the ``peft.PeftModel``.

    Afterwards only the adapter weights (and, for ``SEQ_CLS``, the ``score`` head plus any
    ``modules_to_save``) have ``requires_grad=True``.
    """
    from peft import get_peft_model

    config = to_peft_config(opts, task_type, model)
    peft_model = get_peft_model(model, config)
    if task_type == "SEQ_CLS" and _has_module(model, SEQ_CLS_HEAD):
        head = [p for n, p in peft_model.named_parameters() if f".{SEQ_CLS_HEAD}." in f".{n}"]
        if not any(p.requires_grad for p in head):  # guards against a PEFT behaviour change
            raise RuntimeError("the reward model's score head is not trainable after apply_lora")
    return peft_model


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is a ``peft.PeftModel`` (without importing peft when it is not loaded)."""
    import sys

    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def save_model(
    model: Any,
    tokenizer: PreTrainedTokenizerBase | None,
    out_dir: str | Path,
    merge: bool = True,
) -> Path:
    """Save ``model`` (and ``tokenizer``) to ``out_dir`` as safetensors; returns ``out_dir``.

    For a ``PeftModel``: ``merge=True`` merges the adapters into a copy of the base model and
    saves a full, plain ``transformers`` checkpoint (load it with ``load_causal_lm`` /
    ``load_reward_model``); ``merge=False`` saves only the adapter (``adapter_config.json`` +
    ``adapter_model.safetensors``, trained ``modules_to_save`` included), which
    :func:`load_saved` loads on top of the base. ``model`` itself is never modified. A plain
    model is saved as is. The merge copies the model, so it needs memory for a second copy.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if is_peft_model(model) and merge:
        merged = copy.deepcopy(model).merge_and_unload()
        merged.save_pretrained(out)
    else:
        model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out


def load_saved(
    path: str | Path,
    task_type: TaskType = "CAUSAL_LM",
    trust_remote_code: bool = False,
    dtype: str | torch.dtype | None = None,
    is_trainable: bool = False,
    num_labels: int = 1,
) -> Any:
    """Load what :func:`save_model` wrote: a full model, or the base plus the adapter.

    An adapter directory (with ``adapter_config.json``) loads its base model from the path or hub
    id recorded in the adapter config and returns a ``PeftModel``; a full checkpoint goes through
    :func:`~rlhf.models.loading.load_causal_lm` / ``load_reward_model``. ``num_labels`` applies to
    ``SEQ_CLS`` only; ``is_trainable`` to adapters only (``False``: inference mode).
    """
    from rlhf.models import loading

    _check_task(task_type)
    path = Path(path)
    if not (path / ADAPTER_CONFIG).is_file():
        if task_type == "CAUSAL_LM":
            return loading.load_causal_lm(str(path), trust_remote_code, dtype)
        return loading.load_reward_model(str(path), num_labels, trust_remote_code, dtype)

    from peft import AutoPeftModelForCausalLM, AutoPeftModelForSequenceClassification

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "dtype": loading._torch_dtype(dtype)}
    if task_type == "CAUSAL_LM":
        return AutoPeftModelForCausalLM.from_pretrained(str(path), is_trainable=is_trainable, **kwargs)
    model = AutoPeftModelForSequenceClassification.from_pretrained(
        str(path), is_trainable=is_trainable, num_labels=num_labels, **kwargs
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = loading.load_tokenizer(str(path), trust_remote_code).pad_token_id
    return model
