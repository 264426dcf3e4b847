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
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from rlhf.policies.audio import asr_model as asr
from rlhf.policies.base import LogitsScoring, Rollout


class AsrWhisperOptions(BaseModel):
    """``policy.adapter_options`` of ``asr_whisper``."""

    model_config = ConfigDict(extra="forbid")

    audio_column: str = "audio"
    """Column holding the audio path of each prompt row (absent: the prompt is the path)."""
    text_column: str = "text"
    """Column holding the reference transcript; copied to ``reference`` for ``asr.wer``."""
    language: str | None = "en"
    """Language token of a hub Whisper tokenizer (ignored by ``tiny:whisper``)."""
    task: str = "transcribe"
    """``transcribe`` or ``translate`` (hub Whisper tokenizers only)."""
    feature_cache: int = Field(4096, ge=0)
    """Clips whose features are kept in memory (0: none)."""


class AsrWhisperPolicy(LogitsScoring):
    """Whisper encoder-decoder as an RL policy (module docstring)."""

    Options = AsrWhisperOptions

    def __init__(self, spec: str, options: Any, need_reference: bool) -> None:
        self.options = options
        self.asr = AsrWhisperOptions(**options.adapter_options)
        model, self.tokenizer, self.extractor = asr.load_asr(spec)
        self.prompt = asr.decoder_prompt(self.tokenizer, model, self.asr.language, self.asr.task)
        self.eos_token_id = asr.end_token(self.tokenizer, model)
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.allowed = asr.allowed_mask(self.tokenizer, model)
        self.features = asr.FeatureCache(self.extractor, self.asr.feature_cache)
        self.uses_lora = options.lora is not None
        self.reference_model = None
        if need_reference and not self.uses_lora:
            self.reference_model = copy.deepcopy(model).eval().requires_grad_(False)
        if self.uses_lora:
            from rlhf.models import apply_lora

            model = apply_lora(model, options.lora, "SEQ_2_SEQ_LM")
        self.model = model

    # -- prompts ---------------------------------------------------------------------------------
    def audio_paths(self, prompts: list[Any], columns: dict[str, list[Any]]) -> list[str]:
        paths = columns.get(self.asr.audio_column) or [None] * len(prompts)
        return [str(a if a is not None else p) for a, p in zip(paths, prompts, strict=True)]

    # -- sampling --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, prompts: list[Any], n: int, columns: dict[str, list[Any]] | None = None
                 ) -> Rollout:
        columns = columns or {}
        feats = [self.features(p) for p in self.audio_paths(prompts, columns)]
        expanded_feats = [f for f in feats for _ in range(n)]
        s = self.options.sampling
        was_training = self.model.training
        self.model.eval()
        ids = asr.decode(self._net(self.model), torch.stack(expanded_feats), self.prompt,
                         self.eos_token_id, self.allowed, s.max_new_tokens, s.temperature,
                         s.top_k, s.top_p)
        mask, truncated = asr.completion_mask(ids, self.eos_token_id)
        ids = torch.where(mask.bool(), ids, torch.full_like(ids, self.pad_token_id))
        texts = [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        cols = {k: [v for v in vals for _ in range(n)] for k, vals in columns.items()}
        if "reference" not in cols and self.asr.text_column in cols:
            cols["reference"] = list(cols[self.asr.text_column])
        total = len(expanded_feats)
        prompt_ids = torch.tensor([self.prompt] * total, dtype=torch.long)
        rollout = Rollout([p for p in prompts for _ in range(n)], prompt_ids,
                          torch.ones_like(prompt_ids), ids, mask, torch.zeros_like(mask), texts,
                          truncated, cols, {"input_features": expanded_feats})
        rollout.old_logp = self.log_probs(rollout, grad=False)
        self.model.train(was_training)
        return rollout

    # -- scoring ---------------------------------------------------------------------------------
    @staticmethod
    def _net(model: Any) -> Any:
        """The Whisper module to call: a LoRA ``PeftModel``'s base (its layers hold the adapters;
        PEFT's seq2seq ``forward`` would pass ``input_ids`` that Whisper's decoder rejects)."""
        from rlhf.models.lora import is_peft_model

        return model.get_base_model() if is_peft_model(model) else model

    def _logits(self, model: Any, rollout: Rollout) -> torch.Tensor:
        feats = torch.stack(rollout.extras["input_features"])
        logits = asr.teacher_forced_logits(self._net(model), feats, rollout.prompt_ids,
                                           rollout.completion_ids, self.allowed)
        return logits.float() / self.options.sampling.temperature

    def save(self, path: Path) -> None:
        asr.save_asr(self.model, self.tokenizer, self.extractor, Path(path))
