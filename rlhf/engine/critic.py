"""PPO's critic: a causal-LM backbone (its own copy) with a scalar value head per token."""

from __future__ import annotations

import torch
from torch import nn

from rlhf.policies.base import Rollout


class ValueModel(nn.Module):
    """V(s_t) for every completion position: [N, T] (masked positions are 0)."""

    def __init__(self, backbone: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_spec(cls, spec: str, trust_remote_code: bool = False) -> "ValueModel":
        from rlhf.models import load_causal_lm

        lm = load_causal_lm(spec, trust_remote_code)
        return cls(lm.get_decoder() if hasattr(lm, "get_decoder") else lm.model,
                   lm.config.hidden_size)

    def forward(self, rollout: Rollout) -> torch.Tensor:
        """[N, T] values on the critic's device (the rollout may be on the CPU)."""
        rollout = rollout.to(self.head.weight.device)
        ids = torch.cat([rollout.prompt_ids, rollout.completion_ids], dim=1)
        attn = torch.cat([rollout.prompt_mask, torch.ones_like(rollout.completion_ids)], dim=1)
        position_ids = (attn.cumsum(dim=1) - 1).clamp(min=0)
        hidden = self.backbone(input_ids=ids, attention_mask=attn,
                               position_ids=position_ids).last_hidden_state
        p = rollout.prompt_ids.shape[1]
        # the value of the state before emitting completion token t: hidden state at t - 1
        values = self.head(hidden[:, p - 1:-1, :].float()).squeeze(-1)
        return values * rollout.completion_mask
