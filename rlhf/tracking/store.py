"""Where MLflow runs live: the tracking URI, the experiment, and the command that opens the UI.

The default store is a local SQLite database, ``sqlite:///<abs cwd>/mlflow.db``, with run artifacts
in ``<dir of the db>/mlartifacts/`` beside it: one folder holds everything a recipe run recorded,
and ``mlflow ui`` pointed at it shows the runs with their plots. ``MLFLOW_TRACKING_URI`` overrides
the default (for example an ``http://`` tracking server, which then decides where artifacts go).

This module imports MLflow only inside the functions that need a client.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlhf.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.tracking import MlflowClient

DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
_SQLITE = "sqlite:///"


def default_tracking_uri(cwd: Path | None = None) -> str:
    """``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<abs cwd>/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    base = Path(cwd) if cwd is not None else Path.cwd()
    return _SQLITE + str((base / DB_NAME).resolve())


def resolve_uri(uri: str | None, cwd: Path | None = None) -> str:
    """Normalise a user-given store location into a tracking URI.

    - ``None`` or ``""``: :func:`default_tracking_uri`.
    - ``sqlite:///relative.db``: made absolute (against ``cwd``), so the URI means the same file
      whatever directory the UI is later started from.
    - a bare path ending in ``.db``/``.sqlite``: that SQLite file; any other bare path: a directory
      that holds ``mlflow.db``.
    - anything else with a scheme (``http://``, ``https://``, ``databricks``, ``file:``): unchanged.
    """
    if uri is None or not str(uri).strip():
        return default_tracking_uri(cwd)
    uri = str(uri).strip()
    base = Path(cwd) if cwd is not None else Path.cwd()
    if uri.startswith(_SQLITE):
        rest = uri[len(_SQLITE) :]
        if rest.startswith("/") or rest.startswith(":memory:") or not rest:
            return uri
        return _SQLITE + str((base / rest).resolve())
    if "://" in uri or uri.startswith(("databricks", "file:")):
        return uri
    path = Path(uri).expanduser()
    if not path.is_absolute():
        path = base / path
    if path.suffix.lower() not in (".db", ".sqlite", ".sqlite3"):
        path = path / DB_NAME
    return _SQLITE + str(path.resolve())


def sqlite_path(uri: str) -> Path | None:
    """The database file of an absolute ``sqlite:///`` URI, else ``None``."""
    if not uri.startswith(_SQLITE):
        return None
    rest = uri[len(_SQLITE) :].split("?", 1)[0]
    if not rest.startswith("/"):
        return None
    return Path(rest)


def artifact_root(uri: str) -> str | None:
    """File URI of ``<dir of db>/mlartifacts`` for a local SQLite store; ``None`` otherwise
    (a tracking server or remote store chooses the artifact location itself)."""
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / ARTIFACTS_DIR).as_uri()


def make_client(uri: str) -> MlflowClient:
    """An :class:`~mlflow.tracking.MlflowClient` on ``uri``; creates the SQLite file's folder.

    Opening a new SQLite store runs MLflow's schema migrations (about 2 s)."""
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def get_or_create_experiment(
    client: MlflowClient, name: str, artifact_root: str | None = None
) -> str:
    """Return the id of experiment ``name``, creating it (with ``artifact_root`` as its
    ``artifact_location``) or restoring it from the trash when needed."""
    from mlflow.exceptions import MlflowException

    if not name or not name.strip():
        raise UserError("the MLflow experiment name is empty")
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_root)
        except MlflowException as err:  # created meanwhile by another process
            found = client.get_experiment_by_name(name)
            if found is None:
                raise UserError(f"cannot create MLflow experiment {name!r}: {err}") from err
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    return found.experiment_id


def ui_command(uri: str) -> str:
    """The shell command that shows the runs of ``uri`` in a browser.

    Local SQLite:
    ``mlflow ui --backend-store-uri sqlite:///... --default-artifact-root file:///...``
    (experiments store their own artifact location; the root only matters for experiments created
    from the UI). HTTP(S) tracking server: ``open <uri>``."""
    if uri.startswith(("http://", "https://")):
        return f"open {shlex.quote(uri)}"
    root = artifact_root(uri)
    cmd = f"mlflow ui --backend-store-uri {shlex.quote(uri)}"
    if root is not None:
        cmd += f" --default-artifact-root {shlex.quote(root)}"
    return cmd


def describe(uri: str) -> dict[str, Any]:
    """A small summary for logs and CLI output: the URI, its database file and artifact root."""
    db = sqlite_path(uri)
    return {
        "uri": uri,
        "database": str(db) if db is not None else None,
        "artifact_root": artifact_root(uri),
        "ui": ui_command(uri),
    }
