"""KL coefficient controllers for the per-token KL penalty of PPO-style RLHF.

The reward the policy sees is ``score - beta * KL`` per token (Ziegler et al. 2019, "Fine-Tuning
Language Models from Human Preferences", arXiv 1909.08593, section 2.2). ``beta`` is either fixed
(:class:`FixedKLController`) or adapted towards a target KL (:class:`AdaptiveKLController`, the
same paper's log-space proportional controller).

Both controllers expose ``.value`` (the current ``beta``), ``update(current_kl, n_steps)``,
``state_dict()`` and ``load_state_dict()`` (plain dicts of python scalars, safe to put in a
checkpoint's JSON or ``torch.save``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["AdaptiveKLController", "FixedKLController", "KLController"]

ERROR_CLIP = 0.2
"""Bound on the proportional error ``current_kl / target - 1`` (Ziegler et al. 2019)."""


class KLController:
    """Common interface: a KL coefficient that may change with each update."""

    kind = "base"
    value: float

    def update(self, current_kl: float, n_steps: int) -> None:
        """Take the KL measured on the latest batch (nats) and the number of samples it covers."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The controller's state as plain python scalars."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` of a controller of the same kind."""
        raise NotImplementedError

    def _check_kind(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state is for a "
                f"{state.get('kind')!r} controller, not {self.kind!r}"
            )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.state_dict().items() if k != "kind")
        return f"{type(self).__name__}({fields})"


class FixedKLController(KLController):
    """A constant KL coefficient ``beta = coef``; :meth:`update` changes nothing."""

    kind = "fixed"

    def __init__(self, coef: float) -> None:
        if coef < 0:
            raise ValueError(f"FixedKLController: coef must be >= 0, got {coef}")
        self.value = float(coef)

    def update(self, current_kl: float, n_steps: int) -> None:
        """No-op (the coefficient is fixed)."""

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_kind(state)
        self.value = float(state["value"])


class AdaptiveKLController(KLController):
    """Adaptive KL coefficient (Ziegler et al. 2019, arXiv 1909.08593, eq. in section 2.2).

    After each batch::

        error = clip(current_kl / target - 1, -0.2, 0.2)
        beta  = beta * (1 + error * n_steps / horizon)

    so ``beta`` grows when the measured KL is above ``target`` and shrinks when it is below, by
    at most 20% per ``horizon`` samples. ``n_steps`` is meant to be small next to ``horizon``
    (one batch against thousands of episodes); an update with ``n_steps >= 5 * horizon`` that
    would make ``beta`` non-positive raises ``ValueError``.

    Args:
        init_coef: initial ``beta`` (> 0; a coefficient of 0 could never grow).
        target: target KL per sequence or per token, in nats, in the same units as the
            ``current_kl`` passed to :meth:`update` (> 0).
        horizon: number of samples (episodes) over which the error is corrected (> 0).
    """

    kind = "adaptive"

    def __init__(self, init_coef: float, target: float, horizon: int) -> None:
        if init_coef <= 0:
            raise ValueError(f"AdaptiveKLController: init_coef must be > 0, got {init_coef}")
        if target <= 0:
            raise ValueError(f"AdaptiveKLController: target must be > 0, got {target}")
        if horizon <= 0:
            raise ValueError(f"AdaptiveKLController: horizon must be > 0, got {horizon}")
        self.value = float(init_coef)
        self.target = float(target)
        self.horizon = int(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Move ``beta`` towards keeping ``current_kl`` (nats) at the target.

        Args:
            current_kl: KL measured on the latest batch, same units as ``target``.
            n_steps: number of samples (episodes) the batch covers (>= 0).
        """
        if n_steps < 0:
            raise ValueError(f"AdaptiveKLController.update: n_steps must be >= 0, got {n_steps}")
        error = min(max(float(current_kl) / self.target - 1.0, -ERROR_CLIP), ERROR_CLIP)
        factor = 1.0 + error * n_steps / self.horizon
        if factor <= 0:
            raise ValueError(
                f"AdaptiveKLController.update: n_steps={n_steps} against horizon={self.horizon} "
                f"would make the coefficient non-positive (factor {factor:g})"
            )
        self.value *= factor

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "value": self.value,
            "target": self.target,
            "horizon": self.horizon,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_kind(state)
        self.value = float(state["value"])
        self.target = float(state["target"])
        self.horizon = int(state["horizon"])
