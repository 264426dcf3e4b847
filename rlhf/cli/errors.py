"""Map exceptions to exit codes: 0 success, 2 user error, 1 internal error."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from rlhf.errors import UserError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Settings:
    """Global CLI flags (set by the app callback)."""

    debug: bool = os.environ.get("RLHF_DEBUG", "") not in ("", "0", "false")


@contextmanager
def cli_errors() -> Iterator[None]:
    """Print a user error as one paragraph (exit 2); an internal error briefly (exit 1).

    With ``--debug`` (or ``RLHF_DEBUG=1``) the traceback is shown too.
    """
    try:
        yield
    except typer.Exit:
        raise
    except UserError as exc:
        if Settings.debug:
            err_console.print_exception()
        if getattr(exc, "label", None) == "waiting":  # a stage that waits for people
            err_console.print(f"[bold yellow]waiting:[/bold yellow] {exc}")
        else:
            err_console.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - the CLI boundary
        if Settings.debug:
            err_console.print_exception()
        err_console.print(
            f"[bold red]internal error:[/bold red] {type(exc).__name__}: {exc}\n"
            "Run again with --debug for the traceback, and please report it."
        )
        raise typer.Exit(1) from None
