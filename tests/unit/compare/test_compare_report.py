"""The comparison report on synthetic MLflow runs: tables, excluded runs, audio side by side."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import soundfile as sf
from mlflow.tracking import MlflowClient

from rlhf.compare import run_comparison


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating one runs MLflow's migrations, seconds)."""
    from rlhf.tracking.store import artifact_root, make_client

    uri = f"sqlite:///{tmp_path_factory.mktemp('store')}/mlflow.db"
    return make_client(uri), artifact_root(uri)


@pytest.fixture
def client(store, request, monkeypatch):
    """The store, with an experiment of this test's own (named after the test)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    c, root = store
    c.experiment = request.node.name
    c.create_experiment(c.experiment, artifact_location=root)
    return c


def tone(path, freq):
    t = np.arange(1600) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)
    return path


def fake_run(client, tmp_path, variant, seed, value, status="FINISHED", audio=None):
    """A recipe parent run with one stage ``evaluate`` holding ``eval/after/reward_mean``, in
    sweep ``S-<experiment>``."""
    exp = client.get_experiment_by_name(client.experiment).experiment_id
    run_dir = tmp_path / f"run-{variant}-{seed}"
    tags = {"rlhf.recipe": "synthetic", "rlhf.sweep": f"S-{client.experiment}",
            "rlhf.variant": variant,
            "rlhf.seed": str(seed), "rlhf.reward_fingerprint": f"fp-{variant}",
            "rlhf.run_dir": str(run_dir)}
    parent = client.create_run(exp, run_name=f"{variant}/{seed}", tags=tags).info.run_id
    child = client.create_run(exp, run_name="evaluate",
                              tags={"mlflow.parentRunId": parent, "rlhf.stage": "evaluate"})
    child = child.info.run_id
    client.log_metric(child, "eval/after/reward_mean", value)
    client.log_metric(parent, "eval/summary", value * 2)
    if audio == "artifacts":
        folder = tmp_path / f"wav-{variant}"
        folder.mkdir()
        tone(folder / "p0.wav", 440)
        tone(folder / "p1.wav", 660)
        client.log_artifacts(child, str(folder), "samples")
    elif audio == "table":
        (run_dir / "evaluate" / "audio").mkdir(parents=True)
        tone(run_dir / "evaluate" / "audio" / "p0.wav", 330)
        table = tmp_path / "samples.jsonl"
        table.write_text(json.dumps({"prompt": "Say hello", "audio": "audio/p0.wav"}) + "\n")
        client.log_artifact(child, str(table))
    client.set_terminated(child, status=status)
    client.set_terminated(parent, status=status)
    return parent


def test_report_tables_excluded_runs_and_audio_side_by_side(client, tmp_path):
    fake_run(client, tmp_path, "plain", 0, 0.2, audio="artifacts")
    fake_run(client, tmp_path, "plain", 1, 0.4)
    fake_run(client, tmp_path, "judge", 0, 0.5, audio="table")
    fake_run(client, tmp_path, "judge", 1, 0.7)
    crashed = fake_run(client, tmp_path, "judge", 2, 9.9, status="FAILED")
    out = run_comparison(client, sweep=f"S-{client.experiment}", html=tmp_path / "report.html",
                         plot=tmp_path / "plot.png")
    result = out.result
    assert [g["variant"] for g in result["groups"]] == ["plain", "judge"]
    assert result["metrics"] == ["eval/summary", "evaluate/eval/after/reward_mean"]
    judge = result["groups"][1]
    assert judge["n"] == 2 and judge["seeds"] == [0, 1]
    assert judge["metrics"]["evaluate/eval/after/reward_mean"]["mean"] == pytest.approx(0.6)
    assert [x["run_id"] for x in result["excluded"]] == [crashed]
    assert result["excluded"][0]["reason"] == "status FAILED (evaluate failed)"

    page = (tmp_path / "report.html").read_text()
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    assert "data:image/png;base64," in page and "judge/2" in page  # the excluded run is listed
    assert not re.search(r"(src|href)=['\"](?!data:)", page)  # nothing outside the file
    players = re.findall(r"<audio controls preload='none' src='data:audio/wav;base64,([^']+)'",
                         page)
    assert len(players) == 3  # plain: samples/p0.wav, samples/p1.wav; judge: the table's row
    header = page[page.index("<h2>Audio samples</h2>"):]
    assert header.index(">plain<") < header.index(">judge<")  # one column per variant
    assert "evaluate/samples/p0.wav" in header and "evaluate/samples.jsonl#0:audio" in header
    assert "Say hello" in header
    decoded = base64.b64decode(players[0])
    assert decoded[:4] == b"RIFF"

    logged = MlflowClient(client.tracking_uri).get_run(out.run_id)
    assert logged.data.tags["rlhf.comparison"] == f"sweep S-{client.experiment}"
    names = {a.path for a in client.list_artifacts(out.run_id)}
    assert names == {"comparison.json", "groups.csv", "pairs.csv", "comparison.png",
                     "report.html"}


def test_group_by_fingerprint_without_a_sweep(client, tmp_path):
    fake_run(client, tmp_path, "a", 0, 0.1)
    fake_run(client, tmp_path, "a", 1, 0.3)
    fake_run(client, tmp_path, "b", 0, 0.2)
    client.set_tag(fake_run(client, tmp_path, "b", 1, 0.4), "rlhf.sweep", "other")
    out = run_comparison(client, experiment=client.experiment, log=False)
    assert out.result["group_by"] == "fingerprint" and out.run_id is None
    assert [(g["variant"], g["n"]) for g in out.result["groups"]] == [("fp-a", 2), ("fp-b", 2)]
    pair = [p for p in out.result["pairs"] if p["metric"] == "eval/summary"][0]
    assert pair["diff"] == pytest.approx(2 * (0.2 - 0.3))
