"""Metric curves as PNG files, one figure per metric group.

Metrics are grouped by the prefix before their first ``/``: ``train/loss`` and ``train/reward``
land in ``train.png`` (one panel each, since their scales differ), ``eval/accuracy`` in
``eval.png``; keys without a ``/`` go to ``metrics.png``. Drawing uses matplotlib's Agg canvas
directly (no ``pyplot``, no display, no global figure state), so it is safe in headless jobs and
from several trackers at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

NO_GROUP = "metrics"
COLUMNS = 3
PANEL_SIZE = (4.0, 3.0)  # inches per panel (width, height)
_UNSAFE = re.compile(r"[^\w.\-]+")


def group_of(key: str) -> str:
    """The plot a metric belongs to: its prefix before the first ``/``, else ``"metrics"``."""
    return key.split("/", 1)[0] if "/" in key and key.split("/", 1)[0] else NO_GROUP


def group_metrics(
    history: Mapping[str, Sequence[tuple[int, float]]], min_points: int = 2
) -> dict[str, list[str]]:
    """``{group: [metric keys]}`` for the metrics with at least ``min_points`` points."""
    groups: dict[str, list[str]] = {}
    for key in sorted(history):
        if len(history[key]) >= min_points:
            groups.setdefault(group_of(key), []).append(key)
    return groups


def _file_name(group: str) -> str:
    return (_UNSAFE.sub("_", group).strip("._") or NO_GROUP) + ".png"


def _draw(group: str, keys: list[str], history, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(COLUMNS, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows + 0.6))
    FigureCanvasAgg(fig)
    for index, key in enumerate(keys):
        points = sorted(history[key], key=lambda p: p[0])
        ax = fig.add_subplot(rows, cols, index + 1)
        ax.plot([p[0] for p in points], [p[1] for p in points], linewidth=1.2)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(key.split("/", 1)[-1], fontsize=8)
        ax.grid(True, alpha=0.3)
    fig.suptitle(group)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)


def plot_curves(
    history: Mapping[str, Sequence[tuple[int, float]]], out_dir: Path | str
) -> list[Path]:
    """Write one PNG per metric group into ``out_dir`` and return their paths (sorted by group).

    ``history`` maps a metric key to ``(step, value)`` points; metrics with fewer than two points
    are left out, and so is a group with none left. ``out_dir`` is created when missing."""
    groups = group_metrics(history)
    if not groups:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for group, keys in groups.items():
        path = out / _file_name(group)
        if path in paths:  # two groups that sanitise to the same name
            path = path.with_name(f"{path.stem}_{len(paths)}.png")
        _draw(group, keys, history, path)
        paths.append(path)
    return paths
