"""The codec-token TTS policy (``policy.adapter: codec_tts``).

A causal LM whose vocabulary holds audio codec tokens after the text tokens (the layout of
Llasa, Orpheus, OuteTTS, Step-Audio 2): it reads ``"{text}<|audio_start|>"`` and writes audio
tokens, then ``<|audio_end|>``; the codec (:mod:`rlhf.audio.codecs`) turns the codes into a
waveform.

Token layout. The tokens ``<|audio_start|>``, ``<|audio_end|>`` and then ``n_q × K`` code tokens
``<|c{q}_{k}|>`` (codebook ``q`` < ``n_q``, code ``k`` < ``K`` = the codebook size) are added to
the text tokenizer in that order, so the code of codebook ``q`` has token id
``audio_offset + q·K + k``, past every text id (the embedding matrix grows to match, new rows
initialised from a fixed seed). A frame's ``n_q`` codes are flattened **frame-major, codebook
minor**: ``c0[f0] c1[f0] … c{n_q-1}[f0] c0[f1] …`` (completion position ``t`` holds codebook
``t mod n_q`` of frame ``t div n_q``). Sampling is restricted to that layout (like the
eSpeak policy's control tokens): at position ``t`` only codebook ``t mod n_q``'s tokens are
allowed, plus ``<|audio_end|>`` at frame boundaries once ``min_frames`` frames are written. Log
probabilities are those of the restricted distribution (other logits at -1e9), of
``logits / temperature``, as sampled.

``save`` writes the LM with the grown tokenizer and ``codec_tts.json`` (:data:`LAYOUT_FILE`:
codec, ``n_q``, ``min_frames``, codebook size, ``audio_offset``, end id); :func:`load_layout`
reads it back, so that ``dpo`` on token-id pairs scores the same restricted distribution.

A rollout's ``completions`` are short descriptions (``"12 frames, 0.48 s"``); its ``extras``
hold per completion ``waveform`` (float32 mono at ``sample_rate`` Hz), ``sample_rate``,
``codes`` (``[n_q, frames]`` int lists) and ``text`` (the prompt sentence, the intended words
for ``audio.*`` rewards; left out when the rows have a ``text`` column). A completion truncated
mid-frame keeps its whole frames; zero frames give an empty waveform (audio rewards: None).
"""

from __future__ import annotations

from typing import Any

import json
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from rlhf.policies.base import Rollout
from rlhf.policies.text import TextPolicy

AUDIO_START = "<|audio_start|>"
AUDIO_END = "<|audio_end|>"
LAYOUT_FILE = "codec_tts.json"
"""Written next to a saved policy: what :class:`LayoutMask` needs."""
INIT_SEED = 7919
"""Seed of the new embedding rows (a given LM and codec always grow the same way)."""


class CodecTTSOptions(BaseModel):
    """``policy.adapter_options`` of ``codec_tts``."""

    model_config = ConfigDict(extra="forbid")

    codec: str = "tiny:encodec"
    """Codec: EnCodec / DAC / Mimi hub id or path, or ``tiny:encodec|dac|mimi``."""
    n_q: int | None = Field(None, ge=1)
    """Codebooks per frame (a prefix of the codec's residual codebooks); default: all."""
    min_frames: int = Field(1, ge=0)
    """Frames written before ``<|audio_end|>`` may be sampled."""


def code_token(q: int, k: int) -> str:
    return f"<|c{q}_{k}|>"


class LayoutMask:
    """Allowed tokens per completion position: ``mask(T)`` → bool ``[T, vocab]``."""

    def __init__(self, vocab: int, offset: int, n_q: int, k: int, end_id: int,
                 min_frames: int) -> None:
        self.vocab, self.offset, self.n_q, self.k = vocab, offset, n_q, k
        self.end_id, self.min_frames = end_id, min_frames

    def mask(self, length: int, start: int = 0) -> torch.Tensor:
        """Bool ``[length, vocab]`` for completion positions ``start .. start+length-1``."""
        out = torch.zeros(length, self.vocab, dtype=torch.bool)
        for i in range(length):
            t = start + i
            q = t % self.n_q
            lo = self.offset + q * self.k
            out[i, lo:lo + self.k] = True
            if q == 0 and t // self.n_q >= self.min_frames:
                out[i, self.end_id] = True
        return out


def load_layout(model_dir: str | Path) -> LayoutMask | None:
    """The layout of a saved ``codec_tts`` policy (None when ``model_dir`` has no
    :data:`LAYOUT_FILE`)."""
    path = Path(model_dir) / LAYOUT_FILE
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    return LayoutMask(d["vocab"], d["audio_offset"], d["n_q"], d["codebook_size"], d["end_id"],
                      d["min_frames"])


