"""The shipped ``rerank_gr2_budget`` recipe (K = 3 candidates, 60 items, one history item, 3000
training users, a teacher budget of 300 traced users) learns to rerank held-out users: the SFT
warm start beats the pre-ranker's order at Recall@1 and NDCG@5 by asserted margins without
copying the input order, the final policy (after DAPO on ``rerank.conditional``, cut to 20 steps
here) beats the pre-ranker at NDCG@5, and DAPO keeps what the warm start learned; the figures
land on the recipe's PARENT MLflow run. ~2 min 40 s on 2 cores.

Not asserted, because it is not robust at a test's budget (issue 8): NDCG@5 after DAPO > after
SFT. Seed 0 here: pre-rank R@1 0.415 / NDCG@5 0.681, SFT 0.735 / 0.777 (valid answers 0.89),
DAPO 20 steps 0.755 / 0.798 (the recipe's 300 steps, 12 min: 0.720 / 0.789). The gain comes
from repairing invalid answer lists (a letter repeated); with seed 1 the SFT model's answers are
all valid (0.685 / 0.813) and 40 DAPO steps on 2 cores give 0.804, while 200-300 steps of 64-128
samples on a GPU gave 0.835-0.846 for seed 1 and 0.808-0.823 for seed 0."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from rlhf.recipe import load_recipe
from rlhf.recipe.runner import run_recipe

FAST = ["rl.steps=20"]  # the recipe's 300 DAPO steps take ~11 min: RL > SFT is not asserted here
METRICS = ("recall_at_1", "recall_at_5", "ndcg_at_5", "order_copy_rate")


def test_gr2_reranker_beats_the_pre_ranker_on_held_out_users(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    recipe = load_recipe("rerank_gr2_budget", [f"tracking.uri={uri}", *FAST])
    outcome = run_recipe(recipe, run_dir=tmp_path / "run")
    m = outcome.results["eval"].metrics
    print("\nheld-out: " + "; ".join(
        f"{model} " + ", ".join(f"{k} {m[f'eval/{model}/{k}']:.3f}" for k in METRICS)
        for model in ("pre_rank", "sft", "rl")))
    assert outcome.results["sids"].metrics["sid/uniqueness_after"] == 1.0
    pre = {k: m[f"eval/pre_rank/{k}"] for k in METRICS}
    sft = {k: m[f"eval/sft/{k}"] for k in METRICS}
    rl = {k: m[f"eval/rl/{k}"] for k in METRICS}
    assert pre["order_copy_rate"] == 1.0
    # the warm start picks the next item far more often than the pre-ranker's first candidate
    assert sft["recall_at_1"] >= pre["recall_at_1"] + 0.2     # measured 0.735 vs 0.415
    assert sft["ndcg_at_5"] >= pre["ndcg_at_5"] + 0.05         # measured 0.777 vs 0.681
    assert sft["order_copy_rate"] <= 0.6                        # measured 0.41: not a copier
    # the trained reranker's order beats the pre-ranker's at NDCG@5 ...
    assert rl["ndcg_at_5"] >= pre["ndcg_at_5"] + 0.05          # measured 0.798 vs 0.681
    # ... and DAPO keeps what the warm start learned
    assert rl["recall_at_1"] >= sft["recall_at_1"] - 0.1    # measured 0.755 vs 0.735

    parent = MlflowClient(uri).get_run(outcome.parent_run_id).data.metrics
    for model in ("pre_rank", "sft", "rl"):
        for metric in METRICS:
            assert parent[f"eval/{model}/{metric}"] == m[f"eval/{model}/{metric}"]
