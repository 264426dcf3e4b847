"""Compare reward designs across seeds from what MLflow recorded (``rlhf compare``).

- :mod:`.collect`: find recipe runs (by sweep, tags, experiment) and read their metrics;
  parent-run metrics by name, stage metrics as ``<stage>/<metric>``.
- :mod:`.stats`: mean, sd, percentile-bootstrap intervals (documented procedure).
- :mod:`.table`: groups (variant or reward fingerprint), per-metric summaries, pairwise
  differences, CSV.
- :mod:`.plots`: learning curves (mean ± sd band) and interval panels, one PNG.
- :mod:`.audio`, :mod:`.report`: the self-contained HTML report, with audio players.

:func:`run_comparison` does it all and logs the comparison as an MLflow run tagged
``rlhf.comparison`` (artifacts ``comparison.json``, ``groups.csv``, ``pairs.csv``,
``comparison.png``, ``report.html``).
"""

from __future__ import annotations

import fnmatch
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf.compare.collect import SWEEP_TAG, RunRecord, find_runs, metric_history
from rlhf.compare.table import compare, groups_csv, make_groups, pairs_csv
from rlhf.errors import UserError

COMPARISON_TAG = "rlhf.comparison"
COMPARED_SWEEP_TAG = "rlhf.compared_sweep"
COMPARISON_EXPERIMENT = "rlhf-comparisons"
DEFAULT_CURVES = ("*/train/reward_mean",)
"""Curves drawn when none are named: every stage's ``train/reward_mean``."""

__all__ = ["ComparisonOutput", "compare", "find_runs", "run_comparison"]


@dataclass
class ComparisonOutput:
    result: dict[str, Any]
    records: list[RunRecord]
    run_id: str | None
    """The MLflow run that holds the comparison (``None`` with ``log=False``)."""
    plot: Path | None
    html: Path | None


def _curve_names(records: list[RunRecord], patterns: list[str] | None) -> list[str]:
    available = sorted({m for r in records for m in r.metrics})
    chosen: list[str] = []
    for pattern in patterns or DEFAULT_CURVES:
        hits = [m for m in available if m == pattern or fnmatch.fnmatchcase(m, pattern)]
        if not hits and patterns:
            from rlhf.errors import did_you_mean

            raise UserError(f"no run has a metric {pattern!r} to draw; "
                            f"{did_you_mean(pattern, available)}")
        chosen += [m for m in hits if m not in chosen]
    return chosen


def label_of(sweep: str | None, tags: dict[str, str]) -> str:
    if sweep:
        return f"sweep {sweep}"
    return ", ".join(f"{k}={v}" for k, v in tags.items()) or "all runs"


def run_comparison(client: Any, experiment: str | None = None, sweep: str | None = None,
                   tags: dict[str, str] | None = None, metrics: list[str] | None = None,
                   curves: list[str] | None = None, by: str = "auto",
                   plot: Path | None = None, html: Path | None = None, log: bool = True
                   ) -> ComparisonOutput:
    """Find the runs, compare them, draw, write the report, log it all to MLflow."""
    from rlhf.compare import audio as audio_mod
    from rlhf.compare import plots, report

    filters = dict(tags or {})
    if sweep:
        filters[SWEEP_TAG] = sweep
    records = find_runs(client, experiment, filters)
    if not records:
        raise UserError(f"no recipe runs match ({label_of(sweep, filters)}) in "
                        f"{'experiment ' + repr(experiment) if experiment else 'any experiment'}")
    result = compare(records, metrics, by)  # type: ignore[arg-type]
    finished = [r for r in records if r.finished]
    groups = make_groups(finished, result["group_by"])
    curve_data: dict[str, dict[str, list[list[tuple[int, float]]]]] = {}
    for name in _curve_names(finished, curves):
        curve_data[name] = {g.name: [metric_history(client, r, name) for r in g.runs]
                            for g in groups}
    result["curves"] = list(curve_data)
    title = f"rlhf compare: {label_of(sweep, tags or {})}"
    with tempfile.TemporaryDirectory(prefix="rlhf-compare-") as tmp:
        out = Path(tmp)
        figure = plots.draw(result, curve_data, out / "comparison.png")
        audio = audio_mod.group_samples(client, groups) if groups else {}
        page = report.render(result, title, figure.read_bytes() if figure else None, audio)
        (out / "report.html").write_text(page, encoding="utf-8")
        (out / "comparison.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        (out / "groups.csv").write_text(groups_csv(result), encoding="utf-8")
        (out / "pairs.csv").write_text(pairs_csv(result), encoding="utf-8")
        plot_path = html_path = None
        if plot is not None and figure is not None:
            plot_path = Path(plot)
            plot_path.parent.mkdir(parents=True, exist_ok=True)
            plot_path.write_bytes(figure.read_bytes())
        if html is not None:
            html_path = Path(html)
            html_path.parent.mkdir(parents=True, exist_ok=True)
            html_path.write_text(page, encoding="utf-8")
        run_id = _log(client, records, experiment, sweep, tags or {}, out) if log else None
    return ComparisonOutput(result, records, run_id, plot_path, html_path)


def _log(client: Any, records: list[RunRecord], experiment: str | None, sweep: str | None,
         tags: dict[str, str], folder: Path) -> str:
    """Log the comparison as a run of ``experiment`` (default: the compared runs' experiment
    when they share one, else ``rlhf-comparisons``); return its id."""
    from rlhf.tracking import get_or_create_experiment
    from rlhf.tracking.fingerprint import git_commit

    if experiment is not None:
        experiment_id = client.get_experiment_by_name(experiment).experiment_id
    elif len({r.experiment_id for r in records}) == 1:
        experiment_id = records[0].experiment_id
    else:
        experiment_id = get_or_create_experiment(client, COMPARISON_EXPERIMENT)
    run_tags = {COMPARISON_TAG: label_of(sweep, tags), "rlhf.compared_runs": str(len(records)),
                "rlhf.toolkit_commit": git_commit()}
    if sweep:
        run_tags[COMPARED_SWEEP_TAG] = sweep
    name = f"compare/{sweep}" if sweep else "compare"
    run = client.create_run(experiment_id, run_name=name, tags=run_tags)
    try:
        client.log_artifacts(run.info.run_id, str(folder))
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id
