"""Tracking URI resolution, the UI command, and experiments with their artifact location."""

from __future__ import annotations

from pathlib import Path

from rlhf.tracking.store import (
    artifact_root,
    default_tracking_uri,
    get_or_create_experiment,
    resolve_uri,
    sqlite_path,
    ui_command,
)


def test_default_uri_from_cwd_and_env(tmp_path: Path, monkeypatch) -> None:
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.chdir(tmp_path)
    assert default_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.local:5000")
    assert default_tracking_uri(tmp_path) == "http://mlflow.local:5000"
    assert resolve_uri(None, tmp_path) == "http://mlflow.local:5000"


def test_resolve_uri(tmp_path: Path) -> None:
    base = tmp_path.resolve()
    assert resolve_uri(None, tmp_path) == f"sqlite:///{base}/mlflow.db"
    assert resolve_uri("", tmp_path) == f"sqlite:///{base}/mlflow.db"
    assert resolve_uri("sqlite:///runs/x.db", tmp_path) == f"sqlite:///{base}/runs/x.db"
    assert resolve_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert resolve_uri("runs", tmp_path) == f"sqlite:///{base}/runs/mlflow.db"
    assert resolve_uri("store.db", tmp_path) == f"sqlite:///{base}/store.db"
    assert resolve_uri("http://host:5000", tmp_path) == "http://host:5000"
    assert resolve_uri("databricks", tmp_path) == "databricks"


def test_artifact_root_and_ui_command(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert sqlite_path(uri) == tmp_path / "mlflow.db"
    assert artifact_root(uri) == (tmp_path / "mlartifacts").as_uri()
    cmd = ui_command(uri)
    assert cmd == (
        f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db "
        f"--default-artifact-root {(tmp_path / 'mlartifacts').as_uri()}"
    )
    assert str(tmp_path / "mlflow.db") in cmd
    assert ui_command("http://host:5000") == "open http://host:5000"
    assert artifact_root("http://host:5000") is None
    spaced = ui_command("sqlite:////tmp/my runs/mlflow.db")
    assert "'sqlite:////tmp/my runs/mlflow.db'" in spaced


def test_get_or_create_experiment(reader, store_dir: Path, experiment_name: str) -> None:
    root = (store_dir / "mlartifacts").as_uri()
    first = get_or_create_experiment(reader, experiment_name, root)
    assert get_or_create_experiment(reader, experiment_name, root) == first
    assert reader.get_experiment(first).artifact_location == root
    reader.delete_experiment(first)
    assert get_or_create_experiment(reader, experiment_name, root) == first
    assert reader.get_experiment(first).lifecycle_stage == "active"
