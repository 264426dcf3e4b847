"""Every shipped recipe runs end to end for two steps per stage, and resumes after a crash."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from rlhf.recipe import load_recipe
from rlhf.recipe.catalog import shipped_recipes
from rlhf.recipe.runner import run_recipe
from tests.recipes.smoke import smoke_overrides


@pytest.mark.parametrize("name", sorted(shipped_recipes()))
def test_recipe_smoke(name, tmp_path, request, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    recipe = load_recipe(name)
    if any(s.kind == "annotate" for s in recipe.stages):  # the session's Argilla server
        server = request.getfixturevalue("argilla_server")
        monkeypatch.setenv("ARGILLA_API_URL", server.url)
        monkeypatch.setenv("ARGILLA_API_KEY", server.api_key)
    recipe = load_recipe(name, smoke_overrides(recipe, uri))
    outcome = run_recipe(recipe, run_dir=tmp_path / "run")
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert [state["stages"][s.name]["status"] for s in recipe.stages] == \
        ["finished"] * len(recipe.stages)
    for stage in recipe.stages:
        for rel in outcome.results[stage.name].outputs.values():
            assert (tmp_path / "run" / stage.name / rel).exists()
    client = MlflowClient(uri)
    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["rlhf.recipe"] == recipe.name
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    assert sorted(r.data.tags["rlhf.stage"] for r in children) == \
        sorted(s.name for s in recipe.stages)


def test_dpo_tiny_with_lora_adapters_saves_merged_models(tmp_path):
    from safetensors.torch import load_file

    recipe = load_recipe("dpo_tiny")
    overrides = smoke_overrides(recipe, f"sqlite:///{tmp_path}/mlflow.db")
    recipe = load_recipe("dpo_tiny", overrides + ["policy.lora.r=4", "model.lora.r=4",
                                                  "trainer.learning_rate=0.05"])
    run_recipe(recipe, run_dir=tmp_path / "run")
    for stage in ("warmup", "dpo", "reward_model"):
        weights = load_file(str(tmp_path / "run" / stage / "model" / "model.safetensors"))
        assert not any("lora_" in k for k in weights), stage  # merged into plain weights
    head = load_file(str(tmp_path / "run" / "reward_model" / "model" / "model.safetensors"))
    assert "score.weight" in head
