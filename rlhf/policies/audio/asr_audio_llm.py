"""The audio-LLM ASR policy (``policy.adapter: asr_audio_llm``): audio in, transcript out.

A decoder-only LM that reads audio through an encoder and projector (``transformers``' Qwen2-Audio
architecture: ``tiny:audio-llm``, a local directory or a hub id such as
``Qwen/Qwen2-Audio-7B``; ``trust_remote_code`` only when ``policy.trust_remote_code`` says so)
transcribes each prompt row's clip; the transcripts are the completions, scored by ``asr.wer`` /
``asr.cer``. Prompt rows are those of ``asr_whisper``: ``{"prompt": ..., "audio":
"clips/0001.wav", "text": "four one nine"}`` (audio from ``audio_column``, else the prompt is
the path; ``text_column`` copied to ``reference``).

The **prompt** is ``processor(text=adapter_options.prompt, audio=clip)``: the prompt text holds
the processor's audio placeholder once (default ``<|audio_bos|><|AUDIO|><|audio_eos|>``; a hub
model's instruction, e.g. ``...<|audio_eos|>Generate the caption in English:``, goes after it),
which the processor expands to one placeholder per audio embedding of the clip.

Rollout layout: ``prompt_ids`` [N, P] the expanded prompt, left-padded (``prompt_mask``),
``completion_ids`` [N, T] the sampled transcript tokens with the end token, ``extras
["audio_inputs"]`` per row the processor's audio tensors (``input_features`` [M, F],
``feature_attention_mask`` [F]), kept so that :meth:`log_probs` recomputes the audio encoder on
exactly what was sampled from. Log-probabilities are those of ``logits / temperature`` with
special tokens suppressed (as sampled). ``save`` writes model and processor (safetensors; LoRA
merged); the directory loads again with this adapter or ``AutoModelForMultimodalLM`` /
``AutoProcessor``. ``to(device)`` moves model and reference (rollouts stay on the CPU).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlhf.errors import UserError
from rlhf.policies.audio import asr_model as asr
from rlhf.policies.audio import audio_llm_model as alm
from rlhf.policies.audio.asr_policy import AsrPolicy, AsrPolicyOptions
from rlhf.policies.base import Rollout


class AsrAudioLLMOptions(AsrPolicyOptions):
    """``policy.adapter_options`` of ``asr_audio_llm``."""

    prompt: str = "<|audio_bos|><|AUDIO|><|audio_eos|>"
    """Prompt text given to the processor with the clip; holds its audio token exactly once."""


class AsrAudioLLMPolicy(AsrPolicy):
    """Audio-LLM (audio encoder + projector + causal LM) as an RL policy (module docstring)."""

    Options = AsrAudioLLMOptions

    def __init__(self, spec: str, options: Any, need_reference: bool) -> None:
        self.options = options
        self.asr = AsrAudioLLMOptions(**options.adapter_options)
        model, self.processor = alm.load_audio_llm(spec, options.trust_remote_code)
        self.tokenizer = self.processor.tokenizer
        token = alm.audio_token(self.processor)
        if self.asr.prompt.count(token) != 1:
            raise UserError(f"policy.adapter_options.prompt: {self.asr.prompt!r} must hold the "
                            f"audio token {token!r} of {spec!r} exactly once (the processor "
                            "expands it into the clip's audio embeddings)")
        self.prompts = alm.PromptCache(self.processor, self.asr.prompt, self.asr.feature_cache)
        self._setup(model, need_reference, "CAUSAL_LM")

    # -- sampling --------------------------------------------------------------------------------
    def _encode(self, prompts: list[Any], n: int, columns: dict[str, list[Any]]
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[Any]]]:
        items = asr.prompt_audio(self.prompts, prompts, columns, self.asr.audio_column)
        expanded = [it for it in items for _ in range(n)]
        prompt_ids, prompt_mask, _ = alm.collate(expanded, self.pad_token_id)
        return prompt_ids, prompt_mask, {"audio_inputs": [it["audio"] for it in expanded]}

    def _sample(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                extras: dict[str, list[Any]], greedy: bool = False) -> torch.Tensor:
        s = self.options.sampling
        return alm.decode(asr.callable_model(self.model), self._audio(extras), prompt_ids,
                          prompt_mask, self.eos_token_id, self.allowed, s.max_new_tokens,
                          s.temperature, s.top_k, s.top_p, greedy)

    @staticmethod
    def _audio(extras: dict[str, list[Any]]) -> dict[str, torch.Tensor]:
        """The processor's audio tensors of each completion, stacked: name → [N, ...]."""
        rows = extras["audio_inputs"]
        return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}

    # -- scoring ---------------------------------------------------------------------------------
    def _logits(self, model: Any, rollout: Rollout) -> torch.Tensor:
        logits = alm.teacher_forced_logits(
            asr.callable_model(model), self._audio(rollout.extras), rollout.prompt_ids,
            rollout.prompt_mask, rollout.completion_ids, self.allowed)
        return logits.float() / self.options.sampling.temperature

    def save(self, path: Path) -> None:
        """Model (safetensors, LoRA merged) and processor (tokenizer + feature extractor)."""
        from rlhf.models import save_model

        save_model(self.model, None, Path(path), merge=True)
        self.processor.save_pretrained(Path(path))
