"""The comparison figure (PNG, matplotlib's Agg canvas, no pyplot): learning curves and intervals.

- one panel per curve metric: for each group, the mean across its runs at every step (steps a
  run did not log are left out of that step's mean) and a band of +/- one standard deviation
  across runs where at least two runs logged the step;
- one panel per compared metric: each run's value (dots) and the group mean with its 95%
  bootstrap interval (a bar; a lone diamond when the interval is null).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = 3
PANEL_SIZE = (4.2, 3.2)
MAX_METRIC_PANELS = 24

Curves = Mapping[str, Mapping[str, Sequence[Sequence[tuple[int, float]]]]]
"""metric -> group -> one ``[(step, value), ...]`` list per run."""


def curve_band(runs: Sequence[Sequence[tuple[int, float]]]
               ) -> tuple[list[int], list[float], list[float]]:
    """(steps, mean, std) across runs per step; std is NaN where fewer than 2 runs logged it."""
    by_step: dict[int, list[float]] = {}
    for points in runs:
        for step, value in points:
            if math.isfinite(value):
                by_step.setdefault(int(step), []).append(float(value))
    steps = sorted(by_step)
    mean = [float(np.mean(by_step[s])) for s in steps]
    std = [float(np.std(by_step[s], ddof=1)) if len(by_step[s]) > 1 else math.nan for s in steps]
    return steps, mean, std


def draw(result: Mapping[str, Any], curves: Curves, path: Path | str) -> Path | None:
    """Write the figure to ``path``; ``None`` (nothing written) when there is nothing to draw."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = [g["variant"] for g in result["groups"]]
    curve_names = [m for m in curves if any(any(r for r in runs) for runs in curves[m].values())]
    metric_names = list(result.get("metrics", []))[:MAX_METRIC_PANELS]
    panels = len(curve_names) + len(metric_names)
    if not groups or not panels:
        return None
    colors = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    cols = min(COLUMNS, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows + 0.8))
    FigureCanvasAgg(fig)
    index = 0
    for name in curve_names:
        index += 1
        ax = fig.add_subplot(rows, cols, index)
        for group in groups:
            runs = curves[name].get(group) or []
            steps, mean, std = curve_band(runs)
            if not steps:
                continue
            ax.plot(steps, mean, color=colors[group], linewidth=1.4,
                    label=f"{group} (n={sum(1 for r in runs if r)})")
            lo = [m - s for m, s in zip(mean, std)]
            hi = [m + s for m, s in zip(mean, std)]
            ax.fill_between(steps, lo, hi, color=colors[group], alpha=0.2, linewidth=0)
        ax.set_title(f"{name} (mean ± sd over seeds)", fontsize=9)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    by_name = {g["variant"]: g for g in result["groups"]}
    for name in metric_names:
        index += 1
        ax = fig.add_subplot(rows, cols, index)
        for x, group in enumerate(groups):
            summary = by_name[group]["metrics"].get(name) or {}
            values = by_name[group].get("values", {}).get(name, [])
            if values:
                jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
                ax.scatter([x + j for j in jitter], values, s=12, color=colors[group], alpha=0.6)
            mean = summary.get("mean")
            if mean is None:
                continue
            lo, hi = summary.get("ci_low"), summary.get("ci_high")
            if lo is not None and hi is not None:
                ax.errorbar([x + 0.3], [mean], yerr=[[mean - lo], [hi - mean]], fmt="o",
                            color=colors[group], capsize=4)
            else:
                ax.plot([x + 0.3], [mean], marker="D", color=colors[group])
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=20, fontsize=7, ha="right")
        ax.set_title(f"{name} (mean, 95% CI)", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("rlhf compare")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    return out
