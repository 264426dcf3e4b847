"""``rlhf rewards train | eval``: a one-stage recipe through the normal runner, then evaluation."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlhf.cli.app import app
from rlhf.cli.errors import Settings
from rlhf.cli.rewards import stage_overrides, train_recipe


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Settings, "debug", False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def write_pairs(path, n, annotators=False):
    from rewards.preference.data import bradley_terry_pairs

    rows = bradley_terry_pairs(n, seed=0)
    for i, r in enumerate(rows):
        if annotators:
            r["annotator"] = f"ann{i % 2}"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_train_recipe_and_overrides_shapes(tmp_path):
    text = train_recipe(Path("a.jsonl"), Path("b.jsonl"), None, False, 5)
    stage = text["stages"][0]
    assert stage["kind"] == "reward_model" and stage["model"] == {"model": "tiny:reward"}
    assert stage["trainer"] == {"max_steps": 5} and Path(stage["data"]["eval"]).is_absolute()
    assert text["tracking"] == {"enabled": True, "uri": None, "experiment": "rewards_train"}
    audio = train_recipe(Path("a.jsonl"), None, "tiny:whisper", True, 7)["stages"][0]
    assert audio["kind"] == "audio_reward_model" and audio["model"] == {"encoder": "tiny:whisper"}
    assert audio["steps"] == 7 and "eval" not in audio["data"]
    assert stage_overrides(["trainer.learning_rate=1e-3", "ties=half", "seed=3",
                            "tracking.enabled=false"]) == [
        "stages.reward_model.trainer.learning_rate=1e-3", "stages.reward_model.ties=half",
        "seed=3", "tracking.enabled=false"]


def test_audio_recipe_validates_with_the_audio_stage(tmp_path):
    pytest.importorskip("rewards.preference.audio_trainer")
    from rlhf.recipe.loader import validate_recipe

    raw = train_recipe(tmp_path / "a.jsonl", None, None, True, 3)
    recipe = validate_recipe(raw, "test", stage_overrides(["batch_size=4", "ties=half"]))
    options = recipe.stage("reward_model").options
    assert (options.steps, options.batch_size, options.ties) == (3, 4, "half")


def test_train_then_eval_end_to_end(cli, tmp_path):
    from mlflow.tracking import MlflowClient

    train = write_pairs(tmp_path / "train.jsonl", 32)
    held = write_pairs(tmp_path / "held.jsonl", 12, annotators=True)
    result = cli("rewards", "train", "--data", train, "--eval", held, "--steps", "2",
                 "--output", "rm", "trainer.per_device_train_batch_size=4", "ties=half",
                 "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["output"] == "rm" and out["metrics"]["eval/n_pairs"] == 12
    assert {"eval/accuracy", "eval/ece", "eval/reward_gap"} <= set(out["metrics"])
    assert (tmp_path / "rm" / "config.json").is_file()
    assert (tmp_path / "rm" / "reliability.png").is_file()
    # tracked in the default MLflow store (./mlflow.db), diagram logged with the stage run
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("rewards_train")
    child = [r for r in client.search_runs([exp.experiment_id])
             if r.data.tags.get("rlhf.stage") == "reward_model"][0]
    assert "eval/ece" in child.data.metrics
    assert "reliability.png" in {a.path for a in client.list_artifacts(child.info.run_id)}

    result = cli("rewards", "eval", "rm", "--data", held, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["n"] == 12 and got["accuracy"] == pytest.approx(out["metrics"]["eval/accuracy"])
    assert got["ece"] == pytest.approx(out["metrics"]["eval/ece"], abs=1e-3)
    assert set(got["per_annotator"]) == {"ann0", "ann1"}
    result = cli("rewards", "eval", "rm", "--data", held, "--diagram", "d.png")
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "ece" in result.output and "ann1" in result.output
    assert (tmp_path / "d.png").is_file()

    # a non-empty --output is refused before any training
    result = cli("rewards", "train", "--data", train, "--output", "rm")
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_user_errors_exit_2(cli, tmp_path):
    good = write_pairs(tmp_path / "p.jsonl", 4)
    result = cli("rewards", "train", "--data", "missing.jsonl")
    assert result.exit_code == 2 and "missing.jsonl: no such file" in result.output
    result = cli("rewards", "train", "--data", good, "trainer.no_such_key=1")
    assert result.exit_code == 2 and "no_such_key" in result.output
    result = cli("rewards", "train", "--data", good, "ties=maybe")
    assert result.exit_code == 2 and "ties" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    result = cli("rewards", "eval", "tiny:reward", "--data", str(bad))
    assert result.exit_code == 2 and "bad.jsonl:1: rejected: missing" in result.output
    result = cli("rewards", "eval", "./no/such/model", "--data", good)
    assert result.exit_code == 2 and "does not exist" in result.output
    ties = tmp_path / "ties.jsonl"
    ties.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b", "tie": True}) + "\n")
    result = cli("rewards", "eval", "tiny:reward", "--data", str(ties))
    assert result.exit_code == 2 and "ties" in result.output
