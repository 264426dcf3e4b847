"""Whisper-architecture ASR models: loading, features, decoding and teacher-forced scoring, plus
what every ASR model shares (the feature cache, special-token suppression, the sampling loop).

Used by the ``asr_whisper`` policy adapter (and through it the ``asr_finetune`` warm start and
the ``asr_eval`` stage), so that all three see the same features, decoder prompt and token
distribution; :mod:`.audio_llm_model` reuses the shared parts for audio-LLMs.

Shapes: N = utterances, M = mel bins, F = feature frames (fixed by the feature extractor: every
clip is padded or cut to its ``chunk_length``), P = decoder prompt tokens (the same for every
row), T = transcript tokens (right-padded, the end token included), V = vocabulary.

The **decoder prompt** is the tokenizer's Whisper prefix (``<|startoftranscript|>``, language,
task, ``<|notimestamps|>``) for a hub Whisper tokenizer, else ``[decoder_start_token_id]`` (the
``tiny:whisper`` word tokenizer). Special tokens other than the end token are **suppressed**:
their logits are :data:`MASKED` both when sampling and when scoring, so log-probabilities are
those of the distribution sampled from.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from rlhf.errors import UserError

MASKED = -1e9
"""Logit of suppressed tokens (finite, so entropies stay finite)."""


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None: unchanged), restoring the previous count."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_asr(spec: str) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, feature_extractor)`` of a Whisper checkpoint: ``tiny:whisper``, a
    local directory or a hub id (never downloaded when offline; a :class:`UserError` then)."""
    from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from rlhf.models.loading import _load, resolve_model_path

    path = resolve_model_path(spec)
    tokenizer = _load("tokenizer", spec, path, lambda: AutoTokenizer.from_pretrained(path))
    extractor = _load("feature extractor", spec, path,
                      lambda: WhisperFeatureExtractor.from_pretrained(path))
    model = _load("Whisper model", spec, path,
                  lambda: WhisperForConditionalGeneration.from_pretrained(
                      path, dtype=torch.float32))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, extractor


def save_asr(model: Any, tokenizer: Any, extractor: Any, path: Path) -> Path:
    """Save model (safetensors; LoRA merged), tokenizer and feature extractor to ``path``."""
    from rlhf.models import save_model

    save_model(model, tokenizer, path, merge=True)
    extractor.save_pretrained(path)
    return path


def decoder_prompt(tokenizer: Any, model: Any, language: str | None, task: str) -> list[int]:
    """The decoder prompt ids (module docstring)."""
    if hasattr(tokenizer, "set_prefix_tokens"):  # a Whisper tokenizer
        tokenizer.set_prefix_tokens(language=language, task=task, predict_timestamps=False)
        return list(tokenizer.prefix_tokens)
    start = model.config.decoder_start_token_id
    return [int(start if start is not None else tokenizer.bos_token_id)]


def end_token(tokenizer: Any, model: Any) -> int:
    eos = tokenizer.eos_token_id
    return int(eos if eos is not None else model.config.eos_token_id)


def allowed_mask(tokenizer: Any, model: Any) -> torch.Tensor:
    """[V] bool: True for tokens that may be generated (all but special tokens; the end token
    stays allowed)."""
    size = model.get_output_embeddings().weight.shape[0]
    allowed = torch.ones(size, dtype=torch.bool)
    special = [i for i in tokenizer.all_special_ids if i < size]
    allowed[special] = False
    allowed[end_token(tokenizer, model)] = True
    return allowed


class FeatureCache:
    """Audio file → log-mel features ``[M, F]`` (float32), computed once per file (LRU of
    ``size`` entries; 0 keeps none)."""

    def __init__(self, extractor: Any, size: int = 4096) -> None:
        self.extractor, self.size = extractor, size
        self._items: OrderedDict[str, Any] = OrderedDict()

    def waveform_features(self, wave: Any, sample_rate: int) -> Any:
        """The features of one waveform, resampled to the extractor's rate first."""
        from rlhf.audio.features import resample

        target = int(self.extractor.sampling_rate)
        if sample_rate != target:
            wave = resample(wave, sample_rate, target)
        return self.encode(wave, target)

    def encode(self, wave: Any, sample_rate: int) -> Any:
        """Hook: features of a waveform already at the extractor's rate (here ``[M, F]``)."""
        out = self.extractor(wave, sampling_rate=sample_rate, return_tensors="pt")
        return out["input_features"][0].to(torch.float32)

    def __call__(self, path: str) -> Any:
        from rlhf.audio.io import AudioError, read_audio

        key = str(path)
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        try:
            wave, sr = read_audio(key)
        except AudioError as exc:
            raise UserError(str(exc)) from None
        feats = self.waveform_features(wave, sr)
        if self.size:
            self._items[key] = feats
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return feats


def prompt_audio(cache: FeatureCache, prompts: list[Any], columns: dict[str, list[Any]],
                 audio_column: str) -> list[Any]:
    """``cache``'s features of each prompt row's clip: the path in ``columns[audio_column]``,
    else the prompt itself. A missing or unreadable file is a :class:`UserError` naming the row
    (its prompt and column) and the path."""
    paths = columns.get(audio_column) or [None] * len(prompts)
    out = []
    for i, (path, prompt) in enumerate(zip(paths, prompts, strict=True)):
        where = (f"column {audio_column!r}" if path is not None
                 else f"prompt (no {audio_column!r} column)")
        try:
            out.append(cache(str(path if path is not None else prompt)))
        except UserError as exc:
            raise UserError(f"ASR prompt row {i} of the batch (prompt {str(prompt)[:80]!r}), "
                            f"{where}: {exc}") from None
    return out


