"""Losses of the on-policy engine: clipped policy loss, KL penalties, clipped value loss.

Tensors are ``[B, T]`` (batch, time) with a 0/1 float mask over completion tokens;
log-probabilities are natural logs of the sampled tokens (nats).

- :func:`policy_loss`: PPO clipped surrogate (Schulman et al. 2017, arXiv 1707.06347) with
  DAPO's decoupled clip range "clip-higher" (Yu et al. 2025, arXiv 2503.14476) and three
  aggregations over tokens: DAPO's token mean, GRPO's per-sequence mean (Shao et al. 2024,
  arXiv 2402.03300) and Dr.GRPO's constant normaliser (Liu et al. 2025, arXiv 2503.20783).
- :func:`kl_penalty`: per-token KL estimators k1 / k2 / k3 (Schulman, "Approximating KL
  divergence", 2020); k3 is GRPO's KL term.
- :func:`value_loss`: PPO clipped value loss (as in OpenAI baselines and Ziegler et al. 2019).
- :func:`masked_mean`, :func:`masked_whiten`: helpers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "AGGREGATIONS",
    "KL_ESTIMATORS",
    "kl_penalty",
    "masked_mean",
    "masked_whiten",
    "policy_loss",
    "value_loss",
]

WHITEN_EPS = 1e-8
"""Added to the variance in :func:`masked_whiten` before the square root."""


# --------------------------------------------------------------------------------------------
# masked helpers
# --------------------------------------------------------------------------------------------


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``x`` over the entries where ``mask`` is non-zero: ``sum(x * m) / sum(m)``.

    Args:
        x: any shape.
        mask: same shape as ``x`` (0/1 float or bool; non-binary floats act as weights).
        dim: reduce over this dimension only; ``None`` reduces over everything (scalar).

    Returns:
        The mean; 0 where the mask has no non-zero entry (instead of NaN), with gradients that
        stay finite. Entries of ``x`` under a zero mask do not affect the value or the gradient
        even if they are NaN or infinite.
    """
    m = mask.to(x.dtype) if x.is_floating_point() else mask.float()
    x = torch.where(m != 0, x, torch.zeros_like(x))
    if dim is None:
        total, count = (x * m).sum(), m.sum()
    else:
        total, count = (x * m).sum(dim), m.sum(dim)
    safe = torch.where(count != 0, count, torch.ones_like(count))
    return torch.where(count != 0, total / safe, torch.zeros_like(total))


def masked_whiten(x: Tensor, mask: Tensor, shift_mean: bool = True) -> Tensor:
    """Whiten ``x`` over its masked entries: ``(x - mean) / sqrt(var + 1e-8)``.

    ``mean`` and ``var`` are taken over all entries where ``mask`` is non-zero (one scalar
    each, over the whole tensor). ``var`` is the *biased* (population, divide-by-n) variance,
    as in the ``whiten`` of OpenAI's lm-human-preferences (Ziegler et al. 2019) and baselines'
    PPO; note that TRL's ``masked_whiten`` applies Bessel's correction, so its result is
    smaller by a factor ``sqrt((n - 1) / n)``. With ``shift_mean=False`` the mean is added back
    (only the scale is normalised), as PPO implementations do for advantages of a critic-free
    setting. Entries where ``mask`` is 0 are set to 0 in the output.

    Args:
        x: any shape, floating point.
        mask: same shape (0/1 float or bool).
        shift_mean: subtract the mean (True) or keep it (False).

    Returns:
        A tensor shaped like ``x``.
    """
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + WHITEN_EPS)
    if not shift_mean:
        out = out + mean
    return torch.where(mask != 0, out, torch.zeros_like(out))


# --------------------------------------------------------------------------------------------
# policy loss
# --------------------------------------------------------------------------------------------


def _token_mean(loss: Tensor, mask: Tensor, max_len: int | None) -> Tensor:
    """DAPO: sum over all masked tokens of the batch / number of masked tokens."""
    return (loss * mask).sum() / mask.sum()


