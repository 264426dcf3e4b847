"""MlflowMetricsCallback driven directly (no Trainer): key renaming, steps, flush at train end."""

from __future__ import annotations

import sys

from transformers import TrainerControl, TrainerState

from rlhf.tracking import RecipeTracker
from rlhf.tracking.callback import MlflowMetricsCallback, metric_name


def test_metric_name() -> None:
    assert metric_name("loss") == "train/loss"
    assert metric_name("eval_accuracy") == "eval/accuracy"
    assert metric_name("eval_rewards/chosen") == "eval/rewards/chosen"
    assert metric_name("rewards/margins") == "train/rewards/margins"


def test_callback_forwards_logs(store_uri: str, reader, experiment_name: str) -> None:
    tracker = RecipeTracker(store_uri, experiment_name, "trainer")
    tracker.start()
    stage = tracker.stage("dpo", "dpo")
    callback = MlflowMetricsCallback(stage)
    control = TrainerControl()
    state = TrainerState(global_step=10)
    logs = {"loss": 0.5, "learning_rate": 1e-5, "total_flos": 1e12, "epoch": 0.1, "note": "x"}
    assert callback.on_log(None, state, control, logs=logs) is control
    state.global_step = 20
    callback.on_log(None, state, control, logs={"eval_accuracy": 0.8, "eval_loss": 0.4})
    assert stage.pending > 0  # buffered, not yet written
    callback.on_train_end(None, state, control)
    assert stage.pending == 0
    run = reader.get_run(stage.run_id)
    assert set(run.data.metrics) == {
        "train/loss",
        "train/learning_rate",
        "train/epoch",
        "eval/accuracy",
        "eval/loss",
    }

    def points(key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in reader.get_metric_history(stage.run_id, key)]

    assert points("train/loss") == [(10, 0.5)]
    assert points("eval/accuracy") == [(20, 0.8)]
    assert stage.skipped == 1  # the string "note"
    tracker.end()


def test_callback_only_on_main_process() -> None:
    tracker = RecipeTracker(None, "x", "y", enabled=False)
    stage = tracker.stage("s", "sft")
    callback = MlflowMetricsCallback(stage)
    worker = TrainerState(global_step=1, is_world_process_zero=False)
    callback.on_log(None, worker, TrainerControl(), logs={"loss": 1.0})
    assert stage.history == {}
    callback.on_log(None, TrainerState(global_step=1), TrainerControl(), logs={"loss": 1.0})
    assert stage.history == {"train/loss": [(1, 1.0)]}


def test_package_import_is_light() -> None:
    import subprocess

    heavy = "('mlflow', 'transformers', 'matplotlib', 'torch')"
    code = f"import sys, rlhf.tracking; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
