"""Tiny offline model presets (``tiny:lm``, ``tiny:reward``), built once and cached on disk.

A preset is a Llama-architecture model a few hundred kilobytes in size, initialised from a fixed
seed, with the tokenizer of :mod:`rlhf.models.tokenizer`. It lets every recipe, test and demo run
on a laptop CPU with no download. Builds are bit-identical: two builds give byte-equal
``model.safetensors`` and ``tokenizer.json`` files.

Cache layout: ``$RLHF_CACHE_DIR`` (default ``~/.cache/rlhf-toolkit``) ``/tiny/<name>-<hash>/``,
where ``<hash>`` covers the preset's config, the corpus bytes and :data:`FORMAT_VERSION`, so
changing any of them builds a fresh directory. Concurrent builders are serialised by a file
lock, and each build is written to a temporary directory and renamed into place atomically, so
a reader never sees a half-written preset.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from rlhf.errors import UserError, did_you_mean

FORMAT_VERSION = 1
"""Bump when the way presets are built or saved changes; old caches are then ignored."""

SPEC_PREFIX = "tiny:"

_LLAMA_BASE: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 176,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-6,
    "initializer_range": 0.02,
    "hidden_act": "silu",
}

PRESET_CONFIGS: dict[str, dict[str, Any]] = {
    "lm": {
        "kind": "causal_lm",
        "seed": 1234,
        "vocab_size": 1024,
        "llama": {**_LLAMA_BASE, "tie_word_embeddings": True},
    },
    "reward": {
        "kind": "reward",
        "seed": 4321,
        "vocab_size": 1024,
        "llama": {**_LLAMA_BASE, "num_labels": 1},
    },
    "whisper": {
        "kind": "whisper",
        "seed": 2718,
        "whisper": {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2,
                    "encoder_attention_heads": 4, "decoder_attention_heads": 4,
                    "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "max_target_positions": 32},
        "features": {"sample_rate": 16_000, "n_mels": 40, "hop": 320, "n_fft": 400, "chunk_s": 4},
    },
    "audio-llm": {  # Qwen2-Audio architecture: audio encoder + projector + Qwen2 LM (ASR)
        "kind": "audio_llm",
        "seed": 3141,
        "encoder": {"d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 4,
                    "encoder_ffn_dim": 128},
        "text": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "intermediate_size": 128,
                 "max_position_embeddings": 128, "tie_word_embeddings": True},
        "features": {"sample_rate": 16_000, "n_mels": 40, "hop": 320, "n_fft": 400, "chunk_s": 3},
    },
    "lm-base": {  # 2x wider and deeper than "lm": multi-hop lookups (the GR2 reranker)
        "kind": "causal_lm",
        "seed": 2468,
        "vocab_size": 1024,
        "llama": {**_LLAMA_BASE, "hidden_size": 128, "num_hidden_layers": 4,
                  "num_attention_heads": 4, "num_key_value_heads": 4,
                  "intermediate_size": 352, "tie_word_embeddings": True},
    },
}
"""Everything that decides a preset's weights: seed, tokenizer vocab size, Llama config fields."""


class Preset(NamedTuple):
    """A preset entry: ``builder(out_dir)`` writes the model and tokenizer; ``description``."""

    builder: Callable[[Path], None]
    description: str


def _llama_config(name: str, tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    spec = PRESET_CONFIGS[name]
    return LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **spec["llama"],
    )


def _build(name: str, out_dir: Path) -> None:
    import torch
    from transformers import LlamaForCausalLM, LlamaForSequenceClassification

    from rlhf.models.tokenizer import train_tokenizer

    spec = PRESET_CONFIGS[name]
    tokenizer = train_tokenizer(spec["vocab_size"])
    config = _llama_config(name, tokenizer)
    cls = LlamaForCausalLM if spec["kind"] == "causal_lm" else LlamaForSequenceClassification
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(spec["seed"])
        model = cls(config).to(torch.float32).eval()
    if spec["kind"] == "causal_lm":
        gen = model.generation_config
        gen.bos_token_id, gen.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        gen.pad_token_id = tokenizer.pad_token_id
    with _progress_bars_off():
        model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


