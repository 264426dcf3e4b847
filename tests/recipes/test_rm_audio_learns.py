"""The ``rm_audio_tiny`` recipe learns its synthetic speaking-rate preference: high held-out
accuracy, and a reward that peaks near the target rate on sentences it never heard."""

from __future__ import annotations

import time

from mlflow.tracking import MlflowClient

from rewards.preference.audio_data import render_clip
from rewards.preference.audio_model import AudioRewardModel
from rlhf.recipe import load_recipe
from rlhf.recipe.runner import run_recipe

# Fewer pairs and steps than the shipped recipe (256 pairs, 150 steps): the same task, in about
# a third of the time.
OVERRIDES = ["synthetic.n_train=192", "synthetic.n_eval=64", "steps=100", "save_every=50"]


def test_audio_reward_model_learns_the_speaking_rate_preference(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    recipe = load_recipe("rm_audio_tiny", [f"tracking.uri={uri}", *OVERRIDES])
    started = time.perf_counter()
    outcome = run_recipe(recipe, run_dir=tmp_path / "run")
    seconds = time.perf_counter() - started
    metrics = outcome.results["audio_rm"].metrics
    print(f"rm_audio_tiny (192 pairs, 100 steps): {seconds:.1f} s, held-out accuracy "
          f"{metrics['eval/accuracy']:.3f}, reward gap {metrics['eval/reward_gap']:+.2f}")
    assert metrics["eval/n_pairs"] == 64
    assert metrics["eval/accuracy"] >= 0.85
    assert metrics["eval/reward_gap"] > 0

    # The reward peaks near 175 words/min on new sentences (not in the training templates).
    model = AudioRewardModel.from_pretrained(tmp_path / "run" / "audio_rm" / "model")
    for sentence in ("we walk home today.", "a red fox jumps high."):
        slow, target, fast = model.score(
            [render_clip(sentence, "en-us", rate, 50, 16000) for rate in (90, 175, 290)], 16000)
        assert target > max(slow, fast), (sentence, slow, target, fast)

    # The run is on record: training curves and the final metrics in the stage's MLflow run.
    client = MlflowClient(uri)
    child = client.get_run(_stage_run_id(client, outcome.parent_run_id))
    assert child.data.metrics["eval/accuracy"] == metrics["eval/accuracy"]
    assert len(client.get_metric_history(child.info.run_id, "train/loss")) == 10  # every 10 steps


def _stage_run_id(client: MlflowClient, parent_id: str) -> str:
    parent = client.get_run(parent_id)
    runs = client.search_runs([parent.info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")
    assert [r.data.tags["rlhf.stage"] for r in runs] == ["audio_rm"]
    return runs[0].info.run_id