class CodecTTSPolicy(TextPolicy):
    """A causal LM writing codec tokens, decoded to speech by a codec (module docstring)."""

    Options = CodecTTSOptions

    def __init__(self, spec: str, options: Any, need_reference: bool) -> None:
        from rlhf.audio.codecs import load_codec

        self.codec_options = CodecTTSOptions(**options.adapter_options)
        self.codec = load_codec(self.codec_options.codec, self.codec_options.n_q)
        super().__init__(spec, options, need_reference)
        self.eos_token_id = self.end_id  # generation stops at <|audio_end|>

    # -- hooks of TextPolicy ---------------------------------------------------------------------
    def _prepare(self, model: Any) -> Any:
        tok, c = self.tokenizer, self.codec
        codes = [code_token(q, k) for q in range(c.n_q) for k in range(c.codebook_size)]
        tok.add_tokens([t for t in [AUDIO_START, AUDIO_END, *codes] if t not in tok.get_vocab()])
        if model.get_input_embeddings().weight.shape[0] < len(tok):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(INIT_SEED)
                model.resize_token_embeddings(len(tok), mean_resizing=False)
        vocab = tok.get_vocab()
        self.start_id, self.end_id = vocab[AUDIO_START], vocab[AUDIO_END]
        self.audio_offset = vocab[codes[0]]
        ids = [vocab[t] for t in codes]
        if ids != list(range(self.audio_offset, self.audio_offset + len(codes))):
            raise ValueError("the tokenizer's codec tokens are not contiguous (a different "
                             "codec or n_q than the one this model was grown for?)")
        size = model.get_output_embeddings().weight.shape[0]
        self.layout = LayoutMask(size, self.audio_offset, c.n_q, c.codebook_size, self.end_id,
                                 self.codec_options.min_frames)
        return model

    def _allowed(self, length: int, start: int = 0) -> torch.Tensor:
        return self.layout.mask(length, start)

    def prompt_text(self, prompt: Any) -> str:
        return f"{prompt}{AUDIO_START}"

    def save(self, path: Path) -> None:
        super().save(path)
        lay = self.layout
        (Path(path) / LAYOUT_FILE).write_text(json.dumps({
            "codec": self.codec_options.codec, "n_q": lay.n_q, "min_frames": lay.min_frames,
            "codebook_size": lay.k, "audio_offset": lay.offset, "end_id": lay.end_id,
            "vocab": lay.vocab, "sample_rate": self.codec.sample_rate}, indent=2))

    # -- tokens ↔ codes --------------------------------------------------------------------------
    def codes_of(self, ids: list[int]) -> np.ndarray:
        """Completion ids (up to ``<|audio_end|>``) → codes ``[n_q, frames]`` (whole frames)."""
        c = self.codec
        if self.end_id in ids:
            ids = ids[:ids.index(self.end_id)]
        frames = len(ids) // c.n_q
        flat = np.asarray(ids[:frames * c.n_q], dtype=np.int64) - self.audio_offset
        codes = flat.reshape(frames, c.n_q).T - (np.arange(c.n_q) * c.codebook_size)[:, None]
        if codes.size and (codes.min() < 0 or codes.max() >= c.codebook_size):
            raise ValueError("completion holds tokens outside the codec layout")
        return codes

    def ids_of(self, codes: Any, end: bool = True) -> list[int]:
        """Codes ``[n_q, frames]`` → completion ids (frame-major), ``<|audio_end|>`` last."""
        c = np.asarray(codes, dtype=np.int64)
        ids = (c + (np.arange(c.shape[0]) * self.codec.codebook_size)[:, None]).T.reshape(-1)
        return [int(i) + self.audio_offset for i in ids] + ([self.end_id] if end else [])

    # -- sampling --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, prompts: list[Any], n: int, columns: dict[str, list[Any]] | None = None
                 ) -> Rollout:
        rollout = super().generate(prompts, n, columns)
        waves, codes, texts = [], [], []
        for ids in rollout.token_lists():
            code = self.codes_of(ids)
            wave, _ = self.codec.decode(code)
            waves.append(wave)
            codes.append(code.tolist())
            texts.append(f"{code.shape[1]} frames, {code.shape[1] / self.codec.frame_rate:.2f} s")
        rollout.completions = texts
        sr = self.codec.sample_rate
        rollout.extras = {"waveform": waves, "sample_rate": [sr] * len(waves), "codes": codes}
        if "text" not in rollout.columns:
            rollout.extras["text"] = [str(p) for p in rollout.prompts]
        return rollout
