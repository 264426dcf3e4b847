"""``rlhf compare [--experiment NAME] [--sweep ID | --tag KEY=VALUE ...] [--metric NAME ...]
[--curve NAME ...] [--by auto|variant|fingerprint] [--json] [--plot PATH] [--html PATH]
[--tracking-uri URI] [--no-log]``.

Groups the finished recipe runs (by variant within a sweep, else by reward fingerprint) and
gives, per metric, n, mean, sd and a 95% bootstrap interval of the mean over seeds, and the
pairwise differences (see :mod:`rlhf.compare.stats` for the procedure). Metrics: by default every
``eval/...`` metric of the parent runs and ``<stage>/eval/...`` of their stages (child runs);
``--metric`` takes names or globs (``'evaluate/*'``). Curves: ``--curve`` step metrics (default
``*/train/reward_mean``), mean ± sd over seeds.

``--json`` prints one object, nothing else, to stdout::

    {"groups": [{"variant", "fingerprint", "n", "seeds", "run_ids",
                 "metrics": {name: {"n", "mean", "std", "ci_low", "ci_high"}},
                 "values": {name: [per-run values]}}],
     "pairs": [{"a", "b", "metric", "diff", "ci_low", "ci_high", "excludes_zero"}],
     "excluded": [{"run_id", "run_name", "variant", "seed", "fingerprint", "status", "reason"}],
     "group_by", "metrics", "curves", "method", "comparison_run_id"}

Intervals are ``null`` for a group with fewer than two runs. Runs that did not finish are
excluded and listed (also on stderr). The comparison is logged as an MLflow run tagged
``rlhf.comparison`` (unless ``--no-log``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from rlhf.cli.errors import cli_errors
from rlhf.errors import UserError

console = Console()
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)


def _sweep_tracking(sweep: str) -> tuple[str | None, str | None]:
    """(tracking URI, experiment) recorded by ``rlhf sweep`` in ``runs/sweeps/<ID>/sweep.json``."""
    from rlhf.sweep.runner import SWEEP_FILE, SWEEPS_BASE

    path = SWEEPS_BASE / sweep / SWEEP_FILE
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, None
    return data.get("tracking_uri"), data.get("experiment")


def compare_cmd(
    experiment: str = typer.Option(None, "--experiment", help="MLflow experiment to search "
                                   "(default: every experiment)."),
    sweep: str = typer.Option(None, "--sweep", help="Compare the runs of this sweep id "
                              "(tag rlhf.sweep), grouped by variant."),
    tags: list[str] = typer.Option(None, "--tag", help="KEY=VALUE: only runs with this tag "
                                   "(repeatable), e.g. rlhf.recipe=grpo_tiny."),
    metrics: list[str] = typer.Option(None, "--metric", help="Metric to compare, a name or a "
                                      "glob (repeatable); default every eval/ metric."),
    curves: list[str] = typer.Option(None, "--curve", help="Step metric to draw as a learning "
                                     "curve (repeatable); default */train/reward_mean."),
    by: str = typer.Option("auto", "--by", help="Group by variant, fingerprint, or auto "
                           "(variant within one sweep, else reward fingerprint)."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as one JSON "
                                 "object."),
    plot: Path = typer.Option(None, "--plot", help="Write the figure (curves and intervals) "
                              "to this PNG."),
    html: Path = typer.Option(None, "--html", help="Write the self-contained HTML report here."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store (default: the "
                                     "sweep's, else $MLFLOW_TRACKING_URI or ./mlflow.db)."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not log the comparison to MLflow."),
) -> None:
    """Compare reward designs across seeds: means, bootstrap intervals, curves, report."""
    from rlhf.cli.run import parse_tags
    from rlhf.compare import run_comparison
    from rlhf.tracking import resolve_uri
    from rlhf.tracking.store import make_client, sqlite_path

    with cli_errors():
        if by not in ("auto", "variant", "fingerprint"):
            raise UserError(f"--by {by!r}: use auto, variant or fingerprint")
        filters = parse_tags(tags or [])
        if sweep and "rlhf.sweep" in filters and filters["rlhf.sweep"] != sweep:
            raise UserError("give the sweep either as --sweep or as --tag rlhf.sweep=..., once")
        if tracking_uri is None and sweep:
            tracking_uri, _ = _sweep_tracking(sweep)
        uri = resolve_uri(tracking_uri)
        db = sqlite_path(uri)
        if db is not None and not db.is_file():
            raise UserError(f"no MLflow store at {db}; pass --tracking-uri")
        from rlhf.quiet import quiet_libraries

        quiet_libraries()
        client = make_client(uri)
        out = run_comparison(client, experiment, sweep, filters, list(metrics or []) or None,
                             list(curves or []) or None, by, plot, html, log=not no_log)
        result = dict(out.result, comparison_run_id=out.run_id)
        for x in result["excluded"]:
            err_console.print(f"[yellow]excluded[/yellow] {x['run_name'] or x['run_id']} "
                              f"(variant {x['variant']}, seed {x['seed']}): {x['reason']}")
        if as_json:
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()
        else:
            _print_tables(result)
        if out.run_id:
            err_console.print(f"comparison logged to MLflow run {out.run_id}")
        for what, path in (("figure", out.plot), ("report", out.html)):
            if path is not None:
                err_console.print(f"{what}: {path}")


def _num(value) -> str:  # noqa: ANN001
    return "–" if value is None else f"{value:.4g}"


def _ci(lo, hi) -> str:  # noqa: ANN001
    return "null" if lo is None or hi is None else f"[{lo:.4g}, {hi:.4g}]"


def _print_tables(result: dict) -> None:
    table = Table(title=f"Groups by {result['group_by']} (mean over seeds, 95% bootstrap CI)")
    for col, justify in (("metric", "left"), ("variant", "left"), ("fingerprint", "left"),
                         ("n", "right"), ("mean", "right"), ("sd", "right"),
                         ("95% CI", "right")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for i, metric in enumerate(result["metrics"]):
        for g in result["groups"]:
            s = g["metrics"].get(metric) or {}
            table.add_row(metric if g is result["groups"][0] else "", g["variant"],
                          g["fingerprint"], str(s.get("n", 0)), _num(s.get("mean")),
                          _num(s.get("std")), _ci(s.get("ci_low"), s.get("ci_high")),
                          end_section=g is result["groups"][-1]
                          and i < len(result["metrics"]) - 1)
    console.print(table)
    if result["pairs"]:
        pairs = Table(title="Pairwise differences mean(a) − mean(b)")
        for col, justify in (("metric", "left"), ("a − b", "left"), ("diff", "right"),
                             ("95% CI", "right"), ("excludes 0", "left")):
            pairs.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for p in result["pairs"]:
            ex = p["excludes_zero"]
            mark = "n/a" if ex is None else ("[bold green]yes[/bold green]" if ex else "no")
            pairs.add_row(p["metric"], f"{p['a']} − {p['b']}", _num(p["diff"]),
                          _ci(p["ci_low"], p["ci_high"]), mark)
        console.print(pairs)
    if not result["groups"]:
        console.print("[yellow]no finished runs to compare[/yellow]")
