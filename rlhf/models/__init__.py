"""Models: load by hub id, local directory or ``tiny:`` offline preset; LoRA wrapping and saving.

Importing this package is light (no torch / transformers); they are imported on first use.

- :func:`resolve_model_path` — ``"tiny:lm"`` / local dir / hub id -> what ``from_pretrained`` takes.
- :func:`load_tokenizer`, :func:`load_causal_lm`, :func:`load_reward_model` — Auto-class loaders.
- :class:`LoraOptions`, :func:`to_peft_config`, :func:`apply_lora`, :func:`save_model`,
  :func:`load_saved` — LoRA.
- :data:`PRESETS`, :func:`preset_path`, :func:`build_preset`, :func:`preset_specs` — tiny presets.
"""

from rlhf.models.loading import load_causal_lm, load_reward_model, load_tokenizer, resolve_model_path
from rlhf.models.lora import LoraOptions, apply_lora, load_saved, save_model, to_peft_config
from rlhf.models.tiny import PRESETS, build_preset, preset_path, preset_specs

__all__ = [
    "PRESETS",
    "LoraOptions",
    "apply_lora",
    "build_preset",
    "load_causal_lm",
    "load_reward_model",
    "load_saved",
    "load_tokenizer",
    "preset_path",
    "preset_specs",
    "resolve_model_path",
    "save_model",
    "to_peft_config",
]