def _seq_mean_token_mean(loss: Tensor, mask: Tensor, max_len: int | None) -> Tensor:
    """GRPO: mean over sequences of each sequence's masked token mean (empty rows excluded)."""
    counts = mask.sum(dim=1)
    has_tokens = counts > 0
    per_seq = (loss * mask).sum(dim=1)[has_tokens] / counts[has_tokens]
    return per_seq.mean()


def _seq_mean_token_sum_norm(loss: Tensor, mask: Tensor, max_len: int | None) -> Tensor:
    """Dr.GRPO: mean over all sequences of (masked token sum / max_len)."""
    assert max_len is not None
    return ((loss * mask).sum(dim=1) / max_len).mean()


AGGREGATIONS: dict[str, Callable[[Tensor, Tensor, int | None], Tensor]] = {
    "token_mean": _token_mean,
    "seq_mean_token_mean": _seq_mean_token_mean,
    "seq_mean_token_sum_norm": _seq_mean_token_sum_norm,
}
"""Loss aggregations of :func:`policy_loss`, by name: ``fn(per_token_loss, mask, max_len)``."""


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    eps_low: float,
    eps_high: float,
    agg: str = "token_mean",
    max_len: int | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped surrogate policy loss with clip-higher and a choice of token aggregation.

    Per token (PPO, Schulman et al. 2017; decoupled ``eps_low`` / ``eps_high`` from DAPO)::

        r_t    = exp(logp_t - old_logp_t)
        loss_t = -min(r_t * A_t, clip(r_t, 1 - eps_low, 1 + eps_high) * A_t)

    Aggregations (``agg``):

    - ``"token_mean"`` (DAPO's token-level loss): ``sum_{i,t} m * loss / sum_{i,t} m``.
    - ``"seq_mean_token_mean"`` (GRPO): ``mean_i (sum_t m * loss / sum_t m)``; sequences with no
      masked token are left out of the mean over sequences.
    - ``"seq_mean_token_sum_norm"`` (Dr.GRPO): ``mean_i (sum_t m * loss / max_len)`` over all
      ``B`` sequences (an empty one contributes 0); ``max_len`` (the generation budget, a
      constant) is required.

    Args:
        logp: ``[B, T]`` log-probs of the sampled tokens under the current policy (with grad).
        old_logp: ``[B, T]`` log-probs under the policy that sampled them (detached here).
        advantages: ``[B]`` (one per sequence, broadcast over time) or ``[B, T]`` (per token);
            detached here.
        mask: ``[B, T]`` 0/1 mask of completion tokens. Values of the other inputs at masked
            positions are ignored, even NaN or infinite ones, in the loss and its gradient.
        eps_low: lower clip range (ratio floor ``1 - eps_low``); DAPO uses 0.2.
        eps_high: upper clip range (ratio ceiling ``1 + eps_high``); DAPO uses 0.28.
        agg: one of :data:`AGGREGATIONS`.
        max_len: normaliser for ``"seq_mean_token_sum_norm"``.

    Returns:
        ``(loss, stats)``: a scalar loss, and python floats computed without grad over the
        masked tokens: ``clip_frac_low`` (fraction with ``A < 0`` and ``r < 1 - eps_low``: the
        clipped branch is active on the low side and the token gets no gradient),
        ``clip_frac_high`` (``A > 0`` and ``r > 1 + eps_high``), ``approx_kl`` (mean of the k3
        estimator of KL(old || new), ``(r - 1) - log r``, in nats), ``ratio_mean`` and
        ``ratio_max``. An all-zero mask gives a loss of 0 that stays in the graph
        (``(logp * 0).sum()``) and all stats 0.
    """
    if agg not in AGGREGATIONS:
        raise ValueError(f"policy_loss: unknown agg {agg!r}; choose one of {sorted(AGGREGATIONS)}")
    if agg == "seq_mean_token_sum_norm" and (max_len is None or max_len <= 0):
        raise ValueError(
            "policy_loss: agg='seq_mean_token_sum_norm' (Dr.GRPO) needs max_len, a positive "
            f"constant such as the maximum completion length; got max_len={max_len!r}"
        )
    if eps_low < 0 or eps_high < 0:
        raise ValueError(f"policy_loss: clip ranges must be >= 0, got {eps_low=}, {eps_high=}")
    adv = _per_token_advantages(advantages, logp)
    if old_logp.shape != logp.shape or mask.shape != logp.shape:
        raise ValueError(
            "policy_loss: logp, old_logp and mask must share one [B, T] shape, got "
            f"{tuple(logp.shape)}, {tuple(old_logp.shape)}, {tuple(mask.shape)}"
        )
    valid = mask != 0
    m = mask.to(logp.dtype)
    zero = torch.zeros_like(logp)
    if not bool(valid.any()):  # (logp * 0).sum(), without letting a NaN in padding through
        return torch.where(valid, logp, zero).sum(), dict.fromkeys(_STAT_NAMES, 0.0)
    log_ratio = torch.where(valid, logp - old_logp.detach(), zero)
    adv = torch.where(valid, adv.detach().to(logp.dtype), zero)
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    per_token = -torch.minimum(ratio * adv, clipped * adv)
    loss = AGGREGATIONS[agg](per_token, m, max_len)
    stats = _policy_stats(log_ratio.detach(), adv, valid, m, eps_low, eps_high)
    return loss, stats


_STAT_NAMES = ("clip_frac_low", "clip_frac_high", "approx_kl", "ratio_mean", "ratio_max")


@torch.no_grad()
def _policy_stats(
    log_ratio: Tensor, adv: Tensor, valid: Tensor, m: Tensor, eps_low: float, eps_high: float
) -> dict[str, float]:
    ratio = torch.exp(log_ratio)
    low = (adv < 0) & (ratio < 1.0 - eps_low)
    high = (adv > 0) & (ratio > 1.0 + eps_high)
    k3 = (ratio - 1.0) - log_ratio
    return {
        "clip_frac_low": float(masked_mean(low.to(m.dtype), m)),
        "clip_frac_high": float(masked_mean(high.to(m.dtype), m)),
        "approx_kl": float(masked_mean(k3, m)),
        "ratio_mean": float(masked_mean(ratio, m)),
        "ratio_max": float(ratio[valid].max()),
    }


def _per_token_advantages(advantages: Tensor, logp: Tensor) -> Tensor:
    """Broadcast ``[B]`` advantages to ``[B, T]``; pass ``[B, T]`` through; check shapes."""
    if logp.dim() != 2:
        raise ValueError(f"policy_loss: logp must be [B, T], got shape {tuple(logp.shape)}")
    if advantages.shape == logp.shape:
        return advantages
    if advantages.shape == logp.shape[:1]:
        return advantages.unsqueeze(-1).expand_as(logp)
    raise ValueError(
        f"policy_loss: advantages must be [B] or [B, T] = {tuple(logp.shape)}, "
        f"got {tuple(advantages.shape)}"
    )


# --------------------------------------------------------------------------------------------
# KL penalty
# --------------------------------------------------------------------------------------------


def _k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    return logp - ref_logp


def _k2(logp: Tensor, ref_logp: Tensor) -> Tensor:
    return 0.5 * (logp - ref_logp) ** 2


def _k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    d = ref_logp - logp
    return torch.expm1(d) - d  # exp(d) - d - 1, accurate for small d


KL_ESTIMATORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"k1": _k1, "k2": _k2, "k3": _k3}
"""Per-token estimators of KL(pi || pi_ref) for tokens sampled from pi, by name."""


def kl_penalty(logp: Tensor, ref_logp: Tensor, kind: str = "k1") -> Tensor:
    """Per-token estimate of KL(pi || pi_ref) from log-probs of tokens sampled from pi.

    Estimators (Schulman, "Approximating KL divergence", 2020), with ``d = ref_logp - logp``::

        k1 = logp - ref_logp                  unbiased, can be negative (PPO-RLHF's penalty)
        k2 = 0.5 * (logp - ref_logp) ** 2     biased, low variance, >= 0
        k3 = exp(d) - d - 1                   unbiased, >= 0 (GRPO's KL term, Shao et al. 2024)

    Args:
        logp: log-probs of the sampled tokens under the policy, any shape (e.g. ``[B, T]``).
        ref_logp: same shape, under the reference policy.
        kind: ``"k1"``, ``"k2"`` or ``"k3"``.

    Returns:
        A tensor shaped like ``logp`` (nats per token); not masked, not reduced. Gradients flow
        through both inputs (detach ``ref_logp`` if the reference is frozen).
    """
    if kind not in KL_ESTIMATORS:
        raise ValueError(
            f"kl_penalty: unknown kind {kind!r}; choose one of {sorted(KL_ESTIMATORS)}"
        )
    if logp.shape != ref_logp.shape:
        raise ValueError(
            f"kl_penalty: shapes differ: logp {tuple(logp.shape)}, ref {tuple(ref_logp.shape)}"
        )
    return KL_ESTIMATORS[kind](logp, ref_logp)


# --------------------------------------------------------------------------------------------
# value loss
# --------------------------------------------------------------------------------------------


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip: float | None,
) -> tuple[Tensor, dict[str, float]]:
    """PPO clipped value loss (OpenAI baselines' PPO2; Ziegler et al. 2019 for RLHF).

    Formula::

        v_clip = old + clamp(values - old, -clip, clip)
        loss   = 0.5 * masked_mean(max((values - returns)^2, (v_clip - returns)^2))

    With ``clip=None`` it is the plain ``0.5 * masked_mean((values - returns)^2)``.

    Args:
        values: ``[B, T]`` current critic values (with grad).
        old_values: ``[B, T]`` critic values at rollout time (detached here).
        returns: ``[B, T]`` value targets, e.g. from :func:`rlhf.engine.advantages.gae`
            (detached here).
        mask: ``[B, T]`` 0/1 mask of completion tokens.
        clip: half-width of the trust region around ``old_values`` (same units as the values),
            or ``None`` for no clipping.

    Returns:
        ``(loss, stats)``: a scalar, and ``{"value_clip_frac": float}``, the fraction of masked
        tokens where the clipped term is strictly larger (it is the one taking effect; 0 when
        ``clip`` is None). An all-zero mask gives a loss of 0 that stays in the graph.
    """
    if not (values.shape == old_values.shape == returns.shape == mask.shape):
        raise ValueError(
            "value_loss: values, old_values, returns and mask must share one shape, got "
            f"{tuple(values.shape)}, {tuple(old_values.shape)}, {tuple(returns.shape)}, "
            f"{tuple(mask.shape)}"
        )
    if clip is not None and clip < 0:
        raise ValueError(f"value_loss: clip must be >= 0 or None, got {clip}")
    valid = mask != 0
    zero = torch.zeros_like(values)
    values = torch.where(valid, values, zero)  # padding (even NaN) gets no value, no gradient
    if not bool(valid.any()):
        return values.sum(), {"value_clip_frac": 0.0}
    m = mask.to(values.dtype)
    returns = torch.where(valid, returns.detach().to(values.dtype), zero)
    old_values = torch.where(valid, old_values.detach().to(values.dtype), zero)
    unclipped = (values - returns) ** 2
    if clip is None:
        return 0.5 * masked_mean(unclipped, m), {"value_clip_frac": 0.0}
    v_clip = old_values + torch.clamp(values - old_values, -clip, clip)
    clipped = (v_clip - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), m)
    with torch.no_grad():
        frac = float(masked_mean((clipped > unclipped).to(m.dtype), m))
    return loss, {"value_clip_frac": frac}
