"""A stage's reward design: several rewards, weights, gates, aggregation and clipping.

Each entry of a ``rewards:`` list is a :class:`rewards.spec.RewardSpec`. Per row:

1. every component is scored (``None`` = not scored; a row that raises is ``None`` and counted);
2. gates: ``gate: {reward: NAME, min: X}`` zeroes the component where reward NAME is below X
   (or could not be scored);
3. aggregation: ``sum`` = Σ weight·value over the components that scored; ``normalize_then_sum``
   first z-normalises each component within its prompt group, (r − mean) / (std + eps) with the
   unbiased std over the group's scored rows (a group of one gives 0);
4. ``clip: [lo, hi]`` bounds the total. A row where no component scored is ``None``.
Per-component values and details are kept for logging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rewards.base import Reward, Scored
from rewards.runner import RewardRunner
from rewards.spec import RewardSpec, build_reward
from rlhf.errors import UserError

Aggregation = Literal["sum", "normalize_then_sum"]


@dataclass
class CompositeResult:
    """Totals per row, plus each component's values/details and its failures."""

    values: list[float | None]
    components: dict[str, list[float | None]]
    details: dict[str, list[dict[str, Any]]]
    errors: dict[str, list[str]] = field(default_factory=dict)

    def unscored(self) -> int:
        return sum(v is None for v in self.values)


def labels_of(specs: Sequence[RewardSpec]) -> list[str]:
    """A unique label per component: its name, or ``name#2``... when a name repeats."""
    seen: dict[str, int] = {}
    out = []
    for spec in specs:
        seen[spec.name] = seen.get(spec.name, 0) + 1
        out.append(spec.name if seen[spec.name] == 1 else f"{spec.name}#{seen[spec.name]}")
    return out


def group_ids(prompts: Sequence[Any], group_size: int | None) -> list[int]:
    """Group index per row: contiguous blocks of ``group_size``, else rows with equal prompts."""
    if group_size:
        return [i // group_size for i in range(len(prompts))]
    index: dict[str, int] = {}
    return [index.setdefault(repr(p), len(index)) for p in prompts]


def z_normalise(values: list[float | None], groups: list[int], eps: float = 1e-4
                ) -> list[float | None]:
    members: dict[int, list[float]] = {}
    for v, g in zip(values, groups, strict=True):
        if v is not None:
            members.setdefault(g, []).append(v)
    stats = {}
    for g, vs in members.items():
        mean = sum(vs) / len(vs)
        std = math.sqrt(sum((v - mean) ** 2 for v in vs) / (len(vs) - 1)) if len(vs) > 1 else 0.0
        stats[g] = (mean, std)
    out: list[float | None] = []
    for v, g in zip(values, groups, strict=True):
        mean, std = stats.get(g, (0.0, 0.0))
        out.append(None if v is None else (v - mean) / (std + eps) if std + eps > 0 else 0.0)
    return out


class CompositeReward:
    """Score rows with a reward design. Use as a context manager (it may hold worker pools)."""

    def __init__(self, specs: Sequence[RewardSpec], aggregation: Aggregation = "sum",
                 clip: tuple[float, float] | None = None, eps: float = 1e-4) -> None:
        if not specs:
            raise UserError("a reward design needs at least one reward")
        self.specs = list(specs)
        self.labels = labels_of(self.specs)
        for spec in self.specs:
            if spec.gate and spec.gate.reward not in self.labels:
                raise UserError(f"reward {spec.name!r}: gate names {spec.gate.reward!r}, which is "
                                f"not in this design ({', '.join(self.labels)})")
        self.rewards: list[Reward] = [build_reward(s) for s in self.specs]
        self.runner = RewardRunner()
        self.aggregation, self.clip, self.eps = aggregation, clip, eps

    def required_columns(self) -> dict[str, tuple[str, ...]]:
        return {label: tuple(r.columns) for label, r in zip(self.labels, self.rewards, strict=True)}

    def score(self, prompts: Sequence[Any], completions: Sequence[Any],
              group_size: int | None = None, **columns: Any) -> CompositeResult:
        scored: dict[str, list[Scored]] = self.runner.run_all(
            self.labels, self.rewards, self.specs, prompts, completions, columns)
        comps = {k: [s.value for s in v] for k, v in scored.items()}
        details = {k: [s.details for s in v] for k, v in scored.items()}
        errors = {k: [d["error"] for d in ds if "error" in d] for k, ds in details.items()}
        for label, spec in zip(self.labels, self.specs, strict=True):
            if spec.gate:
                gate = comps[spec.gate.reward]
                comps[label] = [None if v is None else
                                (v if g is not None and g >= spec.gate.min else 0.0)
                                for v, g in zip(comps[label], gate, strict=True)]
        parts = comps
        if self.aggregation == "normalize_then_sum":
            groups = group_ids(prompts, group_size)
            parts = {k: z_normalise(v, groups, self.eps) for k, v in comps.items()}
        totals: list[float | None] = []
        for i in range(len(completions)):
            got = [(spec.weight, parts[label][i])
                   for label, spec in zip(self.labels, self.specs, strict=True)
                   if parts[label][i] is not None]
            total = sum(w * v for w, v in got) if got else None
            if total is not None and self.clip is not None:
                total = min(max(total, self.clip[0]), self.clip[1])
            totals.append(total)
        return CompositeResult(totals, comps, details, {k: v for k, v in errors.items() if v})

    def close(self) -> None:
        self.runner.close()

    def __enter__(self) -> "CompositeReward":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
