"""Metric curves: grouping by prefix, PNG output."""

from __future__ import annotations

from pathlib import Path

from rlhf.tracking.plots import group_metrics, group_of, plot_curves

PNG = b"\x89PNG\r\n\x1a\n"


def test_group_of() -> None:
    assert group_of("train/loss") == "train"
    assert group_of("train/rewards/chosen") == "train"
    assert group_of("lr") == "metrics"
    assert group_of("/odd") == "metrics"


def test_plot_curves_groups_by_prefix(tmp_path: Path) -> None:
    history = {
        "train/loss": [(0, 1.0), (1, 0.5), (2, 0.25)],
        "train/reward": [(2, 0.3), (0, 0.1), (1, 0.2)],  # unordered steps are fine
        "eval/accuracy": [(1, 0.5)],  # one point: no curve
        "lr": [(0, 1e-5), (1, 2e-5)],
    }
    assert group_metrics(history) == {"metrics": ["lr"], "train": ["train/loss", "train/reward"]}
    paths = plot_curves(history, tmp_path / "plots")
    assert [p.name for p in paths] == ["metrics.png", "train.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG
        assert path.stat().st_size > 1000


def test_plot_curves_nothing_to_draw(tmp_path: Path) -> None:
    assert plot_curves({}, tmp_path / "none") == []
    assert plot_curves({"a/b": [(0, 1.0)]}, tmp_path / "none") == []
    assert not (tmp_path / "none").exists()
