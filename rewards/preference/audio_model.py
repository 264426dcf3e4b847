"""A Bradley–Terry reward model over speech: audio encoder → attention pooling → scalar head.

``r(x, y) = head([pool(encoder(y)); prompt(x)])``: a scalar reward for a clip ``y`` (and, when
prompt conditioning is on, its prompt text ``x``). Trained on preference pairs with the
Bradley–Terry loss ``-log σ(r(x, y_c) − r(x, y_r) − margin)`` (Bradley & Terry 1952; Ouyang et
al. 2022), see :mod:`rewards.preference.audio_trainer`.

Encoders (``AudioRMConfig.encoder``):

- ``"logmel_conv"`` (default): log-mel features (:func:`rlhf.audio.features.log_mel`, per-clip
  mean/variance normalised per band) → a 1-D convolution, then ``conv_layers - 1`` residual
  dilated convolutions (dilation 2, 4, ...; receptive field ``1 + (k-1)(2^L - 1)`` frames).
- ``"tiny:whisper"`` / ``"tiny:wav2vec2"``: a transformers encoder built offline from a tiny
  config with random weights (tests, smoke runs).
- any other string: a hub id or local directory of a Whisper or wav2vec 2.0 checkpoint; only its
  encoder is kept. Its config (and Whisper's feature-extractor settings) are stored in our
  ``config.json``, so a saved reward model loads again without the original checkpoint.

Attention pooling (our choice): ``α = softmax_t(wᵀ tanh(W h_t))`` over the valid frames only,
pooled ``Σ_t α_t h_t``. Prompt conditioning (optional, ``prompt_buckets > 0``): a hashed
bag-of-words embedding (lower-cased words → CRC-32 → bucket, mean of bucket embeddings),
concatenated to the pooled audio vector before the head.

Inputs are resampled to ``sample_rate`` (16 kHz) first. ``save_pretrained(dir)`` writes
``config.json`` and ``model.safetensors``; ``from_pretrained(dir)`` restores the model exactly.
:func:`audio_reward` scores spoken completions with a saved model (the TRL reward signature).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlhf.audio.features import log_mel, resample

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MODEL_KIND = "audio_reward_model"
TINY_ENCODERS = ("tiny:whisper", "tiny:wav2vec2")
_WORD = re.compile(r"[\w']+")


@dataclass
class AudioRMConfig:
    """Everything needed to rebuild an :class:`AudioRewardModel` (saved as ``config.json``)."""

    encoder: str = "logmel_conv"
    """``logmel_conv``, ``tiny:whisper``, ``tiny:wav2vec2``, or a hub id / local path."""
    sample_rate: int = 16_000
    """Hz; every input is resampled to this rate."""
    n_mels: int = 40
    """Mel bands of the log-mel features (``logmel_conv``, ``tiny:whisper``)."""
    win_ms: float = 25.0
    hop_ms: float = 10.0
    """Analysis window and hop of the log-mel features, milliseconds."""
    hidden: int = 64
    """Width of the convolutional encoder and of the head's hidden layer."""
    conv_layers: int = 3
    kernel_size: int = 5
    dropout: float = 0.0
    prompt_buckets: int = 0
    """Hash buckets of the prompt bag-of-words; 0 switches prompt conditioning off."""
    prompt_dim: int = 16
    max_seconds: float = 30.0
    """Longer clips are cut to this many seconds before encoding."""
    encoder_type: str = ""
    """Filled in when the model is built: ``logmel_conv``, ``whisper`` or ``wav2vec2``."""
    encoder_config: dict[str, Any] | None = None
    """The transformers encoder's config, as a dict (saved so the model loads offline)."""
    feature_extractor: dict[str, Any] | None = None
    """A Whisper checkpoint's feature-extractor settings (``None``: our own log-mel)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes saved with the model (e.g. what it was trained on)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioRMConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# ---------------------------------------------------------------------------------------------
# Encoders: featurize(one 16 kHz wave) -> [frames, channels]; forward(x, mask) -> (h, mask)
# ---------------------------------------------------------------------------------------------


class ConvEncoder(nn.Module):
    """Log-mel → Conv1d(n_mels → H) → residual dilated Conv1d(H → H) blocks; ``[B, F, H]``."""

    def __init__(self, cfg: AudioRMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.kernel_size
        self.inp = nn.Conv1d(cfg.n_mels, cfg.hidden, k, padding=k // 2)
        self.blocks = nn.ModuleList(
            nn.Conv1d(cfg.hidden, cfg.hidden, k, padding=(k // 2) * 2 ** i, dilation=2 ** i)
            for i in range(1, cfg.conv_layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.out_dim = cfg.hidden

    def featurize(self, wave: torch.Tensor) -> torch.Tensor:
        """``[samples]`` at ``cfg.sample_rate`` → normalised log-mel ``[frames, n_mels]``."""
        c = self.cfg
        feats = log_mel(wave, c.sample_rate, c.n_mels, c.win_ms, c.hop_ms)
        mean = feats.mean(0, keepdim=True)
        if len(feats) < 2:
            return feats - mean
        return (feats - mean) / (feats.std(0, keepdim=True, unbiased=False) + 1e-5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = mask[:, None, :].to(x.dtype)  # [B, 1, F]
        h = nn.functional.gelu(self.inp(x.transpose(1, 2) * m)) * m
        for block in self.blocks:
            h = h + self.dropout(nn.functional.gelu(block(h))) * m
        return h.transpose(1, 2), mask


class WhisperEncoderAdapter(nn.Module):
    """A transformers ``WhisperEncoder``; input padded/cut to its fixed length, frames halved."""

    def __init__(self, cfg: AudioRMConfig, encoder: nn.Module, extractor: Any = None) -> None:
        super().__init__()
        self.cfg, self.encoder, self.extractor = cfg, encoder, extractor
        hf = encoder.config
        self.n_frames = hf.max_source_positions * 2
        self.out_dim = hf.d_model

    def featurize(self, wave: torch.Tensor) -> torch.Tensor:
        """Whisper-style log-mel ``[frames, num_mel_bins]``: log10, floor at max − 8, (x+4)/4."""
        if self.extractor is not None:
            out = self.extractor(wave.numpy(), sampling_rate=self.cfg.sample_rate,
                                 return_tensors="np", padding="longest")
            return torch.from_numpy(out["input_features"][0].T.copy())[: self.n_frames]
        feats = log_mel(wave, self.cfg.sample_rate, self.encoder.config.num_mel_bins,
                        self.cfg.win_ms, self.cfg.hop_ms) / np.log(10.0)
        feats = torch.maximum(feats, feats.max() - 8.0)
        return ((feats + 4.0) / 4.0)[: self.n_frames]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, f, c = x.shape
        floor = x.masked_fill(~mask[..., None], float("inf")).amin(dim=(1, 2))  # silence level
        full = floor[:, None, None].expand(b, self.n_frames, c).clone()
        full[:, :f] = torch.where(mask[..., None], x, full[:, :f])
        h = self.encoder(input_features=full.transpose(1, 2)).last_hidden_state
        out_mask = torch.zeros(b, h.shape[1], dtype=torch.bool, device=x.device)
        lengths = (mask.sum(1) + 1) // 2
        out_mask[torch.arange(h.shape[1], device=x.device)[None, :] < lengths[:, None]] = True
        return h, out_mask


class Wav2Vec2Adapter(nn.Module):
    """A transformers ``Wav2Vec2Model`` on the normalised waveform; frames every 20 ms."""

    def __init__(self, cfg: AudioRMConfig, encoder: nn.Module) -> None:
        super().__init__()
        self.cfg, self.encoder = cfg, encoder
        self.out_dim = encoder.config.hidden_size

    def featurize(self, wave: torch.Tensor) -> torch.Tensor:
        """Zero-mean, unit-variance waveform as ``[samples, 1]``."""
        wave = (wave - wave.mean()) / (wave.std(unbiased=False) + 1e-7)
        return wave[:, None]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        att = mask.long() if self.encoder.config.feat_extract_norm == "layer" else None
        h = self.encoder(input_values=x[..., 0] * mask, attention_mask=att).last_hidden_state
        lengths = self.encoder._get_feat_extract_output_lengths(mask.sum(1))
        out_mask = torch.arange(h.shape[1], device=x.device)[None, :] < lengths[:, None]
        return h, out_mask


def _tiny_hf_config(name: str) -> Any:
    if name == "tiny:whisper":
        from transformers import WhisperConfig

        return WhisperConfig(num_mel_bins=40, d_model=32, encoder_layers=2,
                             encoder_attention_heads=2, encoder_ffn_dim=64, decoder_layers=1,
                             decoder_attention_heads=2, decoder_ffn_dim=64,
                             max_source_positions=150, vocab_size=64, pad_token_id=0,
                             bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                             begin_suppress_tokens=None)
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, conv_dim=(32, 32, 32), conv_stride=(5, 4, 4),
                          conv_kernel=(10, 8, 4), num_conv_pos_embeddings=16,
                          num_conv_pos_embedding_groups=2, vocab_size=32)


def _hf_encoder(cfg: AudioRMConfig, pretrained: bool) -> tuple[nn.Module, Any]:
    """The transformers encoder module (and Whisper feature extractor or None) for ``cfg``.

    ``pretrained``: load weights from ``cfg.encoder`` (hub id/path); otherwise build from
    ``cfg.encoder_config`` (filled in here for tiny presets and pretrained checkpoints)."""
    import transformers

    extractor = None
    if pretrained and cfg.encoder not in TINY_ENCODERS:
        hf_config = transformers.AutoConfig.from_pretrained(cfg.encoder)
        kind = hf_config.model_type
        if kind == "whisper":
            encoder = transformers.WhisperModel.from_pretrained(cfg.encoder).get_encoder()
            try:
                extractor = transformers.WhisperFeatureExtractor.from_pretrained(cfg.encoder)
            except OSError:  # a checkpoint without preprocessor_config.json: our log-mel
                extractor = None
        elif kind == "wav2vec2":
            encoder = transformers.Wav2Vec2Model.from_pretrained(cfg.encoder)
        else:
            raise ValueError(f"model.encoder {cfg.encoder!r}: a {kind!r} checkpoint; supported "
                             "are whisper and wav2vec2 checkpoints, or logmel_conv")
        cfg.feature_extractor = extractor.to_dict() if extractor is not None else None
    else:
        if cfg.encoder_config is not None:
            kind = cfg.encoder_config.get("model_type", "")
            cls = {"whisper": transformers.WhisperConfig,
                   "wav2vec2": transformers.Wav2Vec2Config}.get(kind)
            if cls is None:
                raise ValueError(f"saved encoder config has unsupported model_type {kind!r}")
            hf_config = cls.from_dict(cfg.encoder_config)
        else:
            hf_config = _tiny_hf_config(cfg.encoder)
        kind = hf_config.model_type
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if kind == "whisper":
                from transformers.models.whisper.modeling_whisper import WhisperEncoder

                encoder = WhisperEncoder(hf_config)
            else:
                encoder = transformers.Wav2Vec2Model(hf_config)
        if cfg.feature_extractor:
            extractor = transformers.WhisperFeatureExtractor.from_dict(cfg.feature_extractor)
    cfg.encoder_type = kind
    cfg.encoder_config = encoder.config.to_dict()
    return encoder, extractor


def build_encoder(cfg: AudioRMConfig, pretrained: bool = True) -> nn.Module:
    """The encoder named by ``cfg.encoder`` (see the module docstring); fills ``encoder_type``."""
    if cfg.encoder == "logmel_conv":
        cfg.encoder_type = "logmel_conv"
        return ConvEncoder(cfg)
    encoder, extractor = _hf_encoder(cfg, pretrained)
    if cfg.encoder_type == "whisper":
        return WhisperEncoderAdapter(cfg, encoder, extractor)
    return Wav2Vec2Adapter(cfg, encoder)


# ---------------------------------------------------------------------------------------------
# Pooling, prompt conditioning, the model
# ---------------------------------------------------------------------------------------------


class AttentionPool(nn.Module):
    """``[B, F, H]`` + mask ``[B, F]`` → ``[B, H]``: softmax attention over the valid frames."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(torch.tanh(self.proj(h)))[..., 0]  # [B, F]
        weights = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=1)
        return torch.einsum("bf,bfh->bh", weights, h)


