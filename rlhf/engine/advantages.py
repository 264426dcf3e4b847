"""Advantage estimators: GAE for PPO, group-relative advantages for GRPO / DAPO / Dr.GRPO, RLOO.

All functions are pure, return new tensors and never carry gradient (advantages are targets,
not functions of the parameters being optimised).

- :func:`gae`: generalised advantage estimation (Schulman et al. 2016, arXiv 1506.02438), as
  used by PPO for RLHF (Ziegler et al. 2019, arXiv 1909.08593). Per-token ``[B, T]``.
- :func:`group_advantages`: one scalar reward per completion, completions of the same prompt
  contiguous. ``scale="group"`` is GRPO (Shao et al. 2024, arXiv 2402.03300) and DAPO (Yu et al.
  2025, arXiv 2503.14476); ``scale="none"`` is Dr.GRPO (Liu et al. 2025, arXiv 2503.20783);
  ``scale="batch"`` divides by the batch std instead of the group std (TRL's
  ``scale_rewards="batch"``).
- :func:`rloo_advantages`: REINFORCE leave-one-out baseline (Ahmadian et al. 2024,
  arXiv 2402.14740).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["gae", "group_advantages", "reshape_groups", "rloo_advantages", "SCALES"]


# --------------------------------------------------------------------------------------------
# GAE
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def gae(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over the completion tokens of each row.

    Formula (Schulman et al. 2016; PPO for RLHF, Ziegler et al. 2019)::

        delta_t = r_t + gamma * V_{t+1} - V_t
        A_t     = sum_l (gamma * lam)^l * delta_{t+l}      (computed backwards)
        R_t     = A_t + V_t                                  (value targets, "returns")

    Only positions where ``mask`` is non-zero take part: masked positions (left or right
    padding, prompt tokens) are skipped, so ``V_{t+1}`` is the value at the next *valid*
    position of the row, and 0 after the row's last valid token (the episode terminates there).
    A left-padded or right-padded row therefore gives exactly the same numbers at its valid
    positions as the unpadded row. The mask need not be contiguous.

    Args:
        rewards: ``[B, T]`` per-token rewards (for RLHF typically the reward-model score on the
            last completion token plus a per-token KL penalty). Values at masked positions are
            ignored (they may even be NaN).
        values: ``[B, T]`` critic values ``V_t``; ignored at masked positions.
        mask: ``[B, T]`` 0/1 (float or bool) mask of completion tokens.
        gamma: discount, in ``[0, 1]``.
        lam: GAE lambda, in ``[0, 1]``. ``lam=1`` gives Monte-Carlo returns minus values;
            ``lam=0`` gives the one-step TD error.

    Returns:
        ``(advantages, returns)``, both ``[B, T]`` in the dtype of ``values``, 0 where ``mask``
        is 0, detached from any graph.
    """
    _check_2d_same_shape(rewards=rewards, values=values, mask=mask)
    for name, x in (("gamma", gamma), ("lam", lam)):
        if not 0.0 <= float(x) <= 1.0:
            raise ValueError(f"gae: {name} must be in [0, 1], got {x}")
    values = values.detach()
    rewards = rewards.detach().to(values.dtype)
    valid = mask.detach() != 0
    batch, length = values.shape
    advantages = torch.zeros_like(values)
    zero = values.new_zeros(batch)
    next_value, next_adv = zero, zero
    for t in range(length - 1, -1, -1):
        ok = valid[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv = delta + gamma * lam * next_adv
        advantages[:, t] = torch.where(ok, adv, zero)
        next_value = torch.where(ok, values[:, t], next_value)
        next_adv = torch.where(ok, adv, next_adv)
    returns = torch.where(valid, advantages + values, torch.zeros_like(values))
    return advantages, returns


# --------------------------------------------------------------------------------------------
# Group-relative advantages
# --------------------------------------------------------------------------------------------


def reshape_groups(rewards: Tensor, group_size: int, *, who: str = "rewards") -> Tensor:
    """View a flat ``[N]`` reward vector as ``[N // group_size, group_size]``.

    Groups are contiguous: rows ``0..G-1`` are the completions of the first prompt, and so on.
    Raises ``ValueError`` if ``rewards`` is not 1-D, ``group_size < 1`` or ``N`` is not
    divisible by ``group_size``. ``who`` names the caller in error messages.
    """
    rewards = torch.as_tensor(rewards)
    if rewards.dim() != 1:
        raise ValueError(f"{who}: rewards must be 1-D [N], got shape {tuple(rewards.shape)}")
    if int(group_size) != group_size or group_size < 1:
        raise ValueError(f"{who}: group_size must be a positive integer, got {group_size!r}")
    n = rewards.numel()
    if n % group_size:
        raise ValueError(
            f"{who}: {n} rewards cannot be split into groups of {group_size} "
            f"({n} is not divisible by {group_size}); completions of one prompt must be "
            "contiguous and every prompt must have exactly group_size completions"
        )
    return rewards.reshape(n // group_size, group_size)


def _divide_by_group_std(centred: Tensor, grouped: Tensor, eps: float) -> Tensor:
    """GRPO / DAPO: divide by the unbiased std of each group, plus ``eps``."""
    if grouped.shape[1] == 1:  # std of one sample is NaN in torch; its advantage is 0 anyway
        return torch.zeros_like(centred)
    return centred / (grouped.std(dim=1, keepdim=True) + eps)


def _divide_by_batch_std(centred: Tensor, grouped: Tensor, eps: float) -> Tensor:
    """Group mean baseline, batch-wide unbiased std scale (TRL ``scale_rewards="batch"``)."""
    if grouped.numel() == 1:  # std of one sample is NaN; its centred reward is 0
        return torch.zeros_like(centred)
    return centred / (grouped.std() + eps)


def _no_scale(centred: Tensor, grouped: Tensor, eps: float) -> Tensor:
    """Dr.GRPO: mean baseline only, no std division (and no eps)."""
    return centred


SCALES: dict[str, Callable[[Tensor, Tensor, float], Tensor]] = {
    "group": _divide_by_group_std,
    "batch": _divide_by_batch_std,
    "none": _no_scale,
}
"""How :func:`group_advantages` scales the centred rewards, by name."""


@torch.no_grad()
def group_advantages(
    rewards: Tensor, group_size: int, scale: str = "group", eps: float = 1e-4
) -> Tensor:
    """Group-relative advantages: each reward minus its group's mean, optionally scaled.

    Formula (GRPO, Shao et al. 2024; DAPO, Yu et al. 2025, eq. for A_i)::

        A_i = (R_i - mean_g(R)) / (std_g(R) + eps)     scale="group"  (GRPO, DAPO)
        A_i = (R_i - mean_g(R)) / (std_batch(R) + eps) scale="batch"
        A_i =  R_i - mean_g(R)                          scale="none"   (Dr.GRPO; no eps)

    ``std`` is the unbiased (Bessel-corrected, ``N - 1``) standard deviation, torch's default
    and what TRL and verl compute. A group whose rewards are all equal gets ``A = 0``
    (``0 / (0 + eps)``). A group of size 1 has an undefined (NaN) unbiased std; under
    ``"group"`` its advantage is defined as 0 (it is 0 under every scale, since the reward
    equals its own mean). Likewise under ``"batch"`` when ``N == 1``.

    Args:
        rewards: ``[N]`` one scalar reward per completion, groups contiguous.
        group_size: completions per prompt ``G``; ``N`` must be divisible by it.
        scale: ``"group"``, ``"batch"`` or ``"none"``.
        eps: added to the std before dividing (unused for ``"none"``).

    Returns:
        ``[N]`` advantages, detached, floating point (integer rewards are cast to float32).
    """
    if scale not in SCALES:
        raise ValueError(
            f"group_advantages: unknown scale {scale!r}; choose one of {sorted(SCALES)}"
        )
    grouped = _as_float(reshape_groups(rewards, group_size, who="group_advantages")).detach()
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    return SCALES[scale](centred, grouped, eps).reshape(-1)


@torch.no_grad()
def rloo_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """REINFORCE leave-one-out advantages (RLOO; Ahmadian et al. 2024, arXiv 2402.14740).

    Formula, within each group of ``G`` completions of the same prompt::

        A_i = R_i - (1 / (G - 1)) * sum_{j != i} R_j   =   G / (G - 1) * (R_i - mean(R))

    Args:
        rewards: ``[N]`` one scalar reward per completion, groups contiguous.
        group_size: ``G >= 2`` (the baseline needs at least one other sample).

    Returns:
        ``[N]`` advantages, detached, floating point.
    """
    if int(group_size) == group_size and group_size < 2:
        raise ValueError(f"rloo_advantages: group_size must be >= 2, got {group_size}")
    grouped = _as_float(reshape_groups(rewards, group_size, who="rloo_advantages")).detach()
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - others).reshape(-1)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _as_float(x: Tensor) -> Tensor:
    return x if x.is_floating_point() else x.to(torch.float32)


def _check_2d_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    first = next(iter(shapes.values()))
    if len(first) != 2 or any(s != first for s in shapes.values()):
        raise ValueError(f"expected [batch, time] tensors of one shape, got {shapes}")
