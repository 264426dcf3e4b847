"""A run interrupted inside a stage resumes from that stage's last checkpoint, and ends where an
uninterrupted run ends (same weights)."""

from __future__ import annotations

import json
import shutil
import textwrap

import torch
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

from rlhf.recipe import load_recipe
from rlhf.recipe.runner import run_recipe

RECIPE = """\
name: resume_check
seed: 3
tracking: {{uri: "sqlite:///{db}"}}
stages:
  - name: data
    kind: synthetic_preferences
    n_train_pairs: 16
    n_eval_pairs: 8
    n_sft: 64
    n_eval_prompts: 2
  - name: warmup
    kind: sft
    policy: {{model: tiny:lm}}
    data: {{train: "@data/sft.jsonl"}}
    trainer: {{max_steps: 4, save_steps: 2, logging_steps: 1, per_device_train_batch_size: 8}}
"""


def weights(path):
    return load_file(str(path / "model.safetensors"))


def test_resume_continues_interrupted_stage_from_checkpoint(tmp_path):
    db = tmp_path / "mlflow.db"
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(textwrap.dedent(RECIPE.format(db=db)))
    run_dir = tmp_path / "run"
    recipe = load_recipe(str(recipe_file))
    first = run_recipe(recipe, run_dir=run_dir)
    reference = weights(run_dir / "warmup" / "model")
    child_id = json.loads((run_dir / "state.json").read_text())["stages"]["warmup"]["mlflow_run_id"]

    # Simulate a crash after the step-2 checkpoint: later checkpoint and outputs are gone.
    state = json.loads((run_dir / "state.json").read_text())
    state["stages"]["warmup"]["status"] = "interrupted"
    (run_dir / "state.json").write_text(json.dumps(state))
    shutil.rmtree(run_dir / "warmup" / "checkpoints" / "checkpoint-4")
    shutil.rmtree(run_dir / "warmup" / "model")
    (run_dir / "warmup" / "result.json").unlink()

    second = run_recipe(recipe, run_dir=run_dir, resume=True)
    assert second.skipped == ["data"]
    assert second.parent_run_id == first.parent_run_id
    resumed = weights(run_dir / "warmup" / "model")
    for key, value in reference.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-6)

    # The same MLflow child run was continued; only steps 3 and 4 were trained again.
    final = json.loads((run_dir / "state.json").read_text())["stages"]["warmup"]
    assert final["status"] == "finished" and final["mlflow_run_id"] == child_id
    steps = [m.step for m in MlflowClient(f"sqlite:///{db}").get_metric_history(child_id,
                                                                             "train/loss")]
    assert sorted(steps) == [1, 2, 3, 3, 4, 4]


def test_resume_refuses_a_changed_recipe(tmp_path):
    import pytest

    from rlhf.errors import UserError

    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(textwrap.dedent(RECIPE.format(db=tmp_path / "m.db")))
    recipe = load_recipe(str(recipe_file), ["tracking.enabled=false", "warmup.trainer.max_steps=1"])
    run_recipe(recipe, run_dir=tmp_path / "run")
    changed = load_recipe(str(recipe_file), ["tracking.enabled=false", "seed=4",
                                             "warmup.trainer.max_steps=1"])
    with pytest.raises(UserError, match="the recipe differs from the one this run started with"):
        run_recipe(changed, run_dir=tmp_path / "run", resume=True)
