"""The quickstart, run as a user runs it (the `rlhf` console script), shows real learning and
leaves a complete MLflow record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient


def test_quickstart_learns_and_is_tracked(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("MLFLOW_TRACKING_URI", None)
    rlhf = Path(sys.executable).parent / "rlhf"
    proc = subprocess.run([str(rlhf), "run", "quickstart", "--run-dir", "run"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "quickstart: summary" in out and "held-out accuracy" in out
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db" in out

    results = {name: json.loads((tmp_path / "run" / name / "result.json").read_text())["metrics"]
               for name in ("reward_model", "evaluate")}
    # Reward model: well above chance on held-out pairs.
    assert results["reward_model"]["eval/accuracy"] >= 0.85
    # Policy: its ground-truth reward rises after DPO.
    before = results["evaluate"]["eval/before/reward_mean"]
    after = results["evaluate"]["eval/after/reward_mean"]
    assert after - before >= 0.1, (before, after)
    assert results["evaluate"]["eval/reward_gain"] == after - before

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.params["stages.3.kind"] == "dpo"
    assert parent.data.params["stages.3.trainer.beta"] == "0.1"
    assert len(parent.data.tags["rlhf.reward_fingerprint"]) == 12
    assert parent.data.tags["rlhf.toolkit_commit"]
    assert "recipe.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    children = {r.data.tags["rlhf.stage"]: r for r in runs if r is not parent}
    assert set(children) == {"data", "warmup", "reward_model", "dpo", "evaluate"}
    rm = children["reward_model"]
    assert rm.data.tags["rlhf.stage_kind"] == "reward_model"
    assert abs(rm.data.metrics["eval/accuracy"] - results["reward_model"]["eval/accuracy"]) < 1e-9
    loss_curve = client.get_metric_history(rm.info.run_id, "train/loss")
    assert len(loss_curve) >= 10 and loss_curve[-1].value < loss_curve[0].value
    artifacts = {a.path for a in client.list_artifacts(rm.info.run_id)}
    assert "result.json" in artifacts and "plots" in artifacts
    plots = {a.path for a in client.list_artifacts(rm.info.run_id, "plots")}
    assert "plots/train.png" in plots
    ev = {a.path for a in client.list_artifacts(children["evaluate"].info.run_id)}
    assert "samples.jsonl" in ev
