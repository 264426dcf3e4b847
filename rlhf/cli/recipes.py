"""``rlhf recipes ls | show | cp | validate``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from rlhf.cli.errors import cli_errors
from rlhf.errors import UserError

app = typer.Typer(help="List, show, copy and validate recipes.", no_args_is_help=True)
console = Console()


@app.command("ls")
def ls() -> None:
    """List the shipped recipes: name, description, stages and expected CPU time."""
    from rlhf.recipe.catalog import shipped_recipes

    with cli_errors():
        table = Table(title="Shipped recipes", show_lines=False)
        for col in ("name", "description", "stages", "CPU time"):
            table.add_column(col)
        for name, item in shipped_recipes().items():
            head = item.header()
            stages = " → ".join(str(s.get("name", s.get("kind", "?")))
                                for s in head.get("stages", []) if isinstance(s, dict))
            table.add_row(name, str(head.get("description", "")), stages,
                          str(head.get("cpu_time", "")))
        console.print(table)


@app.command("show")
def show(name: str = typer.Argument(..., help="Shipped recipe name or a path.")) -> None:
    """Print a recipe's YAML (with its comments)."""
    from rlhf.recipe.loader import read_recipe_text

    with cli_errors():
        _, text = read_recipe_text(name)
        console.print(Syntax(text, "yaml", background_color="default"))


@app.command("cp")
def cp(
    name: str = typer.Argument(..., help="Shipped recipe name."),
    path: Path = typer.Argument(..., help="Destination file (or directory)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Copy a shipped recipe to edit it (comments included)."""
    from rlhf.recipe.loader import read_recipe_text

    with cli_errors():
        _, text = read_recipe_text(name)
        dest = path / f"{Path(name).stem}.yaml" if path.is_dir() else path
        if dest.exists() and not force:
            raise UserError(f"{dest}: exists already; pass --force to overwrite")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        console.print(f"copied {name} → {dest}\nrun it with: rlhf run {dest}")


@app.command("validate")
def validate(
    name: str = typer.Argument(..., help="Shipped recipe name or a path."),
    overrides: list[str] = typer.Argument(None, help="key.path=value overrides."),
) -> None:
    """Validate a recipe (with overrides) without running anything."""
    from rlhf.recipe.loader import load_recipe

    with cli_errors():
        recipe = load_recipe(name, overrides or [])
        plan = " → ".join(f"{s.name} ({s.kind})" for s in recipe.stages)
        console.print(f"[green]✓[/green] {recipe.source} is valid: {plan}")
