"""The shipped ``emphasis_hilight`` recipe trains an Emphasis Actor whose emphasis helps a frozen
solver on held-out data: exact match with the actor's emphasis > without emphasis > with random
emphasis of the same budget, by asserted margins; the emphasis also helps a second solver the
actor was never trained with; GRPO improves on the warm start; every sample's tags come off to
give back the original context; the figures land on the recipe's PARENT MLflow run."""

from __future__ import annotations

import json

from rlhf.policies.emphasis.spans import segment, strip_tags
from tests.recipes.shipped import assert_on_parent_run, run_shipped

SETTINGS = ("none", "random", "actor", "actor_transfer")


def test_emphasis_actor_helps_the_solver_on_held_out_questions(tmp_path):
    outcome = run_shipped("emphasis_hilight", tmp_path)
    m = outcome.results["eval"].metrics
    em = {s: m[f"eval/{s}/exact_match"] for s in (*SETTINGS, "none_transfer", "actor_before")}
    print("\nheld-out exact match: " + ", ".join(f"{k} {v:.3f}" for k, v in em.items()))
    assert m["eval/actor/valid_rate"] >= 0.95
    assert em["actor"] >= em["none"] + 0.3          # measured 0.965 vs 0.398
    assert em["none"] >= em["random"] + 0.08        # measured 0.398 vs 0.271
    assert em["actor_transfer"] >= em["none_transfer"] + 0.3  # measured 0.965 vs 0.395
    assert em["actor"] >= em["actor_before"] + 0.1  # GRPO beyond the warm start (0.730)
    rl = outcome.results["rl"].metrics
    assert rl["eval/reward_after"] >= rl["eval/reward_before"] + 0.2

    assert_on_parent_run(outcome, "eval", [f"eval/{setting}/{metric}" for setting in SETTINGS
                                           for metric in ("exact_match", "f1")])

    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "data" / "eval.jsonl")
                                    .read_text().splitlines())}
    predictions = [json.loads(line) for line in
                   (tmp_path / "run" / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == len(rows) == 256
    for p in predictions:  # the actor's tags come off to give back the context, byte for byte
        context = rows[p["id"]]["context"]
        if p["tagged/actor"] is not None:
            assert strip_tags(p["tagged/actor"]).encode("utf-8") == context.encode("utf-8")
            assert all(0 <= i < len(segment(context)) for i in p["indices/actor"])
