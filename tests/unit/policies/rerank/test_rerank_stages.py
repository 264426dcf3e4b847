"""The rerank_data stage on an Amazon-reviews-form interaction file, then rerank_eval (metrics\non the stage run and on the recipe's parent MLflow run)."""

from __future__ import annotations

import json

import numpy as np
import yaml

from rlhf.recipe import load_recipe
from rlhf.recipe.runner import run_recipe


def test_rerank_data_and_eval_on_an_interaction_file(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):  # 60 users over 80 items, 4 to 7 interactions each, 2018 field names
        group = u % 4
        items = rng.choice(20, size=rng.integers(4, 8), replace=False) + 20 * group
        rows += [{"reviewerID": f"U{u}", "asin": f"B{i:03d}", "unixReviewTime": 1000 + t,
                  "category": f"g{group}"} for t, i in enumerate(items)]
    path = tmp_path / "reviews.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump({
        "name": "rerank_file", "description": "test", "seed": 0,
        "tracking": {"enabled": True, "uri": f"sqlite:///{tmp_path}/mlflow.db"},
        "stages": [
            {"name": "sids", "kind": "rerank_data", "source": "interactions",
             "interactions": {"path": str(path), "embedding_dim": 8, "heldout_fraction": 0.2,
                              "windows": 2},
             "history_len": 2, "semantic_ids": {"codebook_size": [4, 8, 8, 8]},
             "metadata": ["category"], "n_eval_prompts": 4},
            {"name": "eval", "kind": "rerank_eval", "data": "@sids/heldout.jsonl",
             "models": {"base": "@sids/model"}, "max_new_tokens": 4}]}))
    outcome = run_recipe(load_recipe(str(recipe_path)), run_dir=tmp_path / "run")
    metrics = outcome.results["sids"].metrics
    assert metrics["sid/uniqueness_after"] == 1.0 and metrics["data/n_items"] <= 80
    assert metrics["data/n_heldout"] == 12  # 20% of 60 users, one example each
    held = [json.loads(line) for line in (tmp_path / "run" / "sids" / "heldout.jsonl").open()]
    assert all(len(r["candidates"]) == 10 and "(g" in r["prompt"] for r in held)
    assert all(r["target"] in r["candidates"] for r in held if r["hit"])
    sft = [json.loads(line) for line in (tmp_path / "run" / "sids" / "sft.jsonl").open()]
    assert sft and all(json.loads(r["completion"])["recommendations"] for r in sft)
    result = outcome.results["eval"].metrics
    assert result["eval/pre_rank/order_copy_rate"] == 1.0
    assert result["eval/base/valid_rate"] == 0.0  # an untrained model writes no valid answer
    # eval/<model>/<metric> also lands on the recipe's parent run
    from mlflow.tracking import MlflowClient

    parent = MlflowClient(outcome.tracking_uri).get_run(outcome.parent_run_id).data.metrics
    for model in ("pre_rank", "base"):
        for metric in ("recall_at_1", "recall_at_5", "ndcg_at_5", "order_copy_rate"):
            assert parent[f"eval/{model}/{metric}"] == result[f"eval/{model}/{metric}"]


def test_teacher_budget_traces_the_first_users_and_rl_sees_them_all(tmp_path):
    """``teacher.max_examples``: only the first N training examples are sent to the teacher;
    the RL prompts still cover every training example (users the warm start never saw)."""
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump({
        "name": "rerank_budget", "description": "test", "seed": 0,
        "tracking": {"enabled": False},
        "stages": [{"name": "sids", "kind": "rerank_data",
                    "synthetic": {"n_items": 60, "n_train_users": 40, "n_heldout_users": 4},
                    "history_len": 2, "semantic_ids": {"codebook_size": 8},
                    "prerank": {"n_candidates": 5, "hit_rate": 1.0},
                    "teacher": {"max_examples": 7, "noise": 0.0}, "n_eval_prompts": 2}]}))
    outcome = run_recipe(load_recipe(str(recipe_path)), run_dir=tmp_path / "run")
    out = tmp_path / "run" / "sids"
    sft = [json.loads(line) for line in (out / "sft.jsonl").open()]
    train = [json.loads(line) for line in (out / "train.jsonl").open()]
    assert len(train) == 40 and 1 <= len(sft) <= 7
    first = [r["prompt"] for r in train[:7]]
    assert all(r["prompt"] in first for r in sft)  # traces come from the budgeted users only
    assert outcome.results["sids"].metrics["data/n_sft"] == len(sft)
