"""The Whisper ASR policy (``policy.adapter: asr_whisper``): audio in, transcript out.

A Whisper-architecture encoder-decoder (``transformers.WhisperForConditionalGeneration``:
``tiny:whisper``, a local directory or a hub id such as ``openai/whisper-tiny``) transcribes
each prompt's audio; the transcripts are the completions, scored by ``asr.wer`` / ``asr.cer``.

Prompt rows: ``{"prompt": ..., "audio": "clips/0001.wav", "text": "four one nine"}``. The
audio comes from the column named ``audio_column`` (a WAV/FLAC path; the RL engine makes paths
relative to the JSONL file absolute), or from the prompt itself when the row has no such column
(then an absolute path, or one relative to the working directory).
The ``text_column`` (default ``text``) is copied to the ``reference`` column of the rollout (what
``asr.wer`` reads) unless the rows carry ``reference`` themselves.

Rollout layout: ``prompt_ids`` [N, P] is the decoder prompt (:func:`.asr_model.decoder_prompt`),
``completion_ids`` [N, T] the sampled transcript tokens with the end token, ``extras
["input_features"]`` the log-mel features ``[M, F]`` of each row's clip, kept so that
:meth:`log_probs` recomputes the encoder on exactly the features that were sampled from. Log-
probabilities are those of ``logits / temperature`` with special tokens suppressed (as sampled).
``save`` writes model, tokenizer and feature extractor; the directory loads again with this
adapter, the ``asr_finetune`` and ``asr_eval`` stages, or ``WhisperForConditionalGeneration``.
``to(device)`` moves model and reference to an accelerator (rollouts stay on the CPU).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rlhf.policies.audio import asr_model as asr
from rlhf.policies.audio.asr_policy import AsrPolicy, AsrPolicyOptions
from rlhf.policies.base import Rollout


class AsrWhisperOptions(AsrPolicyOptions):
    """``policy.adapter_options`` of ``asr_whisper``."""

    language: str | None = "en"
    """Language token of a hub Whisper tokenizer (ignored by ``tiny:whisper``)."""
    task: str = "transcribe"
    """``transcribe`` or ``translate`` (hub Whisper tokenizers only)."""


class AsrWhisperPolicy(AsrPolicy):
    """Whisper encoder-decoder as an RL policy (module docstring)."""

    Options = AsrWhisperOptions

    def __init__(self, spec: str, options: Any, need_reference: bool) -> None:
        self.options = options
        self.asr = AsrWhisperOptions(**options.adapter_options)
        model, self.tokenizer, self.extractor = asr.load_asr(spec)
        self.prompt = asr.decoder_prompt(self.tokenizer, model, self.asr.language, self.asr.task)
        self.features = asr.FeatureCache(self.extractor, self.asr.feature_cache)
        self._setup(model, need_reference, "SEQ_2_SEQ_LM")

    # -- sampling --------------------------------------------------------------------------------
    def _encode(self, prompts: list[Any], n: int, columns: dict[str, list[Any]]
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[Any]]]:
        feats = asr.prompt_audio(self.features, prompts, columns, self.asr.audio_column)
        expanded = [f for f in feats for _ in range(n)]
        prompt_ids = torch.tensor([self.prompt] * len(expanded), dtype=torch.long)
        return prompt_ids, torch.ones_like(prompt_ids), {"input_features": expanded}

    def _sample(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                extras: dict[str, list[Any]], greedy: bool = False) -> torch.Tensor:
        s = self.options.sampling
        return asr.decode(asr.callable_model(self.model), torch.stack(extras["input_features"]),
                          self.prompt, self.eos_token_id, self.allowed, s.max_new_tokens,
                          s.temperature, s.top_k, s.top_p, greedy)

    # -- scoring ---------------------------------------------------------------------------------
    def _logits(self, model: Any, rollout: Rollout) -> torch.Tensor:
        feats = torch.stack(rollout.extras["input_features"])
        logits = asr.teacher_forced_logits(asr.callable_model(model), feats, rollout.prompt_ids,
                                           rollout.completion_ids, self.allowed)
        return logits.float() / self.options.sampling.temperature

    def save(self, path: Path) -> None:
        asr.save_asr(self.model, self.tokenizer, self.extractor, Path(path))
