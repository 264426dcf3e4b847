"""The ``rlhf`` Typer application: global flags and command groups."""

from __future__ import annotations

import typer

from rlhf import __version__
from rlhf.cli import annotate as annotate_cmd
from rlhf.cli import compare as compare_cmd
from rlhf.cli import recipes as recipes_cmd
from rlhf.cli import rewards as rewards_cmd
from rlhf.cli import run as run_cmd
from rlhf.cli import sweep as sweep_cmd
from rlhf.cli.errors import Settings

app = typer.Typer(
    name="rlhf",
    help="RLHF alignment and reward-modeling toolkit: run recipes, train reward models, "
    "post-train text and audio policies, tracked in MLflow.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(recipes_cmd.app, name="recipes")
app.add_typer(rewards_cmd.app, name="rewards")
app.add_typer(annotate_cmd.app, name="annotate")
run_cmd.register(app)
sweep_cmd.register(app)
compare_cmd.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rlhf {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    """RLHF toolkit command line."""
    if debug:
        Settings.debug = True


def main() -> None:
    app()


if __name__ == "__main__":
    main()
