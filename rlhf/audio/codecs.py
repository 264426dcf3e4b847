"""Neural audio codecs behind one small interface: waveform ↔ discrete codes ``[n_q, frames]``.

:func:`load_codec` takes a Hugging Face hub id or a local path of a transformers ``EncodecModel``
(``facebook/encodec_24khz``), ``DacModel`` (``descript/dac_16khz``) or ``MimiModel``
(``kyutai/mimi``) — the model type is read from the config, so all three share one code path and
none needs ``trust_remote_code`` — or a tiny offline preset (:data:`TINY_CODECS`:
``tiny:encodec``, ``tiny:dac``, ``tiny:mimi``), built in memory from a small config with a fixed
seed (random weights: the codes and waveforms are plumbing, not speech).

Shapes and units: a waveform is float32 mono ``[samples]`` in [-1, 1] at ``sample_rate`` Hz;
codes are int64 ``[n_q, frames]`` with values in ``[0, codebook_size)``; one frame covers
``hop_length`` samples (``frame_rate`` = ``sample_rate / hop_length`` frames per second). The
codebooks are residual (RVQ): the first ``n_q`` of a codec's codebooks are a valid coarser code.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlhf.errors import UserError, did_you_mean

TINY_PREFIX = "tiny:"
TINY_SEED = 2024
"""Seed of the tiny presets' random initialisation (bit-identical rebuilds)."""

TINY_CODECS: dict[str, dict[str, Any]] = {
    # 16 kHz, hop 640 (25 frames/s), 2 codebooks of 32 codes (bandwidth 0.25 kbps)
    "encodec": {"sampling_rate": 16_000, "audio_channels": 1, "num_filters": 4, "hidden_size": 16,
                "codebook_size": 32, "codebook_dim": 16, "upsampling_ratios": [8, 5, 4, 4],
                "target_bandwidths": [0.25], "num_residual_layers": 1, "num_lstm_layers": 1,
                "use_causal_conv": True, "norm_type": "weight_norm"},
    # 16 kHz, hop 320 (50 frames/s), 2 codebooks of 32 codes
    "dac": {"sampling_rate": 16_000, "encoder_hidden_size": 4, "decoder_hidden_size": 16,
            "downsampling_ratios": [2, 4, 5, 8], "n_codebooks": 2, "codebook_size": 32,
            "codebook_dim": 4, "hidden_size": 16},
    # 16 kHz, encoder hop 320 then a ×2 downsample: 25 frames/s, 2 codebooks (1 semantic)
    "mimi": {"sampling_rate": 16_000, "audio_channels": 1, "hidden_size": 16, "num_filters": 4,
             "num_residual_layers": 1, "upsampling_ratios": [8, 5, 4, 2], "codebook_size": 32,
             "codebook_dim": 16, "num_quantizers": 2, "num_semantic_quantizers": 1,
             "vector_quantization_hidden_dimension": 16, "upsample_groups": 16,
             "num_hidden_layers": 1, "intermediate_size": 32, "num_attention_heads": 2,
             "num_key_value_heads": 2, "head_dim": 8, "sliding_window": 50,
             "max_position_embeddings": 512},
}
"""Config fields of the tiny presets, per model type (``tiny:<type>``)."""

