"""Fixtures for the tracking tests: one real local MLflow SQLite store for the whole folder.

Creating a SQLite store runs MLflow's schema migrations (~1.5 s), so the store is session-scoped;
each test uses its own experiment or run names, and reads back through a plain ``MlflowClient``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _no_env_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their store explicitly; a developer's MLFLOW_TRACKING_URI must not leak in."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-store")


@pytest.fixture(scope="session")
def store_uri(store_dir: Path) -> str:
    return f"sqlite:///{store_dir}/mlflow.db"


@pytest.fixture(scope="session")
def reader(store_uri: str):
    """An independent client on the shared store, used only to read back what trackers wrote."""
    from mlflow.tracking import MlflowClient

    from rlhf.tracking.store import make_client

    client = make_client(store_uri)
    assert isinstance(client, MlflowClient)
    return client


@pytest.fixture
def experiment_name(request: pytest.FixtureRequest) -> str:
    """A fresh experiment name per test (the store is shared)."""
    return f"{request.node.name}-{next(_counter)}"
