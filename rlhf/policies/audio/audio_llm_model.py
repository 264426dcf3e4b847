"""Audio-LLM ASR models (decoder-only LM + audio encoder + projector): loading, prompts through
the processor, decoding and teacher-forced scoring.

Used by the ``asr_audio_llm`` policy adapter so that sampling and scoring see the same inputs.
Shapes: N = utterances, P = prompt tokens (left-padded; the processor expands the prompt's one
audio placeholder into as many placeholders as the clip has audio embeddings, so P varies with
clip length), T = transcript tokens (right-padded, the end token included), V = vocabulary.
``audio`` is the dict of the processor's audio tensors stacked over rows, e.g. Qwen2-Audio's
``input_features`` [N, M, F] and ``feature_attention_mask`` [N, F]; they go to the model's
forward by name with the prompt ids, so any ``transformers`` audio-LLM whose processor takes
``(text, audio)`` and whose forward takes the processor's outputs works (Qwen2-Audio,
``tiny:audio-llm``).

Position ids are ``cumsum(attention_mask) - 1`` (0 on padding), identical when sampling with the
KV cache and when scoring the whole sequence, so left padding does not shift a row. Special
tokens other than the end token are suppressed (:func:`.asr_model.allowed_mask`).
"""

from __future__ import annotations

from typing import Any

import torch

from rlhf.errors import UserError
from rlhf.policies.audio import asr_model as asr


def load_audio_llm(spec: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """``(model, processor)`` of an audio-LLM: ``tiny:audio-llm``, a local directory or a hub id
    (``AutoModelForMultimodalLM`` / ``AutoProcessor``; never downloaded when offline: a
    :class:`UserError` then). The tokenizer pads on the left and has a pad token."""
    from transformers import AutoModelForMultimodalLM, AutoProcessor

    from rlhf.models.loading import _load, resolve_model_path

    path = resolve_model_path(spec)
    processor = _load("processor", spec, path, lambda: AutoProcessor.from_pretrained(
        path, trust_remote_code=trust_remote_code))
    model = _load("audio-LLM", spec, path, lambda: AutoModelForMultimodalLM.from_pretrained(
        path, trust_remote_code=trust_remote_code, dtype=torch.float32))
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, processor


def audio_token(processor: Any) -> str:
    """The placeholder the processor expands into the clip's audio embeddings."""
    token = getattr(processor, "audio_token", None)
    if not isinstance(token, str):
        raise UserError(f"the processor {type(processor).__name__} names no audio_token; the "
                        "asr_audio_llm adapter needs an audio-LLM processor (e.g. Qwen2-Audio's)")
    return token


class PromptCache(asr.FeatureCache):
    """Audio file → the processor's encoding of ``(prompt, clip)``: ``{"input_ids": [L] long,
    "audio": {name: tensor without the batch dimension}}`` (LRU of ``size`` entries)."""

    def __init__(self, processor: Any, prompt: str, size: int = 4096) -> None:
        super().__init__(processor.feature_extractor, size)
        self.processor, self.prompt = processor, prompt

    def encode(self, wave: Any, sample_rate: int) -> dict[str, Any]:
        out = self.processor(text=[self.prompt], audio=[wave], sampling_rate=sample_rate,
                             return_tensors="pt")
        ids = out["input_ids"][0][out["attention_mask"][0].bool()]
        audio = {k: v[0].float() if v.is_floating_point() else v[0] for k, v in out.items()
                 if k not in ("input_ids", "attention_mask") and isinstance(v, torch.Tensor)}
        return {"input_ids": ids.long(), "audio": audio}


def collate(items: list[dict[str, Any]], pad_token_id: int
            ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``(prompt_ids [N, P] left-padded, prompt_mask [N, P], audio)`` of :class:`PromptCache`
    items."""
    width = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.long)
    for r, it in enumerate(items):
        n = len(it["input_ids"])
        ids[r, width - n:] = it["input_ids"]
        mask[r, width - n:] = 1
    audio = {k: torch.stack([it["audio"][k] for it in items]) for k in items[0]["audio"]}
    return ids, mask, audio


def positions(mask: torch.Tensor) -> torch.Tensor:
    """[N, S] position ids of a left-padded attention mask: ``cumsum - 1``, 0 on padding."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def _on(device: torch.device, audio: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in audio.items()}


def teacher_forced_logits(model: Any, audio: dict[str, torch.Tensor], prompt_ids: torch.Tensor,
                          prompt_mask: torch.Tensor, completion_ids: torch.Tensor,
                          allowed: torch.Tensor) -> torch.Tensor:
    """[N, T, V] next-token logits at each transcript position (suppressed tokens masked), on
    the model's device. The LM reads ``prompt + completion[:-1]``; positions after a row's end
    token come later in a causal LM, so their padding cannot change the valid positions."""
    device = next(model.parameters()).device
    ids = torch.cat([prompt_ids, completion_ids[:, :-1]], dim=1).to(device)
    mask = torch.cat([prompt_mask, torch.ones_like(completion_ids[:, :-1])], dim=1).to(device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask),
                   use_cache=False, **_on(device, audio)).logits
    return asr.mask_logits(logits[:, prompt_ids.shape[1] - 1:, :], allowed)


@torch.no_grad()
def decode(model: Any, audio: dict[str, torch.Tensor], prompt_ids: torch.Tensor,
           prompt_mask: torch.Tensor, eos: int, allowed: torch.Tensor, max_new_tokens: int,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
           greedy: bool = False) -> torch.Tensor:
    """[N, T] transcript ids (CPU): :func:`.asr_model.sample_loop` over the LM's KV cache; the
    audio goes in with the prompt, later steps feed one token per row."""
    device = next(model.parameters()).device
    cache_kw = asr.cache_keyword(model)
    state: dict[str, Any] = {"mask": prompt_mask.to(device), "past": None}

    def step(nxt: torch.Tensor | None) -> torch.Tensor:
        if nxt is None:
            inputs = {"input_ids": prompt_ids.to(device), **_on(device, audio)}
            pos = positions(state["mask"])
        else:
            mask = state["mask"]
            state["mask"] = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            inputs = {"input_ids": nxt.unsqueeze(1)}
            pos = positions(state["mask"])[:, -1:]
        res = model(attention_mask=state["mask"], position_ids=pos, use_cache=True,
                    **{cache_kw: state["past"]}, **inputs)
        state["past"] = getattr(res, cache_kw)
        return res.logits[:, -1, :]

    return asr.sample_loop(step, prompt_ids.shape[0], eos, allowed, max_new_tokens,
                           temperature, top_k, top_p, greedy)