@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` threads for the duration (small convolutions are several times faster
    on one thread than on a shared multi-core CPU)."""
    import torch

    before = torch.get_num_threads()
    if n and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n and n != before:
            torch.set_num_threads(before)


_CLASSES = {"encodec": ("EncodecConfig", "EncodecModel"), "dac": ("DacConfig", "DacModel"),
            "mimi": ("MimiConfig", "MimiModel")}


@dataclass
class Codec:
    """A loaded codec. ``n_q`` codebooks are used (at most the model's own count)."""

    model: Any
    model_type: str
    """``encodec``, ``dac`` or ``mimi``."""
    sample_rate: int
    hop_length: int
    """Samples per frame."""
    codebook_size: int
    n_q: int
    threads: int = 1
    """Torch threads while encoding/decoding (0: leave as is)."""

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    def encode(self, waveform: Any, sample_rate: int) -> np.ndarray:
        """Codes ``[n_q, frames]`` (int64) of a mono waveform ``[samples]`` at ``sample_rate``
        Hz (resampled to the codec's rate when they differ)."""
        import torch

        wave = np.asarray(waveform, dtype=np.float32).reshape(-1)
        if sample_rate != self.sample_rate:
            from rlhf.audio.features import resample

            wave = np.asarray(resample(wave, sample_rate, self.sample_rate), dtype=np.float32)
        x = torch.from_numpy(wave).view(1, 1, -1)
        with torch.no_grad(), _threads(self.threads):
            if self.model_type == "encodec":
                bw = max(self.model.config.target_bandwidths)
                codes = self.model.encode(x, bandwidth=bw).audio_codes[0, 0]  # [chunks, B, q, T]
            elif self.model_type == "mimi":
                codes = self.model.encode(x, num_quantizers=self.n_q).audio_codes[0]
            else:
                codes = self.model.encode(x).audio_codes[0]
        return codes[: self.n_q].to(torch.int64).cpu().numpy()

    def decode(self, codes: Any) -> tuple[np.ndarray, int]:
        """``(waveform [samples] float32, sample_rate)`` of codes ``[n_q', frames]`` with
        ``1 <= n_q' <= n_q`` codebooks; zero frames give an empty waveform."""
        import torch

        c = torch.as_tensor(np.asarray(codes), dtype=torch.long)
        if c.ndim != 2 or not 1 <= c.shape[0] <= self.n_q:
            raise ValueError(f"codes must be [n_q<={self.n_q}, frames], got {tuple(c.shape)}")
        if c.shape[1] == 0:
            return np.zeros(0, dtype=np.float32), self.sample_rate
        if int(c.min()) < 0 or int(c.max()) >= self.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.codebook_size})")
        with torch.no_grad(), _threads(self.threads):
            if self.model_type == "encodec":
                out = self.model.decode(c.view(1, 1, *c.shape), [None]).audio_values
            else:
                out = self.model.decode(audio_codes=c.unsqueeze(0)).audio_values
        wave = out.reshape(-1).float().clamp(-1.0, 1.0).cpu().numpy()
        return wave.astype(np.float32), self.sample_rate


def _tiny_model(model_type: str) -> Any:
    import torch
    import transformers

    config_cls, model_cls = (getattr(transformers, n) for n in _CLASSES[model_type])
    config = config_cls(**TINY_CODECS[model_type])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        return model_cls(config).eval()


def _pretrained_model(spec: str) -> Any:
    import transformers
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(spec)
    except (OSError, ValueError) as exc:
        raise UserError(f"codec {spec!r}: cannot load its config ({str(exc).splitlines()[0]}); "
                        "give an EnCodec, DAC or Mimi hub id or local path, or one of "
                        f"{', '.join(tiny_specs())}") from None
    if config.model_type not in _CLASSES:
        raise UserError(f"codec {spec!r} is a {config.model_type!r} model; supported: "
                        f"{', '.join(_CLASSES)}")
    return getattr(transformers, _CLASSES[config.model_type][1]).from_pretrained(spec).eval()


def tiny_specs() -> list[str]:
    return [TINY_PREFIX + name for name in TINY_CODECS]


@functools.lru_cache(maxsize=8)
def _load_model(spec: str) -> Any:
    if spec.startswith(TINY_PREFIX):
        name = spec[len(TINY_PREFIX):]
        if name not in TINY_CODECS:
            raise UserError(f"unknown tiny codec {spec!r}; {did_you_mean(spec, tiny_specs())}")
        return _tiny_model(name)
    return _pretrained_model(spec)


def load_codec(spec: str, n_q: int | None = None) -> Codec:
    """The codec ``spec`` (hub id, local path or ``tiny:<type>``) using its first ``n_q``
    codebooks (default: all it encodes with). Models are cached per process."""
    model = _load_model(spec)
    cfg = model.config
    kind = cfg.model_type
    if kind == "encodec":
        hop, available = int(np.prod(cfg.upsampling_ratios)), int(cfg.num_quantizers)
    elif kind == "dac":
        hop, available = int(cfg.hop_length), int(cfg.n_codebooks)
    else:
        hop, available = int(cfg.frame_size), int(cfg.num_quantizers)
    if n_q is not None and not 1 <= n_q <= available:
        raise UserError(f"codec {spec!r}: n_q must be 1-{available}, got {n_q}")
    return Codec(model, kind, int(cfg.sampling_rate), hop, int(cfg.codebook_size),
                 n_q or available)
