"""The policy-adapter protocol and the :class:`Rollout` it produces.

Shapes: N = completions in the rollout (prompts × group size, groups contiguous), P = prompt
tokens (left-padded), T = completion tokens (right-padded). ``completion_mask`` is a 0/1 float
mask over the T completion positions (the EOS token counts as part of the completion).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import torch


@dataclass
class Rollout:
    """A batch of sampled completions with everything the update needs."""

    prompts: list[Any]
    """[N] the prompt of each completion (repeated within a group)."""
    prompt_ids: torch.Tensor
    """[N, P] left-padded prompt token ids."""
    prompt_mask: torch.Tensor
    """[N, P] 1 for prompt tokens, 0 for padding."""
    completion_ids: torch.Tensor
    """[N, T] completion token ids, right-padded."""
    completion_mask: torch.Tensor
    """[N, T] float 0/1 over completion tokens."""
    old_logp: torch.Tensor
    """[N, T] log-probabilities of the completion tokens under the sampling policy."""
    completions: list[Any]
    """[N] decoded outputs (text; or a waveform dict for audio adapters)."""
    truncated: torch.Tensor
    """[N] bool: the completion hit ``max_new_tokens`` without an end token."""
    columns: dict[str, list[Any]] = field(default_factory=dict)
    """Dataset columns per completion (for rewards), e.g. ``reference``."""
    extras: dict[str, list[Any]] = field(default_factory=dict)
    """Adapter outputs for rewards (e.g. ``waveform``, ``sample_rate``)."""

    def __len__(self) -> int:
        return len(self.completions)

    def token_lists(self) -> list[list[int]]:
        """Completion token ids per row without padding (``completion_ids`` for rewards)."""
        lengths = self.completion_mask.sum(dim=1).long().tolist()
        return [row[:n] for row, n in zip(self.completion_ids.tolist(), lengths, strict=True)]

    def to(self, device: torch.device | str) -> Rollout:
        """A copy whose tensor fields live on ``device`` (lists and dicts are shared)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, v in values.items():
            if isinstance(v, torch.Tensor):
                values[name] = v.to(device)
        return Rollout(**values)

    def select(self, index: list[int] | torch.Tensor) -> Rollout:
        """The rows at ``index`` (tensors and lists alike)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        picked = [int(i) for i in idx.tolist()]
        values: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                values[f.name] = v[idx]
            elif isinstance(v, dict):
                values[f.name] = {k: [col[i] for i in picked] for k, col in v.items()}
            else:
                values[f.name] = [v[i] for i in picked]
        return Rollout(**values)

    @staticmethod
    def concat(parts: list[Rollout], pad_token_id: int = 0) -> Rollout:
        """Join rollouts, padding prompts on the left and completions on the right."""
        def pad(ts: list[torch.Tensor], left: bool, value: float) -> torch.Tensor:
            width = max(t.shape[1] for t in ts)
            out = []
            for t in ts:
                extra = width - t.shape[1]
                filler = torch.full((t.shape[0], extra), value, dtype=t.dtype)
                out.append(torch.cat([filler, t] if left else [t, filler], dim=1))
            return torch.cat(out, dim=0)

        first = parts[0]
        return Rollout(
            prompts=[p for r in parts for p in r.prompts],
            prompt_ids=pad([r.prompt_ids for r in parts], True, pad_token_id),
            prompt_mask=pad([r.prompt_mask for r in parts], True, 0),
            completion_ids=pad([r.completion_ids for r in parts], False, pad_token_id),
            completion_mask=pad([r.completion_mask for r in parts], False, 0.0),
            old_logp=pad([r.old_logp for r in parts], False, 0.0),
            completions=[c for r in parts for c in r.completions],
            truncated=torch.cat([r.truncated for r in parts]),
            columns={k: [x for r in parts for x in r.columns.get(k, [None] * len(r))]
                     for k in first.columns},
            extras={k: [x for r in parts for x in r.extras.get(k, [None] * len(r))]
                    for k in first.extras},
        )


class PolicyAdapter(Protocol):
    """What the engine needs from a policy, whatever its modality."""

    model: torch.nn.Module
    """The trainable module (its parameters go to the optimiser)."""
    pad_token_id: int

    def generate(self, prompts: list[Any], n: int, columns: dict[str, list[Any]] | None = None
                 ) -> Rollout:
        """Sample ``n`` completions per prompt (groups contiguous), without gradients."""

    def log_probs(self, rollout: Rollout, reference: bool = False) -> torch.Tensor:
        """[N, T] log-probs of the rollout's completion tokens; with gradients unless
        ``reference`` (the frozen reference policy, no gradients)."""

    def entropy(self, rollout: Rollout) -> torch.Tensor:
        """[N, T] per-token entropy of the current policy (no gradients), for monitors."""

    def save(self, path: Path) -> None:
        """Save the policy (weights with safetensors, tokenizer/processor) to ``path``."""

    # Optional: ``to(device)`` moves the model (and reference) to an accelerator. The engine
    # then keeps rollouts on the CPU and expects ``generate`` to return CPU tensors and
    # ``log_probs`` to accept a CPU rollout (its result may live on the model's device).
    # Adapters without ``to`` train on the CPU (see :func:`rlhf.engine.device.place`).


class ModelPlacement:
    """``device`` / ``to(device)`` for adapters holding ``model`` and ``reference_model`` (a
    frozen copy, or None): the engine's placement hook (:func:`rlhf.engine.device.place`).
    Adapters using it must accept CPU rollouts and return CPU rollouts from ``generate``."""

    model: Any
    reference_model: Any

    @property
    def device(self) -> torch.device:
        """Where the trainable model's parameters live."""
        return next(self.model.parameters()).device

    def to(self, device: torch.device | str) -> Any:
        """Move the model and the frozen reference to ``device`` (rollouts stay on the CPU)."""
        self.model.to(device)
        if self.reference_model is not None:
            self.reference_model.to(device)
        return self


