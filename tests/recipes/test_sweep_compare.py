"""``rlhf sweep`` + ``rlhf compare`` end to end: real tiny recipe runs in a real MLflow store.

One sweep of a tiny GRPO recipe (data + 2 RL steps): variants ``short`` and ``long`` (two
reward designs) and ``flaky`` (its prompt file does not exist yet: it crashes at run time), two
seeds each. ``compare --json`` is checked against means and intervals recomputed here from the
metrics read back with ``MlflowClient``; ``--resume`` after the fix reruns only ``flaky``.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from rlhf.cli.app import app
from rlhf.cli.errors import Settings

RECIPE = textwrap.dedent("""
    name: sweep_tiny
    tracking: {experiment: sweep_tiny}
    stages:
      - name: data
        kind: synthetic_preferences
        n_train_pairs: 8
        n_eval_pairs: 8
        n_sft: 8
        n_eval_prompts: 2
        n_rl_prompts: 8
      - name: rl
        kind: grpo
        policy: {model: tiny:lm, sampling: {max_new_tokens: 4}}
        data: {train: "@data/rl_prompts.jsonl", eval: "@data/eval_prompts.jsonl",
               eval_samples: 2}
        rewards: [{name: synthetic.sentiment}]
        steps: 2
        prompts_per_step: 2
        group_size: 2
        learning_rate: 2.0e-3
        save_every: 10
        log_completions_every: 0
