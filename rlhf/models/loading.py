"""Load tokenizers, causal LMs and reward models by hub id, local directory or ``tiny:`` preset.

A model *spec* is one of:

- ``tiny:<preset>`` — an offline preset from :mod:`rlhf.models.tiny` (built once and cached);
- a local directory (``runs/x/policy``, ``/abs/path``, ``~/models/m``);
- a Hugging Face Hub id (``org/name``), used as is. Nothing here forces a download: when the hub is
  unreachable (offline, ``HF_HUB_OFFLINE=1``) or the id does not exist, a :class:`UserError` says
  so and lists the offline alternatives.

``trust_remote_code`` is opt-in everywhere (default ``False``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rlhf.errors import UserError
from rlhf.models.tiny import SPEC_PREFIX, preset_path, preset_specs

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

T = TypeVar("T")

_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(_PATH_PREFIXES) or spec in (".", "..")


def resolve_model_path(spec: str) -> str:
    """Turn a model spec into what ``from_pretrained`` accepts.

    Returns:
        the cached preset directory for ``tiny:<preset>``; the (``~``-expanded) path of an existing
        local directory; any other string unchanged (a hub id).

    Raises:
        UserError: unknown preset (with a did-you-mean hint), a path-like spec (starting with
            ``/``, ``./``, ``../`` or ``~``) that does not exist, or an existing path that is a file.
    """
    spec = spec.strip()
    if not spec:
        raise UserError("empty model spec: pass a hub id, a local directory or " + _presets_hint())
    if spec.startswith(SPEC_PREFIX):
        return str(preset_path(spec))
    local = Path(spec).expanduser()
    if local.is_dir():
        return str(local)
    if local.exists():
        raise UserError(f"model path {spec!r} is a file; pass the directory that holds config.json")
    if _looks_like_path(spec):
        raise UserError(f"model path {spec!r} does not exist ({local.absolute()})")
    return spec


def _presets_hint() -> str:
    return "a tiny preset (" + ", ".join(preset_specs()) + ")"


def _load(what: str, spec: str, path: str, loader: Callable[[], T]) -> T:
    """Run ``loader()``, turning not-found / offline / unrecognised-checkpoint errors into a
    :class:`UserError` that names ``spec``."""
    from huggingface_hub.errors import HFValidationError

    try:
        return loader()
    except (OSError, ValueError) as exc:
        if Path(path).is_dir():
            raise UserError(f"cannot load the {what} from {spec!r} ({path}): {_first_line(exc)}") from exc
        if isinstance(exc, OSError | HFValidationError):
            raise UserError(
                f"cannot load the {what} {spec!r}: it is not a local directory and the Hugging Face "
                f"Hub could not provide it (offline, or no such repository). Pass a local directory "
                f"or {_presets_hint()}. Cause: {_first_line(exc)}"
            ) from exc
        raise UserError(f"cannot load the {what} {spec!r}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """The exception's message on one line, cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_tokenizer(spec: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Load the tokenizer of ``spec``; guarantees a pad token (falls back to the EOS token).

    The padding side is whatever the checkpoint says (``"right"`` for ``tiny:`` presets); set
    ``tokenizer.padding_side = "left"`` for batched generation.
    """
    from transformers import AutoTokenizer

    path = resolve_model_path(spec)
    tok = _load(
        "tokenizer", spec, path, lambda: AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    )
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise UserError(f"the tokenizer of {spec!r} has neither a pad token nor an EOS token")
        tok.pad_token = tok.eos_token
    return tok


def _torch_dtype(dtype: str | torch.dtype | None) -> Any:
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise UserError(f"unknown dtype {dtype!r}: use float32, bfloat16, float16 or auto")
    return value


def load_causal_lm(
    spec: str, trust_remote_code: bool = False, dtype: str | torch.dtype | None = None
) -> PreTrainedModel:
    """Load a causal LM (``AutoModelForCausalLM``) from ``spec``.

    Args:
        dtype: ``None`` loads float32 (the predictable choice on CPU); a ``torch.dtype``, a name
            (``"bfloat16"``) or ``"auto"`` (the checkpoint's own dtype).
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(spec)
    torch_dtype = _torch_dtype(dtype)
    return _load(
        "causal LM",
        spec,
        path,
        lambda: AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code, dtype=torch_dtype),
    )


HEAD_SEED = 0
"""Seed of a reward head that the checkpoint does not have (a causal LM loaded as a reward model)."""


def _seed_new_head(model: Any, missing_keys: Any) -> None:
    """Re-initialise a classification head (``score`` / ``classifier``) whose weights were missing
    from the checkpoint: weights N(0, initializer_range²) drawn from :data:`HEAD_SEED`, biases 0.
    Other missing parameters keep the ``transformers`` initialisation."""
    import torch

    missing = {key for key in missing_keys if key.split(".")[0] in ("score", "classifier")}
    if not missing:
        return
    gen = torch.Generator().manual_seed(HEAD_SEED)
    std = getattr(model.config, "initializer_range", 0.02)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in missing:
                if name.endswith("bias"):
                    param.zero_()
                else:
                    noise = torch.randn(param.shape, generator=gen, dtype=torch.float32) * std
                    param.copy_(noise.to(param.dtype))


def load_reward_model(
    spec: str,
    num_labels: int = 1,
    trust_remote_code: bool = False,
    dtype: str | torch.dtype | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> PreTrainedModel:
    """Load a sequence-classification reward model (``AutoModelForSequenceClassification``).

    The score is read at the last non-pad token, so ``model.config.pad_token_id`` must be set; when
    the checkpoint lacks it, it is taken from ``tokenizer`` (loaded from ``spec`` if not given,
    with its EOS fallback). Loading a causal-LM checkpoint gives a new ``score`` head, initialised
    from a fixed seed (:data:`HEAD_SEED`) so the same base always gives the same reward model.
    Output: ``model(input_ids, attention_mask).logits`` of shape ``[batch, num_labels]``.
    """
    from transformers import AutoModelForSequenceClassification

    path = resolve_model_path(spec)
    torch_dtype = _torch_dtype(dtype)
    model, info = _load(
        "reward model",
        spec,
        path,
        lambda: AutoModelForSequenceClassification.from_pretrained(
            path,
            num_labels=num_labels,
            trust_remote_code=trust_remote_code,
            dtype=torch_dtype,
            output_loading_info=True,
        ),
    )
    _seed_new_head(model, info.get("missing_keys", ()))
    if model.config.pad_token_id is None:
        tok = tokenizer if tokenizer is not None else load_tokenizer(spec, trust_remote_code)
        model.config.pad_token_id = tok.pad_token_id
        text_config = model.config.get_text_config()
        if text_config is not model.config:
            text_config.pad_token_id = tok.pad_token_id
    return model
