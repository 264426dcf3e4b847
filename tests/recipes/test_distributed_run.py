"""``rlhf run --num-processes 2``: the launcher starts two CPU workers (gloo) that run a recipe
end to end; rank 0 alone tracks and writes; user errors keep exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from rlhf.cli.app import app

RECIPE = """\
name: dp_run
seed: 3
tracking: {{uri: "sqlite:///{db}", experiment: dp}}
stages:
  - name: data
    kind: synthetic_preferences
    n_train_pairs: 8
    n_eval_pairs: 8
    n_sft: 16
    n_eval_prompts: 2
    n_rl_prompts: 16
  - name: warmup
    kind: sft
    policy: {{model: tiny:lm}}
    data: {{train: "@data/sft.jsonl"}}
    trainer: {{max_steps: 2, per_device_train_batch_size: 4, logging_steps: 1}}
  - name: rl
    kind: grpo
    policy: {{model: "@warmup/model", sampling: {{max_new_tokens: 4}}}}
    data: {{train: "@data/rl_prompts.jsonl", eval: "@data/eval_prompts.jsonl", eval_samples: 1}}
    rewards: [{{name: synthetic.sentiment}}]
    steps: 3
    prompts_per_step: 2
    group_size: 2
    micro_batch_size: 2
    learning_rate: 0.01
    save_every: 2
    log_completions_every: 1
"""


def rlhf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "rlhf"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def recipe(tmp_path):
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE.format(db=tmp_path / "mlflow.db")))
    return tmp_path


def test_two_processes_run_a_recipe_end_to_end(recipe):
    done = rlhf("run", "r.yaml", "--num-processes", "2", "--run-dir", "run", cwd=recipe)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "launching 2 processes (gloo)" in done.stderr
    assert done.stdout.count("dp_run: summary") == 1  # rank 0 alone prints the summary
    run = recipe / "run"
    state = json.loads((run / "state.json").read_text())
    assert [s["status"] for s in state["stages"].values()] == ["finished"] * 3
    for stage in ("data", "warmup", "rl"):
        assert (run / stage / "result.json").is_file()
    assert (run / "rl" / "model" / "model.safetensors").is_file()
    ckpt = run / "rl" / "checkpoints" / "checkpoint-3"
    assert sorted(p.name for p in ckpt.glob("rng-rank*")) == \
        ["rng-rank0.safetensors", "rng-rank1.safetensors"]
    # the completion table holds both ranks' rows: 2 prompts × 2 completions
    assert len((run / "rl" / "completions" / "step-000001.jsonl").read_text().splitlines()) == 4
    # the SFT stage really trained on two processes (the Trainer saves one RNG state per rank)
    assert len(list((run / "warmup" / "checkpoints").glob("checkpoint-2/rng_state_*.pth"))) == 2

    client = MlflowClient(f"sqlite:///{recipe / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("dp").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.run_id == state["parent_run_id"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == state["parent_run_id"]]
    assert sorted(r.data.tags["rlhf.stage"] for r in children) == ["data", "rl", "warmup"]
    rl = next(r for r in children if r.data.tags["rlhf.stage"] == "rl")
    steps = [m.step for m in client.get_metric_history(rl.info.run_id, "train/policy_loss")]
    assert steps == [1, 2, 3]  # logged once per step, not once per rank


def test_a_user_error_in_the_workers_keeps_exit_code_2(tmp_path):
    (tmp_path / "r.yaml").write_text(textwrap.dedent("""\
        name: dp_error
        tracking: {enabled: false}
        distributed: {num_processes: 2}
        stages:
          - name: rl
            kind: grpo
            policy: {model: tiny:lm}
            data: {train: missing.jsonl}
            rewards: [{name: synthetic.sentiment}]
            prompts_per_step: 2
        """))
    done = rlhf("run", "r.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "missing.jsonl: file not found" in done.stderr


@pytest.fixture
def cli(monkeypatch, recipe):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(recipe)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


@pytest.mark.skipif(torch.cuda.is_available(), reason="DeepSpeed is refused on CPU only")
def test_deepspeed_on_cpu_is_a_user_error(cli, recipe):
    result = cli("run", "r.yaml", "distributed.deepspeed=zero2")
    assert result.exit_code == 2, result.output
    assert "DeepSpeed ZeRO needs a GPU; run with deepspeed: null on CPU" in result.output
    assert not (recipe / "runs").exists()  # refused before any compute


def test_distributed_block_is_validated_and_shown(cli):
    result = cli("run", "r.yaml", "--num-processes", "2", "distributed.deepspeed=zero3",
                 "--dry-run")
    assert result.exit_code == 0, result.output
    assert "num_processes: 2" in result.output and "deepspeed: zero3" in result.output
    result = cli("run", "r.yaml", "distributed.deepspeed=nope.json")
    assert result.exit_code == 2 and "no DeepSpeed config 'nope.json'" in result.output
    result = cli("run", "r.yaml", "--num-processes", "4", "--dry-run")
    assert result.exit_code == 2
    assert "rl.prompts_per_step: 2 is not divisible by distributed.num_processes (4)" \
        in result.output


def test_shipped_deepspeed_configs_are_zero_2_and_3():
    from rlhf.recipe.schema import DistributedConfig

    for name, stage in (("zero2", 2), ("zero3", 3)):
        config = DistributedConfig(deepspeed=name)
        assert Path(config.deepspeed_path()).is_file() and config.zero_stage() == stage
        body = json.loads(Path(config.deepspeed_path()).read_text())
        assert body["bf16"]["enabled"] == "auto"
        assert body["train_micro_batch_size_per_gpu"] == "auto"
