"""GRPO, DAPO and PPO each raise the ground-truth reward of a warm-started tiny policy, measured
on held-out prompts sampled before and after training."""

from __future__ import annotations

import json

import pytest

from rlhf.recipe import load_recipe
from rlhf.recipe.runner import run_recipe

# Shorter than the shipped *_tiny recipes (which train 40 steps), same stages and settings.
STEPS = {"grpo_tiny": 20, "dapo_tiny": 20, "ppo_tiny": 20}


@pytest.fixture(scope="module")
def warm_run(tmp_path_factory):
    """data + warmup once; each test resumes a copy of this run with its RL stage."""
    base = tmp_path_factory.mktemp("warm")
    recipe = load_recipe("grpo_tiny", ["tracking.enabled=false"])
    recipe.stages = recipe.stages[:2]
    run_recipe(recipe, run_dir=base / "run")
    return base / "run"


@pytest.mark.parametrize("name", sorted(STEPS))
def test_rl_recipe_raises_held_out_reward(name, warm_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(warm_run, run_dir)
    (run_dir / "recipe.yaml").unlink()  # the resumed recipe has one more stage
    recipe = load_recipe(name, ["tracking.enabled=false", f"rl.steps={STEPS[name]}"])
    outcome = run_recipe(recipe, run_dir=run_dir, resume=True)
    assert outcome.skipped == ["data", "warmup"]
    metrics = json.loads((run_dir / "rl" / "result.json").read_text())["metrics"]
    assert metrics["eval/reward_after"] - metrics["eval/reward_before"] >= 0.4, metrics
    assert metrics["train/reward_last"] > metrics["train/reward_first"] + 0.3, metrics
    tables = sorted((run_dir / "rl" / "completions").glob("step-*.jsonl"))
    assert [t.name for t in tables] == ["step-000010.jsonl", "step-000020.jsonl"]
