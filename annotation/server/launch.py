"""Launcher for the embedded Argilla server, run with the SERVER environment's python.

    <server-venv>/bin/python annotation/server/launch.py setup  --data-dir D
    <server-venv>/bin/python annotation/server/launch.py server --data-dir D --host H --port P
    <server-venv>/bin/python annotation/server/launch.py worker --data-dir D

It is run as a script (not ``-m``): the server environment does not have this toolkit
installed, and this file imports nothing from it, only its sibling ``sql_engine.py``, which
registers the SQL search engine before ``argilla_server`` builds its app.

``setup``  migrates the database (what ``python -m argilla_server database migrate`` does), puts
           SQLite in WAL mode, creates or updates the owner from the JSON file named by
           ``RLHF_ARGILLA_OWNER_FILE`` and the default workspace ``RLHF_ARGILLA_WORKSPACE``.
``server`` runs ``argilla_server:app`` with uvicorn (with ``--setup``: runs ``setup`` first, in the
           same process, since importing ``argilla_server`` alone takes 5-8 s).
``worker`` runs one rq worker on the ``high`` and ``default`` queues (``python -m argilla_server
           worker`` starts an rq WorkerPool instead; a plain Worker forks a work horse per job
           from this process, so the engine registration carries over).

Everything is configured through ``ARGILLA_*`` variables set by ``embedded.py``. ``--data-dir``
is passed to every mode so the process can be recognised from its command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _setup(args: argparse.Namespace) -> None:
    Path(os.environ["ARGILLA_HOME_PATH"]).mkdir(parents=True, exist_ok=True)
    from argilla_server.cli.database.migrate import migrate_db

    migrate_db(revision="head")
    db_url = os.environ["ARGILLA_DATABASE_URL"]
    db_file = db_url.split(":///", 1)[1]
    with sqlite3.connect(db_file) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    asyncio.run(_ensure_owner())


async def _ensure_owner() -> None:
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole, Workspace, WorkspaceUser

    owner = json.loads(Path(os.environ["RLHF_ARGILLA_OWNER_FILE"]).read_text())
    ws_name = os.environ.get("RLHF_ARGILLA_WORKSPACE", "argilla")
    async with AsyncSessionLocal() as db:
        workspace = await Workspace.get_by(db, name=ws_name)
        if workspace is None:
            workspace = await accounts.create_workspace(db, {"name": ws_name})
        other = await accounts.get_user_by_api_key(db, owner["api_key"])
        if other is not None and other.username != owner["username"]:
            raise SystemExit(f"another user ({other.username!r}) already has the owner's API key")
        user = await accounts.get_user_by_username(db, owner["username"])
        if user is None:
            user = await accounts.create_user(db, {
                "first_name": owner["username"], "last_name": None, "username": owner["username"],
                "role": UserRole.owner, "password": owner["password"]}, workspaces=[ws_name])
            print(f"created owner {owner['username']!r}")
        else:
            print(f"owner {owner['username']!r} exists")
            if user.role != UserRole.owner:
                user.role = UserRole.owner
            if not accounts.verify_password(owner["password"], user.password_hash):
                user.password_hash = accounts.hash_password(owner["password"])
                print("owner password updated")
        if user.api_key != owner["api_key"]:
            user.api_key = owner["api_key"]
        await db.commit()
        if await WorkspaceUser.get_by(db, workspace_id=workspace.id, user_id=user.id) is None:
            await WorkspaceUser.create(db, workspace_id=workspace.id, user_id=user.id)


def _server(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    import sql_engine  # noqa: F401  registers the engine before the app starts
    import uvicorn

    from argilla_server import app

    print(f"argilla_server imported in {time.monotonic() - t0:.1f}s", flush=True)
    if args.setup:  # in this process: importing argilla_server takes seconds, do it once
        t1 = time.monotonic()
        _setup(args)
        print(f"migrations and owner done in {time.monotonic() - t1:.1f}s", flush=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info",
                timeout_graceful_shutdown=5)


def _worker(args: argparse.Namespace) -> None:
    import sql_engine  # noqa: F401
    from rq import Worker

    from argilla_server.jobs import dataset_jobs, hub_jobs, webhook_jobs  # noqa: F401
    from argilla_server.jobs.queues import DEFAULT_QUEUE, HIGH_QUEUE, REDIS_CONNECTION

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = Worker([HIGH_QUEUE, DEFAULT_QUEUE], connection=REDIS_CONNECTION)
    worker.work(with_scheduler=False, logging_level="INFO")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="launch.py")
    parser.add_argument("mode", choices=["setup", "server", "worker"])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6900)
    parser.add_argument("--setup", action="store_true", help="server: run `setup` first")
    args = parser.parse_args(argv)
    {"setup": _setup, "server": _server, "worker": _worker}[args.mode](args)


if __name__ == "__main__":
    main()