def mask_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(~allowed.to(logits.device), MASKED)


def teacher_forced_logits(model: Any, features: torch.Tensor, prompt_ids: torch.Tensor,
                          completion_ids: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """[N, T, V] next-token logits at each transcript position (suppressed tokens masked).

    ``features`` [N, M, F]; ``prompt_ids`` [N, P]; ``completion_ids`` [N, T]. The decoder reads
    ``prompt + completion[:-1]``; positions after a row's end token only see earlier tokens
    (causal decoder), so their padding cannot change the valid positions.
    """
    device = next(model.parameters()).device
    decoder_ids = torch.cat([prompt_ids, completion_ids[:, :-1]], dim=1).to(device)
    logits = model(input_features=features.to(device), decoder_input_ids=decoder_ids,
                   use_cache=False).logits
    p = prompt_ids.shape[1]
    return mask_logits(logits[:, p - 1:, :], allowed)


def callable_model(model: Any) -> Any:
    """The module to call: a LoRA ``PeftModel``'s base (its layers hold the adapters, and
    disabling them works on it too; PEFT's own ``forward`` would pass arguments, e.g. Whisper's
    ``input_ids``, that the model rejects, and hides the signature :func:`cache_keyword`
    reads), else ``model`` itself."""
    from rlhf.models.lora import is_peft_model

    return model.get_base_model() if is_peft_model(model) else model


def cache_keyword(model: Any) -> str:
    """``cache`` (transformers >= 5.x) or ``past_key_values`` (older): the KV-cache argument."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def token_sampler(top_k: int = 0, top_p: float = 1.0) -> Any:
    """The top-k / top-p warpers of a sampling loop (``transformers`` logits processors)."""
    from transformers import LogitsProcessorList, TopKLogitsWarper, TopPLogitsWarper

    warpers = LogitsProcessorList()
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    return warpers


StepFn = Callable[[torch.Tensor | None], torch.Tensor]
"""``step(None)`` → [N, V] next-token logits after the prompt; ``step(ids [N])`` feeds one
token per row (through the model's KV cache) and returns the logits after it."""


@torch.no_grad()
def sample_loop(step: StepFn, n: int, eos: int, allowed: torch.Tensor, max_new_tokens: int,
                temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                greedy: bool = False) -> torch.Tensor:
    """[N, T] token ids (on the CPU), sampled (or greedy) from ``step``'s logits with
    suppressed tokens masked, ``logits / temperature`` warped by top-k/top-p; after a row's end
    token the row is filled with the end token (callers mask it). Shared by every ASR model."""
    warpers = token_sampler(top_k, top_p)
    logits = step(None)
    done = torch.zeros(n, dtype=torch.bool, device=logits.device)
    out: list[torch.Tensor] = []
    for t in range(max_new_tokens):
        logits = mask_logits(logits.float(), allowed)
        if greedy:
            nxt = logits.argmax(dim=-1)
        else:
            scores = warpers(None, logits / temperature)  # top-k/top-p read no ids
            nxt = torch.multinomial(torch.softmax(scores, dim=-1), 1).squeeze(1)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
        out.append(nxt)
        done |= nxt == eos
        if bool(done.all()) or t == max_new_tokens - 1:
            break
        logits = step(nxt)
    return torch.stack(out, dim=1).cpu()


@torch.no_grad()
def decode(model: Any, features: torch.Tensor, prompt: list[int], eos: int,
           allowed: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
           top_k: int = 0, top_p: float = 1.0, greedy: bool = False) -> torch.Tensor:
    """[N, T] transcript ids of a Whisper model (:func:`sample_loop` over the decoder's KV
    cache; ``features`` [N, M, F] on any device, the ids come back on the CPU)."""
    device = next(model.parameters()).device
    encoder_out = model.get_encoder()(input_features=features.to(device))
    cache_kw = cache_keyword(model)
    state: dict[str, Any] = {"past": None}

    def step(nxt: torch.Tensor | None) -> torch.Tensor:
        ids = (torch.tensor([prompt] * features.shape[0], dtype=torch.long, device=device)
               if nxt is None else nxt.unsqueeze(1))
        res = model(encoder_outputs=encoder_out, decoder_input_ids=ids, use_cache=True,
                    **{cache_kw: state["past"]})
        state["past"] = getattr(res, cache_kw)
        return res.logits[:, -1, :]

    return sample_loop(step, features.shape[0], eos, allowed, max_new_tokens, temperature,
                       top_k, top_p, greedy)


def completion_mask(ids: torch.Tensor, eos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mask [N, T] float, truncated [N] bool)``: 1 up to and including the first end token;
    rows without one are truncated (all positions count)."""
    is_eos = ids == eos
    has_eos = is_eos.any(dim=1)
    first = torch.where(has_eos, is_eos.float().argmax(dim=1),
                        torch.full((ids.shape[0],), ids.shape[1], dtype=torch.long))
    positions = torch.arange(ids.shape[1]).unsqueeze(0)
    return (positions <= first.unsqueeze(1)).float(), ~has_eos