@contextlib.contextmanager
def _progress_bars_off() -> Iterator[None]:
    """Silence ``transformers``' progress bars for the duration, restoring the previous state."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def _build_lm(out_dir: Path) -> None:
    _build("lm", out_dir)


def _build_reward(out_dir: Path) -> None:
    _build("reward", out_dir)


def _build_lm_base(out_dir: Path) -> None:
    _build("lm-base", out_dir)


def _build_whisper(out_dir: Path) -> None:
    from rlhf.models import tiny_whisper

    spec = PRESET_CONFIGS["whisper"]
    with _progress_bars_off():
        tiny_whisper.build(out_dir, spec["seed"], spec["whisper"], spec["features"])


def _build_audio_llm(out_dir: Path) -> None:
    from rlhf.models import tiny_audio_llm

    spec = PRESET_CONFIGS["audio-llm"]
    with _progress_bars_off():
        tiny_audio_llm.build(out_dir, spec["seed"], spec["encoder"], spec["text"],
                             spec["features"])


PRESETS: dict[str, Preset] = {
    "lm": Preset(_build_lm, "LlamaForCausalLM, 2 layers, hidden 64, 158k params, 1024-token byte-level BPE"),
    "reward": Preset(
        _build_reward,
        "LlamaForSequenceClassification, num_labels=1, last-token pooling, 2 layers, hidden 64",
    ),
    "whisper": Preset(
        _build_whisper,
        "WhisperForConditionalGeneration (ASR), 2+2 layers, d_model 64, 40 mels, 4 s clips, "
        "spoken-digit word tokenizer",
    ),
    "audio-llm": Preset(
        _build_audio_llm,
        "Qwen2AudioForConditionalGeneration (ASR audio-LLM), encoder 2 layers + Qwen2 2 layers, "
        "hidden 64, 40 mels, 3 s clips, spoken-digit word tokenizer with audio tokens",
    ),
    "lm-base": Preset(
        _build_lm_base,
        "LlamaForCausalLM, 4 layers, hidden 128, 4 heads, 0.9M params, 1024-token byte-level BPE"
        " (for the GR2 reranker, whose candidate lookup tiny:lm does not learn)",
    ),
}
"""Preset short name (``"lm"``; the spec is ``"tiny:lm"``) -> :class:`Preset`."""


def preset_specs() -> list[str]:
    """All preset specs as users write them: ``["tiny:lm", "tiny:reward"]``."""
    return [SPEC_PREFIX + name for name in PRESETS]


def _short(name: str) -> str:
    """``"tiny:lm"`` or ``"lm"`` -> ``"lm"``; raises :class:`UserError` for an unknown preset."""
    short = name[len(SPEC_PREFIX) :] if name.startswith(SPEC_PREFIX) else name
    if short not in PRESETS:
        spec = SPEC_PREFIX + short
        raise UserError(f"unknown model preset {spec!r}: {did_you_mean(spec, preset_specs())}")
    return short


def cache_root() -> Path:
    """The cache root: ``$RLHF_CACHE_DIR`` or ``~/.cache/rlhf-toolkit``."""
    env = os.environ.get("RLHF_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rlhf-toolkit"


def preset_hash(name: str) -> str:
    """A 12-hex-digit hash of the preset's config, the corpus bytes and :data:`FORMAT_VERSION`."""
    from rlhf.models.tokenizer import corpus_bytes

    name = _short(name)
    digest = hashlib.sha256()
    digest.update(f"format={FORMAT_VERSION};preset={name};".encode())
    digest.update(json.dumps(PRESET_CONFIGS[name], sort_keys=True).encode())
    digest.update(hashlib.sha256(corpus_bytes()).digest())
    return digest.hexdigest()[:12]


def build_preset(name: str, out_dir: str | Path) -> Path:
    """Build preset ``name`` (``"lm"`` or ``"tiny:lm"``) into ``out_dir`` (created if missing).

    No caching and no locking: :func:`preset_path` is the cached entry point.
    """
    name = _short(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    PRESETS[name].builder(out)
    return out


def preset_path(name: str) -> Path:
    """The cached directory of preset ``name`` (``"lm"`` or ``"tiny:lm"``), building it on first use.

    Safe to call from several processes at once: one builds, the others wait on the lock and then
    reuse the result.
    """
    from filelock import FileLock

    name = _short(name)
    parent = cache_root() / "tiny"
    final = parent / f"{name}-{preset_hash(name)}"
    if final.is_dir():
        return final
    parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=parent))
        try:
            build_preset(name, tmp)
            tmp.chmod(0o755)  # mkdtemp makes it private; a shared cache must be readable
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final