""")


def overlong(max_len):
    return [{"name": "length.overlong", "params": {"max_len": max_len, "cache": max_len - 2,
                                                    "unit": "chars"}}]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The sweep run once for the module: ``short`` and ``long`` finish, ``flaky`` fails."""
    folder = tmp_path_factory.mktemp("sweep")
    uri = f"sqlite:///{folder}/mlflow.db"
    (folder / "recipe.yaml").write_text(RECIPE)
    sweep = {"name": "tiny", "recipe": "recipe.yaml", "seeds": [0, 1],
             "variants": {"short": {"rl.rewards": overlong(12)},
                          "long": {"rl.rewards": overlong(24)},
                          "flaky": [f"rl.data.train={folder}/late_prompts.jsonl"]},
             "tracking": {"uri": uri}}
    (folder / "sweep.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setattr(Settings, "debug", False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = CliRunner().invoke(app, ["sweep", "sweep.yaml", "--sweep-id", "s1"])
    assert result.exit_code == 1, result.output  # flaky failed, the sweep went on
    assert "2 run(s) did not finish" in result.output
    return folder, uri


@pytest.fixture
def cli(swept, monkeypatch):
    folder, _ = swept
    monkeypatch.chdir(folder)
    monkeypatch.setattr(Settings, "debug", False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def read_back(uri, sweep_id):
    """{variant: {seed: {metric: value}}} of the finished runs, metrics of stages prefixed."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("sweep_tiny").experiment_id
    out = {}
    for run in client.search_runs([exp], f"tags.`rlhf.sweep` = '{sweep_id}'"):
        if run.info.status != "FINISHED" or "mlflow.parentRunId" in run.data.tags:
            continue
        metrics = dict(run.data.metrics)
        for child in client.search_runs([exp],
                                        f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"):
            metrics.update({f"{child.data.tags['rlhf.stage']}/{k}": v
                            for k, v in child.data.metrics.items()})
        out.setdefault(run.data.tags["rlhf.variant"], {})[int(run.data.tags["rlhf.seed"])] = \
            metrics
    return out


def bootstrap(values, resamples=10_000, seed=0):
    x = np.asarray(values, dtype=float)
    means = x[np.random.default_rng(seed).integers(0, len(x), (resamples, len(x)))].mean(1)
    return tuple(np.quantile(means, [0.025, 0.975]))


def test_sweep_runs_are_tagged_ordinary_runs(swept):
    folder, uri = swept
    state = json.loads((folder / "runs/sweeps/s1/sweep.json").read_text())
    assert {k: r["status"] for k, r in state["runs"].items()} == {
        "short/seed-0": "finished", "short/seed-1": "finished", "long/seed-0": "finished",
        "long/seed-1": "finished", "flaky/seed-0": "failed", "flaky/seed-1": "failed"}
    assert "late_prompts.jsonl" in state["runs"]["flaky/seed-0"]["error"]
    run_dir = folder / "runs/sweeps/s1/short/seed-1"
    assert json.loads((run_dir / "state.json").read_text())["stages"]["rl"]["status"] == \
        "finished"
    assert yaml.safe_load((run_dir / "recipe.yaml").read_text())["seed"] == 1
    run = MlflowClient(uri).get_run(state["runs"]["short/seed-1"]["parent_run_id"])
    assert run.info.run_name == "tiny/short/seed-1"
    assert {k: run.data.tags[k] for k in ("rlhf.sweep", "rlhf.sweep_name", "rlhf.variant",
                                          "rlhf.seed", "rlhf.reward_fingerprint")} == {
        "rlhf.sweep": "s1", "rlhf.sweep_name": "tiny", "rlhf.variant": "short",
        "rlhf.seed": "1", "rlhf.reward_fingerprint": state["runs"]["short/seed-1"]["fingerprint"]}


def test_compare_json_matches_the_runs_read_back(swept, cli):
    folder, uri = swept
    result = cli("compare", "--sweep", "s1", "--json", "--html", "report.html",
                 "--plot", "plot.png")  # the tracking URI comes from the sweep's state
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # one object, nothing else on stdout
    assert data["group_by"] == "variant"
    groups = {g["variant"]: g for g in data["groups"]}
    assert {"short", "long"} <= set(groups)
    truth = read_back(uri, "s1")
    assert data["metrics"] == ["rl/eval/reward_after", "rl/eval/reward_before",
                               "rl/eval/reward_gain"]
    for variant in ("short", "long"):
        g = groups[variant]
        assert g["n"] == 2 and g["seeds"] == [0, 1]
        for metric, s in g["metrics"].items():
            values = [truth[variant][seed][metric] for seed in (0, 1)]
            assert s["n"] == 2
            assert s["mean"] == pytest.approx(np.mean(values))
            assert s["std"] == pytest.approx(np.std(values, ddof=1))
            assert (s["ci_low"], s["ci_high"]) == pytest.approx(bootstrap(values))
            assert s["ci_low"] <= s["mean"] <= s["ci_high"]
    pair = next(p for p in data["pairs"] if {p["a"], p["b"]} == {"short", "long"}
                and p["metric"] == "rl/eval/reward_after")
    a = [truth[pair["a"]][s]["rl/eval/reward_after"] for s in (0, 1)]
    b = [truth[pair["b"]][s]["rl/eval/reward_after"] for s in (0, 1)]
    assert pair["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    assert pair["ci_low"] <= pair["diff"] <= pair["ci_high"]
    assert pair["excludes_zero"] == (pair["ci_low"] > 0 or pair["ci_high"] < 0)

    client = MlflowClient(uri)
    logged = client.get_run(data["comparison_run_id"])
    assert logged.data.tags["rlhf.comparison"] == "sweep s1"
    stored = json.loads(open(client.download_artifacts(logged.info.run_id, "comparison.json",
                                                       str(folder))).read())
    assert stored["groups"] == data["groups"]
    assert {a.path for a in client.list_artifacts(logged.info.run_id)} >= {
        "comparison.json", "groups.csv", "pairs.csv", "comparison.png", "report.html"}
    assert (folder / "plot.png").read_bytes()[:4] == b"\x89PNG"
    page = (folder / "report.html").read_text()
    assert "data:image/png;base64," in page and "rl/eval/reward_after" in page

    table = cli("compare", "--sweep", "s1", "--no-log", "--metric", "rl/eval/reward_a*")
    assert table.exit_code == 0, table.output
    assert "rl/eval/reward_after" in table.stdout and "short − long" in table.stdout
    assert "rl/eval/reward_before" not in table.stdout
    missing = cli("compare", "--sweep", "s1", "--no-log", "--metric", "rl/eval/reward_aftr")
    assert missing.exit_code == 2 and "did you mean 'rl/eval/reward_after'" in missing.output


def test_a_single_seed_gets_null_intervals(swept, cli):
    result = cli("compare", "--tag", "rlhf.sweep=s1", "--tag", "rlhf.seed=0", "--json",
                 "--no-log")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["comparison_run_id"] is None
    for g in data["groups"]:
        assert g["n"] == 1
        for s in g["metrics"].values():
            assert s["n"] == 1 and s["mean"] is not None
            assert s["std"] is None and s["ci_low"] is None and s["ci_high"] is None
    assert data["pairs"] and all(p["ci_low"] is None and p["excludes_zero"] is None
                                 for p in data["pairs"])


def test_crashed_runs_are_excluded_then_resume_reruns_only_them(swept, cli):
    folder, uri = swept
    state_file = folder / "runs/sweeps/s1/sweep.json"
    before = json.loads(state_file.read_text())["runs"]
    if before["flaky/seed-0"]["status"] == "failed":  # (not yet resumed by an earlier run)
        result = cli("compare", "--sweep", "s1", "--json", "--no-log")
        data = json.loads(result.stdout)
        assert "flaky" not in {g["variant"] for g in data["groups"]}
        assert sorted((x["variant"], x["seed"], x["status"]) for x in data["excluded"]) == [
            ("flaky", 0, "FAILED"), ("flaky", 1, "FAILED")]
        assert all("rl failed" in x["reason"] for x in data["excluded"])
        assert "excluded" in result.stderr and "flaky" in result.stderr

    rows = [json.dumps({"prompt": f"Tell me about the sea {i}."}) for i in range(4)]
    (folder / "late_prompts.jsonl").write_text("\n".join(rows) + "\n")
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("sweep_tiny").experiment_id
    n_runs = len(client.search_runs([exp], "tags.`rlhf.sweep` = 's1'"))
    result = cli("sweep", "sweep.yaml", "--resume")  # the newest sweep of this name: s1
    assert result.exit_code == 0, result.output
    after = json.loads(state_file.read_text())["runs"]
    assert all(r["status"] == "finished" for r in after.values())
    for key in before:
        same = {k: after[key][k] for k in ("parent_run_id", "run_dir")}
        assert same == {k: before[key][k] for k in ("parent_run_id", "run_dir")}
        assert after[key]["attempts"] == (2 if key.startswith("flaky") else 1)
    assert len(client.search_runs([exp], "tags.`rlhf.sweep` = 's1'")) == n_runs  # resumed
    run_state = json.loads((folder / "runs/sweeps/s1/flaky/seed-0/state.json").read_text())
    assert run_state["stages"]["data"]["status"] == "finished"

    result = cli("compare", "--sweep", "s1", "--json", "--no-log")
    data = json.loads(result.stdout)
    assert data["excluded"] == []
    assert {g["variant"]: g["n"] for g in data["groups"]} == {"short": 2, "long": 2, "flaky": 2}
    again = cli("sweep", "sweep.yaml", "--resume", "--sweep-id", "s1")
    assert again.exit_code == 0 and "(earlier)" in again.output  # nothing left to run
    assert len(client.search_runs([exp], "tags.`rlhf.sweep` = 's1'")) == n_runs


def test_parallel_runs_are_subprocesses_of_rlhf_run(tmp_path, monkeypatch):
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = {"recipe": "recipe.yaml", "seeds": [0, 1], "variants": {"only": ["rl.steps=1"]},
             "tracking": {"uri": uri}}
    (tmp_path / "par.yaml").write_text(yaml.safe_dump(sweep))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Settings, "debug", False)
    result = CliRunner().invoke(app, ["sweep", "par.yaml", "--parallel", "2", "--sweep-id", "p"])
    assert result.exit_code == 0, result.output
    state = json.loads((tmp_path / "runs/sweeps/p/sweep.json").read_text())["runs"]
    client = MlflowClient(uri)
    for key, record in state.items():
        assert record["status"] == "finished"
        log = (tmp_path / record["run_dir"] / "sweep-run.log").read_text()
        assert log.startswith("$ ") and " run " in log and "--tag rlhf.variant=only" in log
        run = client.get_run(record["parent_run_id"])
        assert run.data.tags["rlhf.seed"] == str(record["seed"])
        assert run.data.tags["rlhf.sweep"] == "p" and run.info.run_name == f"par/{key}"
