"""Embedded-server plumbing that needs no running server: env location, credentials, secrets."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from annotation.server import env as server_env
from annotation.server.embedded import EmbeddedServer, mask


def test_server_env_location_override_and_source_default(monkeypatch, tmp_path):
    monkeypatch.setenv("RLHF_ARGILLA_VENV", str(tmp_path / "venv"))
    assert server_env.server_env_dir() == (tmp_path / "venv").resolve()
    monkeypatch.delenv("RLHF_ARGILLA_VENV")
    repo = Path(server_env.__file__).resolve().parents[2]
    assert server_env.server_env_dir() == repo / ".venv-argilla"  # running from the source tree


def test_stamp_decides_readiness(tmp_path):
    venv = tmp_path / "venv"
    assert not server_env.is_server_env_ready(venv)
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (venv / server_env.STAMP_NAME).write_text(json.dumps({"requirements": ["something-else"]}))
    assert not server_env.is_server_env_ready(venv)
    (venv / server_env.STAMP_NAME).write_text(json.dumps({"requirements": list(server_env.REQUIREMENTS)}))
    assert server_env.is_server_env_ready(venv)
    assert server_env.ensure_server_env(venv) == venv  # no-op: nothing is installed


def test_owner_credentials_generated_once_private_and_env_overrides(monkeypatch, tmp_path):
    for var in ("ARGILLA_API_KEY", "ARGILLA_USERNAME", "ARGILLA_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    server = EmbeddedServer(tmp_path / "data")
    server.data_dir.mkdir()
    first = server._ensure_credentials()
    assert stat.S_IMODE(server.credentials_path.stat().st_mode) == 0o600
    assert server._ensure_credentials() == first and server.api_key == first["api_key"]
    assert len(first["api_key"]) >= 32 and len(first["password"]) >= 16

    monkeypatch.setenv("ARGILLA_API_KEY", "from-the-environment")
    monkeypatch.setenv("ARGILLA_USERNAME", "boss")
    assert EmbeddedServer(server.data_dir)._ensure_credentials()["api_key"] == "from-the-environment"
    assert server.username == "boss" and server.password == first["password"]
    isolated = EmbeddedServer(tmp_path / "other", credentials_from_env=False)
    isolated.data_dir.mkdir()
    assert isolated._ensure_credentials()["api_key"] != "from-the-environment"


def test_secret_key_persisted_private_and_secrets_masked(tmp_path):
    server = EmbeddedServer(tmp_path)
    key = server._secret_key()
    assert key == server._secret_key() and len(key) == 64
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    env = server._child_env()
    assert env["ARGILLA_AUTH_SECRET_KEY"] == key and env["ARGILLA_SEARCH_ENGINE"] == "sqlite"
    assert mask("rlhf.abcdefghijklmnop") == "rlhf…" and mask(None) == "<none>"


def test_not_running_without_a_start(tmp_path):
    server = EmbeddedServer(tmp_path)
    assert not server.is_running()
    assert server.pids() == {"server": None, "worker": None, "redis": None}
    server.stop()  # nothing to stop: no error