class LogitsScoring:
    """``log_probs`` / ``entropy`` / the frozen reference for adapters that define
    ``_logits(model, rollout) -> [N, T, V]`` (already divided by the sampling temperature).

    The adapter sets ``model``, ``reference_model`` (a frozen copy, or None) and ``uses_lora``
    (the reference is then the model with its adapters disabled)."""

    model: Any
    reference_model: Any
    uses_lora: bool

    def _logits(self, model: Any, rollout: Rollout) -> torch.Tensor:
        raise NotImplementedError

    @contextlib.contextmanager
    def _reference(self) -> Iterator[Any]:
        if self.uses_lora:
            with self.model.disable_adapter():
                yield self.model
        elif self.reference_model is not None:
            yield self.reference_model
        else:
            raise RuntimeError("this policy was built without a reference model")

    def log_probs(self, rollout: Rollout, reference: bool = False, grad: bool = True
                  ) -> torch.Tensor:
        """[N, T] log-probs of the completion tokens (masked positions are 0), on the model's
        device (the CPU unless the policy was moved to an accelerator)."""
        def gather(logits: torch.Tensor) -> torch.Tensor:
            ids = rollout.completion_ids.to(logits.device).unsqueeze(-1)
            return torch.log_softmax(logits.float(), dim=-1).gather(-1, ids).squeeze(-1)

        if reference:
            with torch.no_grad(), self._reference() as ref:
                logp = gather(self._logits(ref, rollout))
        else:
            with torch.set_grad_enabled(grad):
                logp = gather(self._logits(self.model, rollout))
        return logp * rollout.completion_mask.to(logp.device)

    @torch.no_grad()
    def entropy(self, rollout: Rollout) -> torch.Tensor:
        """[N, T] per-token entropy of the current policy, on the CPU."""
        logp = torch.log_softmax(self._logits(self.model, rollout).float(), dim=-1)
        return (-(logp.exp() * logp).sum(-1)).cpu() * rollout.completion_mask
