"""Where an RL stage trains: the ``device:`` option of ``grpo`` / ``dapo`` / ``ppo``.

Rollouts, rewards and advantages stay on the CPU (they are small and rewards run in worker
processes); the policy, its frozen reference and PPO's critic move to the chosen device, and each
micro-batch is moved there for the forward and backward pass. On a machine without CUDA every
setting but ``cuda`` means the CPU, so CPU results are unchanged.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from rlhf.errors import UserError


def resolve(setting: str) -> torch.device:
    """``auto``: this process's GPU (``LOCAL_RANK``) when CUDA is present, else the CPU;
    ``cpu``; ``cuda`` (an error without CUDA)."""
    if setting == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if setting == "cuda":
        raise UserError("device: cuda was asked for but CUDA is not available on this machine "
                        "(torch.cuda.is_available() is False); use device: auto or cpu")
    return torch.device("cpu")


def place(policy: Any, critic: torch.nn.Module | None, setting: str) -> torch.device:
    """Move ``policy`` (through its ``to``) and ``critic`` to the device of ``setting``.

    An adapter without ``to`` trains on the CPU: with ``auto`` silently, with ``cuda`` it is an
    error naming the adapter."""
    device = resolve(setting)
    if device.type == "cpu":
        return device
    if not callable(getattr(policy, "to", None)):
        if setting == "cuda":
            raise UserError(f"policy adapter {type(policy).__name__} cannot be placed on a GPU "
                            "(it has no to(device) method); use device: cpu")
        return torch.device("cpu")
    policy.to(device)
    if critic is not None:
        critic.to(device)
    return device
