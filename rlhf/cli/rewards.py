"""``rlhf rewards ls | score``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rlhf.cli.errors import cli_errors
from rlhf.errors import UserError

app = typer.Typer(help="List rewards and score files with them.", no_args_is_help=True)
console = Console()


def _fmt_range(lo: float, hi: float) -> str:
    def one(x: float) -> str:
        return "∞" if x == float("inf") else "-∞" if x == float("-inf") else f"{x:g}"
    return f"[{one(lo)}, {one(hi)}]"


@app.command("ls")
def ls() -> None:
    """Registered rewards: description, parameters with defaults, columns, range."""
    from rewards.base import REWARDS, Reward

    with cli_errors():
        table = Table(title="Rewards", show_lines=True)
        for col in ("name", "description", "parameters", "columns", "range"):
            table.add_column(col)
        for entry in REWARDS:
            cls = REWARDS.get(entry.name)
            if not (isinstance(cls, type) and issubclass(cls, Reward)):
                table.add_row(entry.name, entry.description, "", "", "")
                continue
            params = []
            for pname, f in cls.Params.model_fields.items():
                value = None if f.is_required() else f.get_default(call_default_factory=True)
                if hasattr(value, "model_dump"):
                    value = value.model_dump()
                default = "required" if f.is_required() else repr(value)
                params.append(f"{pname}={default}")
            cols = list(cls.columns) + [f"({c})" for c in cls.optional_columns]
            table.add_row(entry.name, cls.description, "\n".join(params), ", ".join(cols),
                          _fmt_range(*cls.value_range))
        console.print(table)
        console.print("Columns in parentheses are optional. Any 'module:function' with the "
                      "signature fn(prompts, completions, **columns) works as a reward too.")


def _parse_params(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--param {item!r}: expected key=value")
        try:
            out[key] = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError:
            out[key] = raw
    return out


def _design_from_recipe(recipe: Path, stage: str):  # noqa: ANN202
    from rewards.compose import CompositeReward
    from rlhf.recipe.loader import load_recipe

    loaded = load_recipe(str(recipe))
    try:
        options = loaded.stage(stage).options
    except KeyError:
        from rlhf.errors import did_you_mean

        raise UserError(f"{recipe}: no stage {stage!r}; "
                        f"{did_you_mean(stage, [s.name for s in loaded.stages])}") from None
    specs = getattr(options, "rewards", None)
    if not specs:
        raise UserError(f"{recipe}: stage {stage!r} has no rewards: list")
    return CompositeReward(specs, aggregation=getattr(options, "reward_aggregation", "sum"),
                           clip=getattr(options, "reward_clip", None))


@app.command("score")
def score(
    name: str = typer.Argument(None, help="Reward name (rlhf rewards ls) or module:function."),
    input: Path = typer.Option(..., "--input", "-i", help="Rows: JSONL, JSON, Parquet or a "
                               "HF dataset directory, with prompt, completion and columns."),
    output: Path = typer.Option(..., "--output", "-o", help="Scored rows (JSONL)."),
    param: list[str] = typer.Option(None, "--param", "-p", help="Reward parameter key=value."),
    recipe: Path = typer.Option(None, "--recipe", help="Score with a stage's reward design."),
    stage: str = typer.Option(None, "--stage", help="The stage of --recipe."),
    group_size: int = typer.Option(None, "--group-size", help="Rows per prompt group "
                                   "(for normalize_then_sum); default: rows with equal prompts."),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
) -> None:
    """Score every row of a file; writes each row plus reward and details, in input order."""
    from rewards.compose import CompositeReward
    from rewards.score_file import score_rows, write_rows
    from rewards.spec import RewardSpec
    from rlhf.data import iter_rows

    with cli_errors():
        if recipe is not None:
            if name or param:
                raise UserError("give either a reward NAME (with --param) or --recipe/--stage")
            if not stage:
                raise UserError("--recipe needs --stage NAME")
            design = _design_from_recipe(recipe, stage)
        else:
            if not name:
                raise UserError("give a reward NAME (rlhf rewards ls) or --recipe and --stage")
            try:
                spec = RewardSpec(name=name, params=_parse_params(param or []))
            except ValueError as exc:
                msgs = "; ".join(e["msg"].removeprefix("Value error, ")
                                 for e in getattr(exc, "errors", lambda: [])()) or str(exc)
                raise UserError(msgs) from None
            design = CompositeReward([spec])
        rows = list(iter_rows(input))
        if not rows:
            raise UserError(f"{input}: no rows")
        with design, Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                              TimeRemainingColumn(), console=Console(stderr=True),
                              transient=True, disable=len(rows) < 1000) as bar:
            task = bar.add_task("scoring", total=len(rows))
            out, summary = score_rows(design, rows, batch_size=batch_size,
                                      group_size=group_size,
                                      progress=lambda n: bar.advance(task, n))
        write_rows(output, out)
        mean = "n/a" if summary.mean is None else f"{summary.mean:.4f}"
        console.print(f"scored {summary.n_scored}/{summary.n_rows} rows, mean reward {mean} "
                      f"→ {output}")
        for label, msgs in summary.errors.items():
            console.print(f"[yellow]{label}: {len(msgs)} rows not scored; first: {msgs[0]}"
                          "[/yellow]")