def prompt_buckets(prompt: str | None, n_buckets: int) -> list[int]:
    """Bucket ids of the lower-cased words of ``prompt`` (CRC-32 modulo ``n_buckets``)."""
    words = _WORD.findall((prompt or "").lower())
    return [zlib.crc32(w.encode("utf-8")) % n_buckets for w in words]


def pad_features(feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips' features ``[F_i, C]`` → zero-padded ``[B, max F, C]`` and a bool mask ``[B, F]``."""
    longest = max(int(f.shape[0]) for f in feats)
    out = feats[0].new_zeros(len(feats), longest, feats[0].shape[1])
    mask = torch.zeros(len(feats), longest, dtype=torch.bool)
    for i, f in enumerate(feats):
        out[i, : f.shape[0]] = f
        mask[i, : f.shape[0]] = True
    return out, mask


class AudioRewardModel(nn.Module):
    """Scalar reward for speech clips (see the module docstring). ``forward`` → ``[B]``."""

    def __init__(self, config: AudioRMConfig | None = None, pretrained: bool = True) -> None:
        super().__init__()
        self.config = config or AudioRMConfig()
        self.encoder = build_encoder(self.config, pretrained)
        dim = self.encoder.out_dim
        self.pool = AttentionPool(dim)
        c = self.config
        self.prompt = (nn.EmbeddingBag(c.prompt_buckets, c.prompt_dim, mode="mean")
                       if c.prompt_buckets > 0 else None)
        extra = c.prompt_dim if self.prompt is not None else 0
        self.head = nn.Sequential(nn.Linear(dim + extra, c.hidden), nn.GELU(),
                                  nn.Dropout(c.dropout), nn.Linear(c.hidden, 1))

    # -- features --------------------------------------------------------------------------------
    def featurize(self, wave: Any, sample_rate: int) -> torch.Tensor:
        """One clip (``[samples]`` at ``sample_rate`` Hz) → encoder input ``[frames, C]``."""
        x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
        x = resample(x, int(sample_rate), self.config.sample_rate)
        x = x[: int(self.config.max_seconds * self.config.sample_rate)]
        with torch.no_grad():
            return self.encoder.featurize(x).float()

    def prompt_inputs(self, prompts: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(indices, offsets)`` for the prompt ``EmbeddingBag`` (an empty bag embeds as 0)."""
        ids, offsets = [], []
        for p in prompts:
            offsets.append(len(ids))
            ids.extend(prompt_buckets(p, self.config.prompt_buckets))
        return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, features: torch.Tensor, mask: torch.Tensor,
                prompts: Sequence[str | None] | None = None) -> torch.Tensor:
        """``features [B, F, C]``, ``mask [B, F]`` (True: a valid frame), prompts → ``[B]``."""
        h, out_mask = self.encoder(features, mask)
        pooled = self.pool(h, out_mask)
        if self.prompt is not None:
            ids, offsets = self.prompt_inputs(prompts or [None] * len(features))
            pooled = torch.cat([pooled, self.prompt(ids, offsets)], dim=1)
        return self.head(pooled)[:, 0]

    def score_features(self, feats: Sequence[torch.Tensor],
                       prompts: Sequence[str | None] | None = None,
                       batch_size: int = 32) -> list[float]:
        """Rewards of precomputed clips, in batches of ``batch_size`` (eval mode, no grad)."""
        was_training = self.training
        self.eval()
        scores: list[float] = []
        with torch.no_grad():
            for s in range(0, len(feats), batch_size):
                x, mask = pad_features(feats[s: s + batch_size])
                p = prompts[s: s + batch_size] if prompts is not None else None
                scores.extend(self(x, mask, p).tolist())
        self.train(was_training)
        return scores

    def score(self, waves: Sequence[Any], sample_rates: int | Sequence[int],
              prompts: Sequence[str | None] | None = None, batch_size: int = 32) -> list[float]:
        """Rewards of raw clips (each ``[samples]`` in [-1, 1]) at one or per-clip rates (Hz)."""
        rates = [sample_rates] * len(waves) if isinstance(sample_rates, int) else sample_rates
        feats = [self.featurize(w, sr) for w, sr in zip(waves, rates, strict=True)]
        return self.score_features(feats, prompts, batch_size)

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``."""
        from safetensors.torch import save_model

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        data = {"model_kind": MODEL_KIND, **asdict(self.config)}
        (out / CONFIG_FILE).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        save_model(self, str(out / WEIGHTS_FILE))
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> AudioRewardModel:
        """Load a model written by :meth:`save_pretrained` (offline: no checkpoint download)."""
        from safetensors.torch import load_model

        path = Path(directory)
        config_file = path / CONFIG_FILE
        if not config_file.is_file():
            raise FileNotFoundError(f"{path}: not an audio reward model ({CONFIG_FILE} missing)")
        data = json.loads(config_file.read_text(encoding="utf-8"))
        if data.get("model_kind") != MODEL_KIND:
            raise ValueError(f"{config_file}: model_kind is {data.get('model_kind')!r}, "
                             f"expected {MODEL_KIND!r}")
        model = cls(AudioRMConfig.from_dict(data), pretrained=False)
        load_model(model, str(path / WEIGHTS_FILE))
        model.eval()
        return model


# ---------------------------------------------------------------------------------------------
# A reward function (TRL signature): name "rewards.preference.audio_model:audio_reward"
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _cached_model(path: str) -> AudioRewardModel:
    return AudioRewardModel.from_pretrained(path)


def _clip(completion: Any, waveform: Any, sample_rate: Any) -> tuple[Any, int] | None:
    """The clip of one row: a ``{"array", "sample_rate"}`` completion, or the row's
    ``waveform`` and ``sample_rate`` columns; ``None`` when there is none."""
    if isinstance(completion, dict) and "array" in completion and completion.get("sample_rate"):
        return completion["array"], int(completion["sample_rate"])
    if waveform is not None and sample_rate:
        return waveform, int(sample_rate)
    return None


def audio_reward(prompts: Sequence[Any], completions: Sequence[Any], *, model: str,
                 batch_size: int = 32, use_prompt: bool = True, **columns: Any
                 ) -> list[float | None]:
    """Rewards of spoken completions from a saved :class:`AudioRewardModel` (``model``: its
    directory). Audio comes from a ``{"array", "sample_rate"}`` completion or the ``waveform``
    and ``sample_rate`` columns; a row without audio (or empty audio) scores ``None``."""
    rm = _cached_model(str(Path(model).expanduser().resolve()))
    n = len(completions)
    waves = columns.get("waveform") or [None] * n
    rates = columns.get("sample_rate")
    rates = rates if isinstance(rates, (list, tuple)) else [rates] * n
    out: list[float | None] = [None] * n
    feats, prompt_list, rows = [], [], []
    for i, completion in enumerate(completions):
        clip = _clip(completion, waves[i], rates[i])
        if clip is None or len(clip[0]) == 0:
            continue
        feats.append(rm.featurize(*clip))
        prompt_list.append(prompts[i] if use_prompt and isinstance(prompts[i], str) else None)
        rows.append(i)
    for i, value in zip(rows, rm.score_features(feats, prompt_list, batch_size), strict=True):
        out[i] = value
    return out
