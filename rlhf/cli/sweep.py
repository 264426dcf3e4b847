"""``rlhf sweep FILE [--parallel N] [--resume] [--sweep-id ID] [--dry-run]``.

Validates every variant x seed of the sweep file (exit 2 naming each variant that does not,
before anything runs), then runs them as ordinary recipe runs under
``runs/sweeps/<sweep id>/<variant>/seed-<n>`` (see :mod:`rlhf.sweep.runner`). A failed run is
reported and the sweep goes on; the exit code is 1 when any run did not finish (``--resume``
reruns those), 0 otherwise.
"""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rlhf.cli.errors import Settings, cli_errors

console = Console()


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)


def _default_parallel() -> int:
    return 1 if (os.cpu_count() or 1) <= 2 else 2


def sweep(
    file: str = typer.Argument(..., help="Sweep file (YAML), or the name of a shipped sweep "
                               "(recipes/sweeps/)."),
    parallel: int = typer.Option(None, "--parallel", min=1, help="Runs at a time, as "
                                 "subprocesses of `rlhf run` (default 1 on a machine with 2 "
                                 "cores or fewer, else 2; 1 runs them in this process)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the newest sweep of this name "
                                "(or --sweep-id): rerun only the runs that did not finish."),
    sweep_id: str = typer.Option(None, "--sweep-id", help="Id of the sweep (its directory "
                                 "under runs/sweeps/); default <name>-<timestamp>."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate every run and print the "
                                 "plan; compute nothing."),
) -> None:
    """Run a recipe's reward-design variants over seeds, tagged for `rlhf compare`."""
    from rlhf.sweep import load_sweep, prepare, run_sweep, validate_runs

    with cli_errors():
        loaded = load_sweep(file)
        runs = validate_runs(loaded)
        if dry_run:
            _print_plan(loaded, runs)
            console.print(f"[green]dry run: {len(runs)} runs valid, nothing was computed[/green]")
            return
        if not Settings.debug:
            from rlhf.quiet import quiet_libraries

            quiet_libraries()
        state = prepare(loaded, runs, resume, sweep_id)
        n = parallel or _default_parallel()
        outcome = run_sweep(loaded, runs, state, n, console=Console(stderr=True),
                            debug=Settings.debug)
        _print_summary(outcome)
        if outcome.failed:
            console.print(f"[red]{len(outcome.failed)} run(s) did not finish[/red]; rerun them "
                          f"with: rlhf sweep {file} --resume --sweep-id {outcome.sweep_id}",
                          soft_wrap=True)
            raise typer.Exit(1)
        console.print(f"Compare: rlhf compare --sweep {outcome.sweep_id}"
                      + (f" --tracking-uri {state.tracking_uri}" if state.tracking_uri else ""),
                      soft_wrap=True, markup=False, highlight=False)


def _print_plan(loaded, runs) -> None:  # noqa: ANN001
    table = Table(title=f"sweep {loaded.name}: {loaded.recipe}, {len(runs)} runs")
    for col in ("variant", "seed", "reward fingerprint", "overrides"):
        table.add_column(col)
    for r in runs:
        table.add_row(r.variant, str(r.seed), r.fingerprint, Text("\n".join(r.overrides)))
    console.print(table)


def _print_summary(outcome) -> None:  # noqa: ANN001
    table = Table(title=f"sweep {outcome.sweep_id}")
    for col in ("run", "status", "seconds", "MLflow run", "error"):
        table.add_column(col)
    for key, rec in outcome.runs.items():
        status = rec.get("status", "?")
        style = "green" if status == "finished" else "red"
        ran = "" if key in outcome.ran else " (earlier)"
        table.add_row(key, f"[{style}]{status}[/{style}]{ran}", str(rec.get("seconds", "")),
                      rec.get("parent_run_id") or "", Text((rec.get("error") or "")[:300]))
    console.print(table)
    console.print(f"Sweep directory: {outcome.directory}")
