"""``rlhf run NAME_OR_PATH [key.path=value ...] [--run-dir DIR] [--resume RUN_DIR] [--dry-run]
[--num-processes N] [--tag KEY=VALUE ...] [--run-name NAME]``.

With more than one process (``distributed.num_processes`` or ``--num-processes``) this command
launches the workers (see :mod:`rlhf.launch`) and exits with their exit code.
"""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from rlhf.cli.errors import Settings, cli_errors
from rlhf.errors import UserError

console = Console()


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    recipe: str = typer.Argument(None, help="Shipped recipe name or a YAML path "
                                 "(optional with --resume: the saved recipe is used)."),
    overrides: list[str] = typer.Argument(None, help="key.path=value overrides, "
                                          "e.g. trainer.max_steps=20 policy.lora.r=8."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Run directory "
                                 "(default runs/<recipe>/<timestamp>)."),
    resume: Path = typer.Option(None, "--resume", help="Resume this run directory: finished "
                                "stages are skipped, an interrupted one continues from its "
                                "last checkpoint."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate, resolve and print the "
                                 "final config and the stage plan; compute nothing."),
    num_processes: int = typer.Option(None, "--num-processes", min=1, help="Processes to "
                                      "train on (one per GPU, or CPU processes); overrides "
                                      "distributed.num_processes."),
    tags: list[str] = typer.Option(None, "--tag", help="KEY=VALUE tag of the run's parent "
                                   "MLflow run (repeatable); rlhf sweep tags its runs so."),
    run_name: str = typer.Option(None, "--run-name", help="Name of the parent MLflow run "
                                 "(default <recipe>/<run dir name>)."),
) -> None:
    """Run a recipe: validate it, then run its stages, tracked in MLflow."""
    from rlhf import launch
    from rlhf.recipe.loader import load_recipe
    from rlhf.recipe.run_state import RECIPE_FILE
    from rlhf.recipe.runner import run_recipe

    with cli_errors():
        if recipe is None:
            if resume is None:
                raise UserError("give a recipe name or path (rlhf recipes ls lists them), "
                                "or --resume RUN_DIR")
            recipe = str(resume / RECIPE_FILE)
            if not Path(recipe).is_file():
                raise UserError(f"{resume}: not a run directory (no {RECIPE_FILE})")
        if resume is not None and run_dir is not None and resume != run_dir:
            raise UserError("give either --run-dir or --resume, not both")
        overrides = list(overrides or [])
        extra_tags = parse_tags(tags or [])
        if num_processes is not None:
            overrides.append(f"distributed.num_processes={num_processes}")
        loaded = load_recipe(recipe, overrides)
        if not Settings.debug:
            from rlhf.quiet import quiet_libraries

            quiet_libraries()
        if dry_run:
            _print_plan(loaded)
            return
        from rlhf.engine import distributed

        launch.check_machine(loaded)
        if launch.needs_launch(loaded):
            code = _launch(loaded, recipe, overrides, run_dir, resume, tags or [], run_name)
            if code:
                raise typer.Exit(code)
            return
        try:
            outcome = run_recipe(loaded, run_dir=resume or run_dir, resume=resume is not None,
                                 debug=Settings.debug, tags=extra_tags, run_name=run_name)
            if distributed.is_main():
                _print_summary(loaded, outcome)
        finally:
            distributed.shutdown()


def parse_tags(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` (``--tag``) -> ``{k: v}``; a missing ``=`` or key is a user error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--tag {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def _launch(loaded, recipe: str, overrides: list[str], run_dir: Path | None,  # noqa: ANN001
            resume: Path | None, tags: list[str], run_name: str | None) -> int:
    """Start the workers on one run directory, chosen here; return their exit code."""
    from rlhf import launch
    from rlhf.recipe.run_state import STATE_FILE, new_run_dir

    target = resume or run_dir or new_run_dir(loaded.name)
    if resume is not None:  # the checks of run_recipe, once here rather than on every rank
        from rlhf.recipe.run_state import load_state
        from rlhf.recipe.runner import check_resume_matches

        load_state(resume)
        check_resume_matches(loaded, resume)
    elif (target / STATE_FILE).exists():
        raise UserError(f"{target}: already holds a run; use --resume {target} to continue it")
    n = loaded.distributed.num_processes
    backend = "NCCL" if _has_cuda() else "gloo"
    Console(stderr=True).print(f"[bold]launching {n} processes[/bold] ({backend}), "
                               f"run directory {target}")
    return launch.launch(n, launch.worker_args(recipe, overrides, target, resume is not None,
                                               Settings.debug, tags, run_name))


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _print_plan(recipe) -> None:  # noqa: ANN001 - Recipe
    console.print(Syntax(yaml.safe_dump(recipe.to_dict(), sort_keys=False), "yaml",
                         background_color="default"))
    table = Table(title=f"Stage plan of {recipe.name}")
    table.add_column("#")
    table.add_column("stage")
    table.add_column("kind")
    table.add_column("what it does")
    for i, s in enumerate(recipe.stages, 1):
        table.add_row(str(i), s.name, s.kind, s.spec.description)
    console.print(table)
    console.print("[green]dry run: valid, nothing was computed[/green]")


def _print_summary(recipe, outcome) -> None:  # noqa: ANN001
    from rlhf.tracking import ui_command

    table = Table(title=f"{recipe.name}: summary")
    table.add_column("stage")
    table.add_column("kind")
    table.add_column("status")
    table.add_column("results")
    for s in recipe.stages:
        result = outcome.results.get(s.name)
        status = "skipped (done)" if s.name in outcome.skipped else "done"
        lines = list(result.summary) if result and result.summary else [
            f"{k} = {v:.4g}" for k, v in (result.metrics.items() if result else [])]
        table.add_row(s.name, s.kind, status, "\n".join(lines))
    console.print(table)
    console.print(f"Run directory: {outcome.run_dir}")
    if outcome.tracking_uri:
        console.print("Open the MLflow UI on the results:")
        console.print(f"  {ui_command(outcome.tracking_uri)}", soft_wrap=True, markup=False,
                      highlight=False)
