"""The shipped ``rerank_gr2`` recipe, in a small world (K = 3 candidates, 60 items, one history
item, 3000 training users), learns to rerank held-out users: the SFT warm start on the teacher's
traces beats the pre-ranker's order at Recall@1 by an asserted margin without copying the input
order, the pipeline's final policy (after DAPO on ``rerank.conditional``) beats the pre-ranker at
NDCG@5, and DAPO does not undo the warm start; the figures land on the recipe's PARENT MLflow run.

What this test does NOT assert, because it does not hold at CPU scale (issue 8's open part):
NDCG@5 after DAPO > after SFT. Measured here (seed 0): pre-rank R@1 0.415 / NDCG@5 0.681, SFT
0.840 / 0.863 (95% of the 0.885 hit-rate ceiling), DAPO 20 steps 0.835 / 0.861 (40 steps:
0.810 / 0.849); seed 1: pre-rank 0.395 / 0.695, SFT 0.660 / 0.713 (valid answers 0.83: letters
repeated in the list), DAPO 40 steps 0.660 / 0.764 (it repairs the invalid lists, and only
that). ~2 min 45 s on 2 cores."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from rlhf.recipe import load_recipe
from rlhf.recipe.runner import run_recipe

SMALL_WORLD = [
    "sids.prerank.n_candidates=3", "sids.history_len=1", "sids.synthetic.n_items=60",
    "sids.synthetic.n_categories=4", "sids.synthetic.n_subcategories=2",
    "sids.synthetic.n_train_users=3000", "sids.semantic_ids.codebook_size=8",
    "sids.semantic_ids.min_uniqueness=null",
    "sft.trainer.max_steps=600",          # the candidate lookup appears at 350-450 steps
    "rl.steps=20", "rl.learning_rate=1e-4",
    "rl.policy.sampling.max_new_tokens=60", "eval.max_new_tokens=60",  # an answer: 54 tokens
]
METRICS = ("recall_at_1", "recall_at_5", "ndcg_at_5", "order_copy_rate")


def test_gr2_reranker_beats_the_pre_ranker_on_held_out_users(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    recipe = load_recipe("rerank_gr2", [f"tracking.uri={uri}", *SMALL_WORLD])
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
    assert sft["recall_at_1"] >= pre["recall_at_1"] + 0.2     # measured 0.840 vs 0.415
    assert sft["order_copy_rate"] <= 0.6                        # measured 0.45: not a copier
    # the trained reranker's order beats the pre-ranker's at NDCG@5 ...
    assert rl["ndcg_at_5"] >= pre["ndcg_at_5"] + 0.05          # measured 0.861 vs 0.681
    # ... and DAPO keeps what the warm start learned
    assert rl["recall_at_1"] >= sft["recall_at_1"] - 0.1

    parent = MlflowClient(uri).get_run(outcome.parent_run_id).data.metrics
    for model in ("pre_rank", "sft", "rl"):
        for metric in METRICS:
            assert parent[f"eval/{model}/{metric}"] == m[f"eval/{model}/{metric}"]
