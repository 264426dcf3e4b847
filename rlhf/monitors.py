"""Reward-hacking monitors, checked every RL step.

Each monitor reads the step's metrics and, when it crosses its threshold, produces a warning
(printed once per monitor and logged as ``monitor/<name> = 1``):

- ``kl_growth``: KL to the reference above ``kl_max`` nats per sequence;
- ``entropy_collapse``: mean token entropy below ``entropy_floor`` × its first value;
- ``length_drift``: mean completion length changed by more than ``length_drift`` × its first
  value (either way);
- ``zero_std_groups``: more than ``zero_std_max`` of the groups had identical rewards (no signal);
- ``order_copying``: (rerank) share of outputs equal to the input order above ``copy_max``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MonitorThresholds:
    kl_max: float = 10.0
    entropy_floor: float = 0.2
    length_drift: float = 0.5
    zero_std_max: float = 0.9
    copy_max: float = 0.5


@dataclass
class Monitors:
    thresholds: MonitorThresholds = field(default_factory=MonitorThresholds)
    first: dict[str, float] = field(default_factory=dict)
    warned: set[str] = field(default_factory=set)

    def check(self, metrics: dict[str, float]) -> tuple[dict[str, float], list[str]]:
        """Return (``monitor/*`` flags, new warnings) for one step's metrics."""
        t = self.thresholds
        for key in ("train/entropy", "train/completion_length"):
            if key in metrics and key not in self.first:
                self.first[key] = metrics[key]
        flags: dict[str, tuple[bool, str]] = {}
        if "train/kl_ref" in metrics:
            kl = metrics["train/kl_ref"]
            flags["kl_growth"] = (kl > t.kl_max, f"KL to the reference is {kl:.2f} nats "
                                                 f"(> {t.kl_max}): the policy drifts far")
        if "train/entropy" in metrics and self.first.get("train/entropy", 0) > 0:
            ent, first = metrics["train/entropy"], self.first["train/entropy"]
            flags["entropy_collapse"] = (ent < t.entropy_floor * first,
                                         f"entropy fell to {ent:.3f} from {first:.3f}: "
                                         "the policy is collapsing")
        if "train/completion_length" in metrics and self.first.get("train/completion_length"):
            length, first = metrics["train/completion_length"], self.first[
                "train/completion_length"]
            flags["length_drift"] = (abs(length - first) > t.length_drift * first,
                                     f"completion length drifted to {length:.1f} from "
                                     f"{first:.1f} tokens")
        if "train/zero_std_groups" in metrics:
            frac = metrics["train/zero_std_groups"]
            flags["zero_std_groups"] = (frac > t.zero_std_max,
                                        f"{frac:.0%} of groups have identical rewards: "
                                        "little learning signal")
        if "train/order_copy_rate" in metrics:
            rate = metrics["train/order_copy_rate"]
            flags["order_copying"] = (rate > t.copy_max,
                                      f"{rate:.0%} of outputs copy the input order")
        values = {f"monitor/{k}": float(on) for k, (on, _) in flags.items()}
        new = [msg for k, (on, msg) in flags.items() if on and k not in self.warned]
        self.warned |= {k for k, (on, _) in flags.items() if on}
        return values, new

    def state_dict(self) -> dict[str, Any]:
        return {"first": self.first, "warned": sorted(self.warned)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.first = dict(state.get("first", {}))
        self.warned = set(state.get("warned", []))
