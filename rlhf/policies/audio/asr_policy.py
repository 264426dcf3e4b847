"""What the ASR policy adapters share (``asr_whisper``, ``asr_audio_llm``): the common adapter
options, the frozen reference / LoRA set-up, device placement, turning sampled transcript ids
into a :class:`~rlhf.policies.base.Rollout` whose ``reference`` column ``asr.wer`` reads, greedy
:meth:`AsrPolicy.transcribe` and the teacher-forced :meth:`AsrPolicy.reference_rollout`; and
:func:`build_asr_policy`, which picks the adapter from a checkpoint's model type for the
``asr_finetune`` and ``asr_eval`` stages.

Shapes: N = completions (prompts × group size, groups contiguous), P = prompt tokens, T =
transcript tokens (right-padded; the end token included in the mask).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from rlhf.policies.audio import asr_model as asr
from rlhf.policies.base import LogitsScoring, ModelPlacement, Rollout


class AsrPolicyOptions(BaseModel):
    """``policy.adapter_options`` common to the ASR adapters."""

    model_config = ConfigDict(extra="forbid")

    audio_column: str = "audio"
    """Column holding the audio path of each prompt row (absent: the prompt is the path)."""
    text_column: str = "text"
    """Column holding the reference transcript; copied to ``reference`` for ``asr.wer``."""
    feature_cache: int = Field(4096, ge=0)
    """Clips whose features are kept in memory (0: none)."""


class AsrPolicy(ModelPlacement, LogitsScoring):
    """Base of the ASR adapters: subclasses load ``model`` and ``tokenizer``, call
    :meth:`_setup`, and define :meth:`_encode` (prompts), :meth:`_sample` and ``_logits``."""

    options: Any
    asr: AsrPolicyOptions
    tokenizer: Any
    eos_token_id: int
    pad_token_id: int

    def _setup(self, model: Any, need_reference: bool, lora_task: str) -> None:
        """Set ``model`` (LoRA-wrapped when ``options.lora``), ``reference_model`` (a frozen copy
        when needed without LoRA), ``uses_lora`` and the allowed-token mask ``allowed`` [V]."""
        self.eos_token_id = asr.end_token(self.tokenizer, model)
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.allowed = asr.allowed_mask(self.tokenizer, model)
        self.uses_lora = self.options.lora is not None
        self.reference_model = None
        if need_reference and not self.uses_lora:
            self.reference_model = copy.deepcopy(model).eval().requires_grad_(False)
        if self.uses_lora:
            from rlhf.models import apply_lora

            model = apply_lora(model, self.options.lora, lora_task)
        self.model = model

    # -- hooks of the subclasses -----------------------------------------------------------------
    def _encode(self, prompts: list[Any], n: int, columns: dict[str, list[Any]]
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[Any]]]:
        """``(prompt_ids [N, P], prompt_mask [N, P], extras)`` of each row's clip, every row
        repeated ``n`` times; ``extras`` hold what :meth:`_logits` needs (per completion)."""
        raise NotImplementedError

    def _sample(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                extras: dict[str, list[Any]], greedy: bool = False) -> torch.Tensor:
        """[N, T] transcript ids (CPU; filled with the end token after it), sampled with
        ``options.sampling`` or greedy."""
        raise NotImplementedError

    # -- sampling --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, prompts: list[Any], n: int, columns: dict[str, list[Any]] | None = None
                 ) -> Rollout:
        """``n`` sampled transcripts per prompt row (groups contiguous), CPU tensors."""
        columns = columns or {}
        prompt_ids, prompt_mask, extras = self._encode(prompts, n, columns)
        was_training = self.model.training
        self.model.eval()
        try:
            ids = self._sample(prompt_ids, prompt_mask, extras)
            return self._rollout(prompts, n, columns, prompt_ids, prompt_mask, ids, extras)
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def transcribe(self, prompts: list[Any], columns: dict[str, list[Any]] | None = None,
                   batch_size: int = 64) -> list[str]:
        """Greedy transcripts (one per prompt row, special tokens dropped), in batches."""
        columns = columns or {}
        was_training = self.model.training
        self.model.eval()
        texts: list[str] = []
        try:
            for start in range(0, len(prompts), batch_size):
                part = slice(start, start + batch_size)
                cols = {k: v[part] for k, v in columns.items()}
                prompt_ids, prompt_mask, extras = self._encode(prompts[part], 1, cols)
                ids = self._sample(prompt_ids, prompt_mask, extras, greedy=True)
                mask, _ = asr.completion_mask(ids, self.eos_token_id)
                ids = torch.where(mask.bool(), ids, torch.full_like(ids, self.eos_token_id))
                texts += [t.strip() for t in
                          self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        finally:
            self.model.train(was_training)
        return texts

    def teacher_forced_logits(self, rollout: Rollout) -> torch.Tensor:
        """[N, T, V] the trainable model's logits at each completion position (suppressed
        tokens masked, divided by the sampling temperature), with gradients."""
        return self._logits(self.model, rollout)

    def reference_rollout(self, prompts: list[Any], columns: dict[str, list[Any]]) -> Rollout:
        """A rollout whose completions are the rows' reference transcripts (``text_column``,
        tokenised, plus the end token; ``old_logp`` left at 0): ``-log_probs`` of it is the
        supervised (teacher-forced) loss, in nats per token where the mask is 1 (at the
        sampling temperature)."""
        texts = columns.get(self.asr.text_column)
        if texts is None:
            raise ValueError(f"the rows have no {self.asr.text_column!r} column")
        targets = [self.tokenizer(str(t), add_special_tokens=False)["input_ids"]
                   + [self.eos_token_id] for t in texts]
        ids = torch.full((len(targets), max(map(len, targets))), self.eos_token_id,
                         dtype=torch.long)
        for r, t in enumerate(targets):
            ids[r, :len(t)] = torch.tensor(t)
        prompt_ids, prompt_mask, extras = self._encode(prompts, 1, columns)
        return self._rollout(prompts, 1, columns, prompt_ids, prompt_mask, ids, extras,
                             score=False)

    def _rollout(self, prompts: list[Any], n: int, columns: dict[str, list[Any]],
                 prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, ids: torch.Tensor,
                 extras: dict[str, list[Any]], score: bool = True) -> Rollout:
        """The rollout of sampled ``ids`` [N, T] (CPU): masked after the end token and padded,
        decoded transcripts, columns repeated per completion (``reference`` from the text
        column), ``old_logp`` scored on the same inputs (CPU; zeros unless ``score``)."""
        mask, truncated = asr.completion_mask(ids, self.eos_token_id)
        ids = torch.where(mask.bool(), ids, torch.full_like(ids, self.pad_token_id))
        texts = [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        cols = {k: [v for v in vals for _ in range(n)] for k, vals in columns.items()}
        if "reference" not in cols and self.asr.text_column in cols:
            cols["reference"] = list(cols[self.asr.text_column])
        rollout = Rollout([p for p in prompts for _ in range(n)], prompt_ids, prompt_mask, ids,
                          mask, torch.zeros_like(mask), texts, truncated, cols, extras)
        if score:
            rollout.old_logp = self.log_probs(rollout, grad=False).cpu()
        return rollout


def build_asr_policy(spec: str, adapter_options: dict[str, Any], max_new_tokens: int = 16,
                     trust_remote_code: bool = False) -> AsrPolicy:
    """The ASR adapter for ``spec`` without a reference (for the ``asr_finetune`` and
    ``asr_eval`` stages): ``asr_whisper`` for a Whisper checkpoint (``config.json`` model type
    ``whisper``), else ``asr_audio_llm``. ``adapter_options`` are given to it where its
    options have the field (e.g. ``language`` to Whisper, ``prompt`` to an audio-LLM)."""
    from transformers import AutoConfig

    from rlhf.models.loading import _load, resolve_model_path
    from rlhf.policies import POLICIES
    from rlhf.policies.text import TextPolicyOptions

    path = resolve_model_path(spec)
    config = _load("model config", spec, path, lambda: AutoConfig.from_pretrained(
        path, trust_remote_code=trust_remote_code))
    name = "asr_whisper" if config.model_type == "whisper" else "asr_audio_llm"
    cls = POLICIES.get(name)
    fields = cls.Options.model_fields
    options = TextPolicyOptions(
        model=spec, adapter=name, trust_remote_code=trust_remote_code,
        adapter_options={k: v for k, v in adapter_options.items() if k in fields},
        sampling={"max_new_tokens": max_new_tokens})
    return cls(spec, options, need_reference=False)


def stage_asr_policy(spec: str, opts: Any, cached_clips: int) -> AsrPolicy:
    """:func:`build_asr_policy` for the ``asr_finetune`` / ``asr_eval`` options ``opts``
    (Whisper's ``language`` / ``task``, an audio-LLM's ``prompt``, ``trust_remote_code``,
    ``max_new_tokens`` if any), caching ``cached_clips`` clips; rows are passed to it with the
    columns ``audio`` and ``text``."""
    adapter_options = {"audio_column": "audio", "text_column": "text", "language": opts.language,
                       "task": opts.task, "feature_cache": cached_clips}
    if opts.prompt is not None:
        adapter_options["prompt"] = opts.prompt
    return build_asr_policy(spec, adapter_options, getattr(opts, "max_new_tokens", 16),
                            opts.trust_remote_code)
