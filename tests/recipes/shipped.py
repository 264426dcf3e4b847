"""Running a shipped recipe in a test: a private MLflow store under ``tmp_path``, and the check
that the evaluation stage's figures also land on the recipe's PARENT run."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from rlhf.recipe import load_recipe
from rlhf.recipe.runner import RunOutcome, run_recipe


def run_shipped(name: str, tmp_path: Path, *overrides: str) -> RunOutcome:
    """Run shipped recipe ``name`` in ``tmp_path/run``, tracked in ``tmp_path/mlflow.db``."""
    recipe = load_recipe(name, [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *overrides])
    return run_recipe(recipe, run_dir=tmp_path / "run")


def assert_on_parent_run(outcome: RunOutcome, stage: str, keys: list[str]) -> None:
    """Each metric ``key`` of ``stage`` was also logged, with the same value, on the parent run."""
    parent = MlflowClient(outcome.tracking_uri).get_run(outcome.parent_run_id).data.metrics
    mine = outcome.results[stage].metrics
    for key in keys:
        assert parent[key] == mine[key], key
