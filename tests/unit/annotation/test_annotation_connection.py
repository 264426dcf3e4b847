"""Which server and key; the CLI's checks that need no server; the stage's options."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from annotation.argilla.connection import mask, resolve
from rlhf.errors import UserError


@pytest.fixture(autouse=True)
def _no_argilla_env(monkeypatch, tmp_path):
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    monkeypatch.setenv("RLHF_ARGILLA_DATA_DIR", str(tmp_path / "no-server"))


def test_explicit_values_win(monkeypatch):
    monkeypatch.setenv("ARGILLA_API_URL", "http://env:6900")
    monkeypatch.setenv("ARGILLA_API_KEY", "env-key-123456")
    conn = resolve("http://explicit:1/", "explicit-key-123")
    assert (conn.api_url, conn.api_key, conn.source) == ("http://explicit:1", "explicit-key-123",
                                                          "arguments")


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("ARGILLA_API_URL", "http://env:6900")
    monkeypatch.setenv("ARGILLA_API_KEY", "env-key-123456")
    conn = resolve()
    assert (conn.api_url, conn.api_key) == ("http://env:6900", "env-key-123456")
    assert conn.source == "$ARGILLA_API_URL; key from $ARGILLA_API_KEY"
    assert "env-key-123456" not in repr(conn) and "env-key-123456" not in str(conn)
    assert resolve("http://other").api_key == "env-key-123456"  # URL given, key from env


def test_no_server_is_a_clear_error(monkeypatch, tmp_path):
    with pytest.raises(UserError, match=r"no Argilla server.*rlhf annotate serve"):
        resolve()
    monkeypatch.setenv("ARGILLA_API_URL", "http://env:6900")
    with pytest.raises(UserError, match=r"no API key for http://env:6900: set ARGILLA_API_KEY"):
        resolve()


def test_mask():
    assert mask("rlhf.abcdefghijkl") == "rlhf…" and mask("short") == "…" and mask(None) == "<none>"


def test_cli_push_reports_bad_rows_with_exit_code_2(tmp_path):
    from rlhf.cli.app import app

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "x", "audio_a": "missing.wav"}) + "\n")
    result = CliRunner().invoke(app, ["annotate", "push", "--pairs", str(pairs), "--dataset", "d"])
    assert result.exit_code == 2
    assert f"{pairs}:1: audio_a:" in result.output and f"{pairs}:1: audio_b: missing" in result.output


def test_cli_without_a_server_exits_2(pairs_file):
    from rlhf.cli.app import app

    result = CliRunner().invoke(app, ["annotate", "push", "--pairs", str(pairs_file), "--dataset", "d"])
    assert result.exit_code == 2 and "no Argilla server" in result.output
    result = CliRunner().invoke(app, ["annotate", "progress", "--dataset", "d"])
    assert result.exit_code == 2 and "no Argilla server" in result.output


def test_stage_options():
    from annotation.stage import AnnotateOptions
    from rlhf.stages import STAGES

    assert STAGES.get("annotate").options is AnnotateOptions
    ok = AnnotateOptions(pairs="@gen/pairs.jsonl", simulate={"annotators": 3})
    assert ok.annotators_per_pair == 3 and ok.simulate.preference == "speaking_rate"
    with pytest.raises(ValueError, match="no pair would ever be complete"):
        AnnotateOptions(pairs="p.jsonl", annotators_per_pair=3, simulate={"annotators": 2})
    with pytest.raises(ValueError):
        AnnotateOptions(pairs="p.jsonl", unknown=1)
