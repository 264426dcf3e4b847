"""``rlhf rewards ls | score | eval | train``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rlhf.cli.errors import cli_errors
from rlhf.errors import UserError

app = typer.Typer(help="List rewards, score files with them, train and evaluate reward models.",
                  no_args_is_help=True)
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
                               "HF dataset directory, with prompt, completion and columns "
                               "(audio rewards: audio = WAV/FLAC path relative to this file, "
                               "text = the intended words)."),
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
                                      progress=lambda n: bar.advance(task, n),
                                      base_dir=input.parent if input.is_file() else input)
        write_rows(output, out)
        mean = "n/a" if summary.mean is None else f"{summary.mean:.4f}"
        console.print(f"scored {summary.n_scored}/{summary.n_rows} rows, mean reward {mean} "
                      f"→ {output}")
        for label, msgs in summary.errors.items():
            console.print(f"[yellow]{label}: {len(msgs)} rows not scored; first: {msgs[0]}"
                          "[/yellow]")


# ---------------------------------------------------------------------------------------------
# rlhf rewards eval | train
# ---------------------------------------------------------------------------------------------

TRAIN_RECIPE = "rewards_train"
"""Name of the one-stage recipe ``rlhf rewards train`` builds (MLflow experiment, run dirs)."""
TRAIN_STAGE = "reward_model"
"""Name of its stage: overrides go to ``stages.reward_model.<key>``."""
_TOP_LEVEL = ("name", "description", "cpu_time", "seed", "tracking", "stages")


def _quiet() -> None:
    from rlhf.cli.errors import Settings

    if not Settings.debug:
        from rlhf.quiet import quiet_libraries

        quiet_libraries()


def _print_metrics(title: str, metrics: dict) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command("eval")
def eval_model(
    model_dir: str = typer.Argument(..., metavar="MODEL_DIR", help="A trained reward model "
                                    "directory (or a tiny: preset / hub id)."),
    data: Path = typer.Option(..., "--data", "-d", help="Preference pairs (prompt, chosen, "
                              "rejected; optional annotator): JSONL, JSON, Parquet or a HF "
                              "dataset directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a "
                                 "table."),
    diagram: Path = typer.Option(None, "--diagram", help="Also write a reliability diagram "
                                 "(PNG) here."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Texts per forward pass."),
    max_length: int = typer.Option(512, "--max-length", min=1, help="Tokens per text."),
    bins: int = typer.Option(10, "--bins", min=1, help="Equal-width bins of the ECE."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code"),
) -> None:
    """Accuracy, calibration (ECE over both orientations of each pair), reward gap and
    per-annotator agreement of a reward model on preference pairs. Tie pairs are left out."""
    import json

    from rewards.evaluate import evaluate_reward_model
    from rewards.preference.data import filter_pairs
    from rlhf.data import load_records

    with cli_errors():
        if not data.exists():
            raise UserError(f"--data {data}: no such file")
        loaded = load_records(data, "preference")
        pairs = filter_pairs(loaded.rows, ties="drop")
        if not pairs.rows:
            raise UserError(f"{data}: all {pairs.n_in} pairs are ties; nothing to evaluate")
        _quiet()
        result = evaluate_reward_model(model_dir, pairs.rows, batch_size=batch_size,
                                       max_length=max_length, n_bins=bins,
                                       trust_remote_code=trust_remote_code, diagram=diagram)
        result = {**result, "n_ties_skipped": pairs.n_ties_dropped, "model": model_dir,
                  "data": str(data)}
        if as_json:
            typer.echo(json.dumps(result))
            return
        _print_metrics(f"{model_dir} on {data}",
                       {k: result[k] for k in ("accuracy", "ece", "reward_gap", "n",
                                               "n_ties_skipped")})
        if result["per_annotator"]:
            table = Table(title="agreement with each annotator")
            for col in ("annotator", "accuracy", "pairs"):
                table.add_column(col)
            for who, stats in result["per_annotator"].items():
                table.add_row(who, f"{stats['accuracy']:.3f}", f"{stats['n']:.0f}")
            console.print(table)
        if diagram is not None:
            console.print(f"reliability diagram → {diagram}")


def train_recipe(data: Path, eval_data: Path | None, model: str | None, audio: bool,
                 steps: int | None) -> dict:
    """The raw one-stage recipe of ``rlhf rewards train`` (validated by the normal loader)."""
    stage: dict = {"name": TRAIN_STAGE,
                   "kind": "audio_reward_model" if audio else "reward_model",
                   "data": {"train": str(data.expanduser().resolve())}}
    if eval_data is not None:
        stage["data"]["eval"] = str(eval_data.expanduser().resolve())
    if audio:
        if model is not None:
            stage["model"] = {"encoder": model}
        if steps is not None:
            stage["steps"] = steps
    else:
        stage["model"] = {"model": model or "tiny:reward"}
        if steps is not None:
            stage["trainer"] = {"max_steps": steps}
    return {"name": TRAIN_RECIPE, "description": "rlhf rewards train",
            "tracking": {"enabled": True, "uri": None, "experiment": TRAIN_RECIPE},
            "stages": [stage]}


def stage_overrides(items: list[str]) -> list[str]:
    """``key=value`` items as recipe overrides: recipe-level keys (``seed``, ``tracking...``)
    as given, anything else inside the stage (``trainer.learning_rate=1e-3``)."""
    out = []
    for item in items:
        key = item.partition("=")[0].strip()
        first = key.split(".", 1)[0]
        out.append(item if first in _TOP_LEVEL else f"stages.{TRAIN_STAGE}.{item}")
    return out


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output}: exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise UserError(f"--output {output}: exists and is not empty; pass --overwrite to "
                        "replace it, or choose another --output")


def _copy_model(stage_dir: Path, model_rel: str, output: Path) -> None:
    import shutil

    if output.exists():
        shutil.rmtree(output)
    shutil.copytree(stage_dir / model_rel, output)
    for extra in ("eval.json", "reliability.png"):
        if (stage_dir / extra).is_file():
            shutil.copy2(stage_dir / extra, output / extra)


@app.command("train")
def train(
    overrides: list[str] = typer.Argument(None, metavar="[KEY=VALUE]...", help="Stage options, "
                                          "e.g. trainer.learning_rate=1e-3 ties=half "
                                          "min_margin=2 (seed=, tracking.* stay recipe-level)."),
    data: Path = typer.Option(..., "--data", "-d", help="Training preference pairs."),
    eval_data: Path = typer.Option(None, "--eval", help="Held-out pairs: accuracy, ECE, gap."),
    model: str = typer.Option(None, "--model", help="Base model: tiny:reward (default), a hub "
                              "id or a local path; with --audio the encoder."),
    audio: bool = typer.Option(False, "--audio", help="Speech pairs: the audio_reward_model "
                               "stage instead of reward_model."),
    steps: int = typer.Option(None, "--steps", min=1, help="Optimisation steps."),
    output: Path = typer.Option(Path("reward_model"), "--output", "-o", help="Where the trained "
                                "model is copied."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --output."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Run directory (default "
                                 f"runs/{TRAIN_RECIPE}/<timestamp>)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
) -> None:
    """Train a reward model on preference pairs: a one-stage recipe run by the normal runner
    (tracked in MLflow, resumable with rlhf run --resume RUN_DIR), then copied to --output."""
    import json

    from rlhf.cli.errors import Settings
    from rlhf.recipe.loader import validate_recipe
    from rlhf.recipe.runner import run_recipe

    with cli_errors():
        for label, path in (("--data", data), ("--eval", eval_data)):
            if path is not None and not path.exists():
                raise UserError(f"{label} {path}: no such file")
        _check_output(output, overwrite)
        raw = train_recipe(data, eval_data, model, audio, steps)
        recipe = validate_recipe(raw, "rlhf rewards train", stage_overrides(overrides or []))
        _quiet()
        outcome = run_recipe(recipe, run_dir=run_dir, debug=Settings.debug)
        result = outcome.results[TRAIN_STAGE]
        _copy_model(outcome.run_dir / TRAIN_STAGE, result.outputs.get("model", "model"), output)
        if as_json:
            typer.echo(json.dumps({"output": str(output), "run_dir": str(outcome.run_dir),
                                   "metrics": result.metrics}))
            return
        _print_metrics(f"reward model → {output}", result.metrics)
        for line in result.summary:
            console.print(line)
        console.print(f"Run directory: {outcome.run_dir}")
        if outcome.tracking_uri:
            from rlhf.tracking import ui_command

            console.print(f"MLflow: {ui_command(outcome.tracking_uri)}", soft_wrap=True,
                          markup=False, highlight=False)
