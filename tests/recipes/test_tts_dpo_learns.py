"""``tts_preference_dpo`` learns: speech pairs from the codec-token policy go through the real
embedded Argilla server (the session's ``argilla_server``), a scripted annotator with a hidden
preference (clips near 0.4 s) answers, the choices come back as the exact token ids the policy
sampled, DPO trains on them, and the hidden preference of held-out samples improves by an
asserted margin. The before/after metrics reach the MLflow parent run."""

from __future__ import annotations

import json
import time

import pytest
import torch
from mlflow.tracking import MlflowClient

from rlhf.recipe import load_recipe
from rlhf.recipe.runner import run_recipe

OVERRIDES = [
    "stages.data.n_train=32", "stages.data.n_eval=4",
    "stages.sample.n_pairs=32",
    "stages.annotate.annotators_per_pair=1", "stages.annotate.simulate.annotators=1",
    "stages.annotate.poll_seconds=0.2",
    "stages.evaluate.samples_per_prompt=8",
]


@pytest.fixture
def one_thread():
    """The tiny models run several times faster on one thread of a shared 2-core CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_dpo_on_annotated_codec_tokens_improves_the_hidden_preference(
        tmp_path, argilla_server, monkeypatch, one_thread):
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server.api_key)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    recipe = load_recipe("tts_preference_dpo", [f"tracking.uri={uri}", *OVERRIDES])
    start = time.monotonic()
    outcome = run_recipe(recipe, run_dir=tmp_path / "run")
    elapsed = time.monotonic() - start
    res = {name: r.metrics for name, r in outcome.results.items()}

    # the annotation loop: every pair answered and decided on the server
    assert res["annotate"]["annotation/pairs/total"] == 32
    kept = int(res["annotate"]["annotation/pairs/kept"])
    assert kept >= 28 and res["prefs"]["data/pairs"] == kept
    # the annotator preferred clips nearer 0.4 s (10 frames): shorter ones, from ~0.9 s
    assert res["prefs"]["data/chosen_frames_mean"] < res["prefs"]["data/rejected_frames_mean"]

    # chosen/rejected map back to the exact ids sampled for each WAV
    run = tmp_path / "run"
    prefs = [json.loads(x) for x in (run / "annotate" / "preferences.jsonl").read_text()
             .splitlines()]
    pairs = [json.loads(x) for x in (run / "prefs" / "dpo_pairs.jsonl").read_text().splitlines()]
    for pref, pair in zip(prefs, pairs, strict=True):
        for side in ("chosen", "rejected"):
            sidecar = json.loads(open(pref[side].removesuffix(".wav") + ".tokens.json").read())
            assert pair[f"{side}_ids"] == sidecar["completion_ids"]
            assert pair["prompt_ids"] == sidecar["prompt_ids"]

    # DPO fits the pairs under the policy's restricted distribution (reference log-probs too)
    assert res["dpo"]["train/final_pair_accuracy"] >= 0.75
    assert res["dpo"]["train/final_loss"] < 0.6931  # below log 2, the loss at the start
    # the hidden preference of held-out samples improves (measured +0.11; asserted about half)
    before = res["evaluate"]["eval/before/preference_mean"]
    after = res["evaluate"]["eval/after/preference_mean"]
    print(f"hidden preference {before:.3f} -> {after:.3f}, dpo {res['dpo']}, mean seconds "
          f"{res['evaluate']['eval/before/seconds_mean']:.2f} -> "
          f"{res['evaluate']['eval/after/seconds_mean']:.2f}; {elapsed:.0f} s")
    assert after - before >= 0.05
    parent = MlflowClient(uri).get_run(outcome.parent_run_id)
    assert parent.data.metrics["eval/before/preference_mean"] == pytest.approx(before)
    assert parent.data.metrics["eval/after/preference_mean"] == pytest.approx(after)
