"""Test-wide settings: offline, isolated caches, no MLflow store in the working tree."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _isolated_model_cache(tmp_path_factory):
    """Tiny models are built into a per-session cache, never the user's ~/.cache."""
    os.environ["RLHF_CACHE_DIR"] = str(tmp_path_factory.mktemp("model-cache"))
    yield
