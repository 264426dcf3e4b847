"""Text policy adapter: any Hugging Face causal LM, text or chat prompts, LoRA optional.

Log-probabilities are computed from ``logits / temperature`` (the distribution that was sampled),
with position ids derived from the attention mask so left-padded prompts score exactly as in
generation.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhf.models.lora import LoraOptions
from rlhf.policies.base import LogitsScoring, ModelPlacement, Rollout


class SamplingOptions(BaseModel):
    """How completions are sampled."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(32, ge=1)
    """Length cap of a completion, in tokens (a completion that hits it is "truncated")."""
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    """0 = no top-k filtering."""


class TextPolicyOptions(BaseModel):
    """The policy of an RL stage."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str
    """Hub id, local path, ``tiny:lm`` or ``@stage/model``."""
    adapter: str = "text"
    """Policy adapter (:data:`rlhf.policies.POLICIES`): ``text`` (completions are text),
    ``espeak_prosody`` (control tokens rendered as speech by eSpeak NG), or ``module:Class``."""
    adapter_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the adapter, checked against its ``Options`` model (``text`` takes none)."""
    lora: LoraOptions | None = None
    """Train LoRA adapters; the reference is then the base with adapters disabled."""
    trust_remote_code: bool = False
    sampling: SamplingOptions = SamplingOptions()

    @model_validator(mode="after")
    def _adapter_known(self) -> "TextPolicyOptions":
        from rlhf.policies import check_adapter

        check_adapter(self.adapter, self.adapter_options)
        return self


MASKED = -1e9
"""Score-time logit of a token outside an adapter's allowed set (finite: 0 * it stays 0)."""


class _AllowedOnly:
    """Logits processor for ``generate``: -inf outside ``allowed(1, step)[0]`` at each step
    (``step`` counts completion tokens; the first call sees the left-padded prompt)."""

    def __init__(self, allowed: Any) -> None:
        self.allowed, self.start = allowed, None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.start is None:
            self.start = input_ids.shape[1]
        mask = self.allowed(1, input_ids.shape[1] - self.start)[0, :scores.shape[-1]]
        return scores.masked_fill(~mask.to(scores.device), float("-inf"))


class TextPolicy(ModelPlacement, LogitsScoring):
    """A causal LM as a policy. ``need_reference`` keeps a frozen reference for KL terms."""

    def __init__(self, spec: str, options: TextPolicyOptions, need_reference: bool) -> None:
        from rlhf.models import apply_lora, load_causal_lm, load_tokenizer

        self.options = options
        self.tokenizer = load_tokenizer(spec, options.trust_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = self._prepare(load_causal_lm(spec, options.trust_remote_code))
        self.uses_lora = options.lora is not None
        self.reference_model = None
        if need_reference and not self.uses_lora:
            self.reference_model = copy.deepcopy(model).eval().requires_grad_(False)
        self.model = apply_lora(model, options.lora, "CAUSAL_LM") if self.uses_lora else model
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.eos_token_id = int(self.tokenizer.eos_token_id)

    def _prepare(self, model: Any) -> Any:
        """Hook for adapters: adjust the loaded model and ``self.tokenizer`` (e.g. add tokens)
        before the reference copy and LoRA are made."""
        return model

    def _allowed(self, length: int, start: int = 0) -> torch.Tensor | None:
        """Hook for adapters that restrict the vocabulary: bool ``[length, V]``, the tokens
        allowed at completion positions ``start .. start + length - 1`` (``None``: all). Sampling
        and scoring both use it, so the policy scores the distribution it samples from."""
        return None

    def _generate_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of ``model.generate``: the :meth:`_allowed` restriction."""
        if self._allowed(1) is None:
            return {}
        from transformers import LogitsProcessorList

        return {"logits_processor": LogitsProcessorList([_AllowedOnly(self._allowed)])}

    # -- prompts ---------------------------------------------------------------------------------
    def prompt_text(self, prompt: Any) -> str:
        if isinstance(prompt, list):  # chat messages
            return self.tokenizer.apply_chat_template(prompt, tokenize=False,
                                                      add_generation_prompt=True)
        return str(prompt)

    def encode_prompts(self, prompts: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer([self.prompt_text(p) for p in prompts], return_tensors="pt",
                             padding=True, add_special_tokens=False)
        return enc["input_ids"], enc["attention_mask"]

    # -- sampling --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, prompts: list[Any], n: int, columns: dict[str, list[Any]] | None = None
                 ) -> Rollout:
        expanded = [p for p in prompts for _ in range(n)]
        prompt_ids, prompt_mask = self.encode_prompts(expanded)
        s = self.options.sampling
        was_training = self.model.training
        self.model.eval()
        device = self.device
        out = self.model.generate(
            input_ids=prompt_ids.to(device), attention_mask=prompt_mask.to(device),
            do_sample=True,
            temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
            max_new_tokens=s.max_new_tokens, pad_token_id=self.pad_token_id,
            eos_token_id=self.eos_token_id, **self._generate_kwargs())
        completion_ids = out[:, prompt_ids.shape[1]:].cpu()
        is_eos = completion_ids == self.eos_token_id
        has_eos = is_eos.any(dim=1)
        first_eos = torch.where(has_eos, is_eos.float().argmax(dim=1),
                                torch.full_like(has_eos, completion_ids.shape[1], dtype=torch.long))
        positions = torch.arange(completion_ids.shape[1]).unsqueeze(0)
        mask = (positions <= first_eos.unsqueeze(1)).float()
        completion_ids = torch.where(mask.bool(), completion_ids,
                                     torch.full_like(completion_ids, self.pad_token_id))
        texts = self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        cols = {k: [v for v in vals for _ in range(n)] for k, vals in (columns or {}).items()}
        rollout = Rollout(expanded, prompt_ids, prompt_mask, completion_ids, mask,
                          torch.zeros_like(mask), texts, ~has_eos, cols)
        rollout.old_logp = self.log_probs(rollout, grad=False).cpu()
        self.model.train(was_training)
        return rollout

    # -- scoring ---------------------------------------------------------------------------------
    def _logits(self, model: Any, rollout: Rollout) -> torch.Tensor:
        rollout = rollout.to(next(model.parameters()).device)
        ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], dim=1)
        # completion positions after the end token come later in a causal LM: they cannot change
        # the valid positions' logits, so they are simply attended (as during generation)
        attn = torch.cat([rollout.prompt_mask, torch.ones_like(rollout.completion_ids)], dim=1)
        position_ids = (attn.cumsum(dim=1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=attn, position_ids=position_ids).logits
        p = rollout.prompt_ids.shape[1]
        logits = logits[:, p - 1:-1, :] / self.options.sampling.temperature
        allowed = self._allowed(logits.shape[1])
        if allowed is not None:
            logits = logits.masked_fill(~allowed[:, :logits.shape[-1]].to(logits.device), MASKED)
        return logits

    def save(self, path: Path) -> None:
        from rlhf.models import save_model

        save_model(self.model, self.tokenizer, path, merge=True)
