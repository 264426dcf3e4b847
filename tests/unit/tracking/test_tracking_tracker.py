"""RecipeTracker/StageTracker on a real local MLflow SQLite store, read back with MlflowClient."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from rlhf.errors import UserError
from rlhf.tracking import RecipeTracker, StageTracker, reward_fingerprint

CONFIG = {
    "recipe": "demo",
    "stages": [{"kind": "reward_model", "lr": 1e-5}, {"kind": "dapo", "group": 8}],
    "tracking": {"api_key": "sk-live-123"},
    "judge": {"token": "hf_abc", "model": "tiny-judge"},
}
REWARDS = [{"name": "wer", "weight": 1.0, "params": {}}, {"name": "length", "weight": 0.1}]
RM_STEPS = range(1, 6)
DAPO_STEPS = range(0, 4)


@pytest.fixture(scope="module")
def scenario(store_uri: str) -> dict:
    """A whole recipe run: parent + two stages, params, metrics, artifacts, then end."""
    tracker = RecipeTracker(
        store_uri,
        experiment="scenario",
        run_name="demo-run",
        tags={"rlhf.reward_fingerprint": reward_fingerprint(REWARDS), "rlhf.recipe": "demo"},
    )
    parent = tracker.start()
    tracker.log_params(CONFIG)

    rm = tracker.stage("reward_model", kind="reward_model", tags={"rlhf.extra": "x"})
    for step in RM_STEPS:
        rm.log_metrics({"train/loss": 1.0 / step, "train/acc": step / 10}, step=step)
    rm.log_params({"optim": {"lr": 1e-5}})
    rm.log_dict({"accuracy": 0.5, "pairs": [1, 2]}, "summary.json")
    rm.log_text("hello stage", "notes/readme.txt")
    rm.close()

    with tracker.stage("dapo", kind="dapo") as dapo:
        for step in DAPO_STEPS:
            dapo.log_metrics({"train/reward": 0.1 * step, "train/kl": 0.01 * step}, step=step)
            if step % 2:
                dapo.log_metrics({"eval/accuracy": 0.2 * step}, step=step)
        dapo.log_dict({"group": 8}, "config/dapo.yaml")
    stage_runs = tracker.stage_runs()
    tracker.end()
    return {
        "tracker": tracker,
        "parent": parent,
        "rm": rm.run_id,
        "dapo": dapo.run_id,
        "rm_history": rm.history,
        "dapo_history": dapo.history,
        "stage_runs": stage_runs,
    }


def test_parent_and_child_runs(scenario: dict, reader) -> None:
    parent = reader.get_run(scenario["parent"])
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "demo-run"
    assert parent.data.tags["rlhf.reward_fingerprint"] == reward_fingerprint(REWARDS)
    assert parent.data.tags["rlhf.toolkit_commit"]
    children = reader.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{scenario['parent']}'",
    )
    by_name = {r.info.run_name: r for r in children}
    assert set(by_name) == {"reward_model", "dapo"}
    rm = by_name["reward_model"]
    assert rm.info.run_id == scenario["rm"]
    assert rm.info.status == "FINISHED"
    assert rm.data.tags["rlhf.stage"] == "reward_model"
    assert rm.data.tags["rlhf.stage_kind"] == "reward_model"
    assert rm.data.tags["rlhf.extra"] == "x"
    assert by_name["dapo"].data.tags["rlhf.stage_kind"] == "dapo"
    assert scenario["stage_runs"] == {"reward_model": scenario["rm"], "dapo": scenario["dapo"]}


def test_params_flattened_and_redacted(scenario: dict, reader) -> None:
    params = reader.get_run(scenario["parent"]).data.params
    assert params["stages.0.kind"] == "reward_model"
    assert params["stages.0.lr"] == "1e-05"
    assert params["stages.1.group"] == "8"
    assert params["judge.model"] == "tiny-judge"
    assert params["tracking.api_key"] == "***"
    assert params["judge.token"] == "***"
    everything = json.dumps(params) + json.dumps(reader.get_run(scenario["parent"]).data.tags)
    assert "sk-live-123" not in everything and "hf_abc" not in everything
    assert reader.get_run(scenario["rm"]).data.params == {"optim.lr": "1e-05"}


def test_metric_histories_read_back(scenario: dict, reader) -> None:
    for run_key, history_key in (("rm", "rm_history"), ("dapo", "dapo_history")):
        run_id = scenario[run_key]
        logged = scenario[history_key]
        assert set(reader.get_run(run_id).data.metrics) == set(logged)
        for key, points in logged.items():
            stored = sorted((m.step, m.value) for m in reader.get_metric_history(run_id, key))
            assert stored == sorted(points), key
    assert scenario["rm_history"]["train/loss"] == [(s, 1.0 / s) for s in RM_STEPS]
    assert scenario["dapo_history"]["eval/accuracy"] == [(1, 0.2), (3, pytest.approx(0.6))]


def test_artifacts_plots_and_files(scenario: dict, reader, store_dir: Path) -> None:
    rm, dapo = scenario["rm"], scenario["dapo"]
    assert {f.path for f in reader.list_artifacts(rm, "plots")} == {"plots/train.png"}
    assert {f.path for f in reader.list_artifacts(dapo, "plots")} == {
        "plots/eval.png",
        "plots/train.png",
    }
    top = {f.path for f in reader.list_artifacts(rm)}
    assert {"plots", "summary.json", "notes"} <= top
    # Artifacts live beside the database, in <dir of db>/mlartifacts/<run id>/artifacts/.
    root = store_dir / "mlartifacts" / rm / "artifacts"
    assert (root / "plots" / "train.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((root / "summary.json").read_text()) == {"accuracy": 0.5, "pairs": [1, 2]}
    assert (root / "notes" / "readme.txt").read_text() == "hello stage"
    dapo_yaml = store_dir / "mlartifacts" / dapo / "artifacts" / "config" / "dapo.yaml"
    assert yaml.safe_load(dapo_yaml.read_text()) == {"group": 8}
    experiment = reader.get_experiment(scenario["tracker"].experiment_id)
    assert experiment.artifact_location == (store_dir / "mlartifacts").as_uri()
    assert scenario["tracker"].uri.endswith("/mlflow.db")


def test_metrics_are_batched(store_uri: str, reader, experiment_name: str, monkeypatch) -> None:
    tracker = RecipeTracker(store_uri, experiment_name, "batched")
    tracker.start()
    client = tracker.client
    calls: list[int] = []
    real_log_batch = client.log_batch

    def counting_log_batch(run_id, metrics=(), params=(), tags=(), **kwargs):
        calls.append(len(metrics))
        return real_log_batch(run_id, metrics=metrics, params=params, tags=tags, **kwargs)

    def no_log_metric(*args, **kwargs):
        raise AssertionError("log_metric must not be called: metrics are batched")

    monkeypatch.setattr(client, "log_batch", counting_log_batch)
    monkeypatch.setattr(client, "log_metric", no_log_metric)
    stage = tracker.stage("sft", "sft")
    names = [f"train/m{i}" for i in range(5)]
    for step in range(100):
        stage.log_metrics({name: step * (i + 1) for i, name in enumerate(names)}, step=step)
    stage.close()
    tracker.end()
    metric_calls = [n for n in calls if n]
    assert sum(metric_calls) == 500
    assert len(metric_calls) == 3  # flush at 200 and 400 buffered values, then at close
    assert len(calls) <= 4
    history = reader.get_metric_history(stage.run_id, "train/m4")
    assert sorted((m.step, m.value) for m in history) == [(s, 5.0 * s) for s in range(100)]


def test_non_numeric_and_non_finite_are_skipped(store_uri: str, reader, experiment_name) -> None:
    with RecipeTracker(store_uri, experiment_name, "skips") as tracker:
        stage = tracker.stage("s", "sft")
        kept = stage.log_metrics(
            {"a": float("nan"), "b": "text", "c": np.float32(1.5), "d": math.inf, "e": 2},
            step=1,
        )
        stage.log_metrics({"f": np.array([3.0]), "g": None}, step=2)
        assert kept == 2 and stage.skipped == 4
        stage.close()
    assert set(reader.get_run(stage.run_id).data.metrics) == {"c", "e", "f"}


def test_resume_parent_and_stage(store_uri: str, reader, experiment_name: str) -> None:
    first = RecipeTracker(store_uri, experiment_name, "resumable")
    parent = first.start()
    first.log_params(CONFIG)
    stage = first.stage("sft", "sft")
    for step in (1, 2, 3):
        stage.log_metrics({"train/loss": 1.0 / step}, step=step)
    stage.flush()
    first.end("KILLED")  # the interrupted run; the open stage is closed with the same status
    assert reader.get_run(stage.run_id).info.status == "KILLED"

    second = RecipeTracker(store_uri, experiment_name, "resumable")
    assert second.start(resume_run_id=parent) == parent
    assert reader.get_run(parent).info.status == "RUNNING"
    second.log_params(CONFIG)  # same values again: fine
    assert second.stage_runs() == {"sft": stage.run_id}
    resumed = second.stage("sft", "sft", resume_run_id=stage.run_id)
    assert resumed.run_id == stage.run_id
    assert resumed.history["train/loss"] == [(1, 1.0), (2, 0.5), (3, 1.0 / 3)]
    for step in (4, 5, 6):
        resumed.log_metrics({"train/loss": 1.0 / step}, step=step)
    with pytest.raises(UserError, match="stages.1.group"):
        changed = [{"kind": "reward_model", "lr": 1e-5}, {"kind": "dapo", "group": 4}]
        second.log_params({**CONFIG, "stages": changed})
    resumed.log_params({"lr": 1})
    with pytest.raises(UserError, match="'1' -> '2'"):
        resumed.log_params({"lr": 2})
    resumed.close()
    second.end()
    assert reader.get_run(parent).info.status == "FINISHED"
    assert reader.get_run(stage.run_id).info.status == "FINISHED"
    steps = sorted(m.step for m in reader.get_metric_history(stage.run_id, "train/loss"))
    assert steps == [1, 2, 3, 4, 5, 6]
    assert {f.path for f in reader.list_artifacts(stage.run_id, "plots")} == {"plots/train.png"}


def test_resume_errors(store_uri: str, experiment_name: str) -> None:
    tracker = RecipeTracker(store_uri, experiment_name, "a")
    tracker.start()
    other = RecipeTracker(store_uri, experiment_name, "b")
    other.start()
    foreign = other.stage("x", "sft")
    with pytest.raises(UserError, match="is not a stage of run"):
        tracker.stage("x", "sft", resume_run_id=foreign.run_id)
    with pytest.raises(UserError, match="not found"):
        RecipeTracker(store_uri, experiment_name, "c").start(resume_run_id="0" * 32)
    other.end()
    tracker.end()


def test_exceptions_mark_runs_failed(store_uri: str, reader, experiment_name: str) -> None:
    with pytest.raises(KeyError):
        with RecipeTracker(store_uri, experiment_name, "boom") as tracker:
            with pytest.raises(ValueError):
                with tracker.stage("bad", "sft") as stage:
                    stage.log_metrics({"train/loss": 1.0}, step=0)
                    raise ValueError("stage failed")
            raise KeyError("recipe failed")
    assert reader.get_run(stage.run_id).info.status == "FAILED"
    assert reader.get_run(tracker.run_id).info.status == "FAILED"
    with pytest.raises(RuntimeError, match="closed"):
        stage.log_metrics({"x": 1.0}, step=1)
    with pytest.raises(ValueError, match="status"):
        tracker.end("DONE")


def test_disabled_tracker_touches_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    tracker = RecipeTracker(None, "exp", "run", enabled=False)
    assert tracker.uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert tracker.start() is None and tracker.run_id is None and tracker.experiment_id is None
    tracker.log_params(CONFIG)
    tracker.set_tags({"a": "b"})
    with tracker.stage("s", "sft") as stage:
        assert isinstance(stage, StageTracker) and stage.run_id is None
        stage.log_metrics({"train/loss": 1.0}, step=1)
        stage.log_metrics({"train/loss": 0.5}, step=2)
        stage.log_params({"a": 1})
        stage.set_tags({"a": 1})
        stage.log_text("x", "x.txt")
        stage.log_dict({"a": 1}, "a.json")
        stage.log_artifact(tmp_path)
    assert stage.history == {"train/loss": [(1, 1.0), (2, 0.5)]}
    assert tracker.stage_runs() == {}
    tracker.end()
    assert list(tmp_path.iterdir()) == []


def test_params_are_batched_by_100(store_uri: str, reader, experiment_name, monkeypatch) -> None:
    tracker = RecipeTracker(store_uri, experiment_name, "many-params")
    tracker.start()
    calls: list[int] = []
    real_log_batch = tracker.client.log_batch

    def counting_log_batch(run_id, metrics=(), params=(), tags=(), **kwargs):
        calls.append(len(params))
        return real_log_batch(run_id, metrics=metrics, params=params, tags=tags, **kwargs)

    monkeypatch.setattr(tracker.client, "log_batch", counting_log_batch)
    config = {"layers": [{"width": i} for i in range(250)]}
    tracker.log_params(config)
    assert calls == [100, 100, 50]
    tracker.log_params(config)  # all already there with the same values: nothing written
    assert calls == [100, 100, 50]
    tracker.end()
    params = reader.get_run(tracker.run_id).data.params
    assert len(params) == 250 and params["layers.249.width"] == "249"


def test_stage_logs_metrics_on_the_parent_run(store_uri: str, reader, experiment_name) -> None:
    """``log_parent_metrics``: an evaluation stage's results land on the recipe's parent run."""
    with RecipeTracker(store_uri, experiment_name, "parent-metrics") as tracker:
        with tracker.stage("eval", "rerank_eval") as stage:
            assert stage.parent_run_id == tracker.run_id
            kept = stage.log_parent_metrics({"eval/rl/ndcg_at_5": 0.5, "eval/sft/x": math.nan,
                                             "eval/pre_rank/recall_at_1": np.float32(0.25)})
            stage.log_metrics({"own": 1.0}, step=0)
        assert kept == 2 and stage.parent_metrics == {"eval/rl/ndcg_at_5": 0.5,
                                                      "eval/pre_rank/recall_at_1": 0.25}
    assert reader.get_run(tracker.run_id).data.metrics == {"eval/rl/ndcg_at_5": 0.5,
                                                           "eval/pre_rank/recall_at_1": 0.25}
    assert reader.get_run(stage.run_id).data.metrics == {"own": 1.0}
    disabled = RecipeTracker(None, "exp", "run", enabled=False)
    with disabled.stage("eval", "rerank_eval") as off:
        assert off.log_parent_metrics({"eval/rl/ndcg_at_5": 0.5}) == 1
    assert off.parent_metrics == {"eval/rl/ndcg_at_5": 0.5}
