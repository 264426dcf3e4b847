"""The annotation loop against the real embedded Argilla server (``argilla_server`` fixture).

Speech pairs (eSpeak NG) are pushed; scripted annotators with their own API keys take records
from their pending queues through the REST API and answer; pull aggregates the answers back
into the original A/B orientation. Also: re-push is a no-op, a killed server loses and
duplicates nothing, prompts are stored escaped, the CLI and the ``annotate`` stage.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from annotation.aggregate import LABELS, fleiss_kappa
from annotation.argilla.backend import ArgillaBackend, unescape_text
from annotation.argilla.connection import Connection
from annotation.argilla.records import FIELD_FIRST, FIELD_PROMPT, META_ORDER
from annotation.outbox import Outbox
from annotation.pairs import load_pairs, make_pair
from annotation.simulate import (
    ScriptedAnnotator, loudness, make_annotators, run_annotators, speaking_rate,
)
from rlhf.audio.io import read_audio
from rlhf.errors import UserError

WS = "argilla"


@pytest.fixture(scope="module")
def speech_pairs(tmp_path_factory) -> Path:
    from annotation.speech_pairs import render_speech_pairs

    return render_speech_pairs(tmp_path_factory.mktemp("speech"), 8, seed=1)


@pytest.fixture
def owner(argilla_server) -> Connection:
    return Connection(argilla_server.url, argilla_server.api_key, "test")


def expected_choice(pair, quality) -> str:
    (wa, sra), (wb, srb) = read_audio(pair.audio_a), read_audio(pair.audio_b)
    qa, qb = quality(wa, sra, pair.prompt), quality(wb, srb, pair.prompt)
    assert qa != qb
    return "A" if qa > qb else "B"


def server_keys(backend: ArgillaBackend) -> list[str]:
    return [str(r.external_id) for r in backend.iter_records()]


def test_push_annotate_pull(owner, speech_pairs, tmp_path):
    pairs, _ = load_pairs(speech_pairs)
    outbox = tmp_path / "outbox.jsonl"
    backend = ArgillaBackend(owner, "loop-main", WS, outbox=outbox, min_submitted=3, batch_size=3)
    report = backend.push(pairs)
    assert (report.total, report.sent, report.already_sent, report.batches) == (8, 8, 0, 3)

    # the owner sees the hidden order, and both orders occur
    orders = {str(r.external_id): (r.metadata if isinstance(r.metadata, dict) else
                                   {m.name: m.value for m in r.metadata})[META_ORDER]
              for r in backend.iter_records()}
    assert sorted(orders) == sorted(p.key for p in pairs) and set(orders.values()) == {"AB", "BA"}

    quality = speaking_rate()
    annotators = make_annotators(owner, 3, WS, quality, prefix="loop-main-")
    ds_id = annotators[0].dataset_id("loop-main", WS)
    queue, total = annotators[0].pending(ds_id, limit=50)
    assert total == 8 and len(queue) == 8
    for record in queue:  # what an annotator gets: players, escaped prompt, no hidden metadata
        assert record["fields"][FIELD_FIRST].startswith("<audio controls")
        assert not {"order", "audio_a", "audio_b", "pair_id"} & set(record["metadata"] or {})
    assert backend.progress().completed == 0

    assert run_annotators(annotators, "loop-main", WS) == {a.name: 8 for a in annotators}
    prog = backend.progress()
    assert (prog.total, prog.completed, prog.pending) == (8, 8, 0)
    assert {n: c["submitted"] for n, c in prog.users.items()} == {a.name: 8 for a in annotators}
    assert annotators[0].pending(ds_id)[1] == 0

    result = backend.pull()
    assert result.counts["kept"] == 8 and result.counts["decided"] == 8
    by_id = {r["id"]: r for r in result.preferences}
    for pair in pairs:
        row = by_id[pair.id]
        want = expected_choice(pair, quality)
        assert (row["chosen"], row["rejected"]) == (
            (pair.audio_a, pair.audio_b) if want == "A" else (pair.audio_b, pair.audio_a))
        assert row["votes"] == {"chosen": 3, "rejected": 0, "tie": 0, "discarded": 0}
        assert row["annotators"] == sorted(a.name for a in annotators)
        assert row["prompt"] == pair.prompt and row["metadata"] == pair.metadata
        assert row["margin"] is None or row["margin"] > 0
    assert result.agreement.fleiss_kappa == pytest.approx(1.0)
    assert result.agreement.n_items == 8 and len(result.agreement.cohen) == 3
    # the rows train the audio reward model as they are
    from rewards.preference.audio_data import load_audio_pairs
    from rlhf.data import write_jsonl

    loaded = load_audio_pairs(write_jsonl(tmp_path / "prefs.jsonl", result.preferences))
    assert len(loaded.pairs) == 8 and loaded.n_ties_dropped == 0
    assert all(k == pytest.approx(1.0) and n == 8 for k, n in result.agreement.cohen.values())

    # large-margin filtering keeps a subset
    margins = sorted(r["margin"] for r in result.preferences if r["margin"] is not None)
    cut = margins[len(margins) // 2]
    filtered = backend.pull(min_margin=cut)
    assert 0 < filtered.counts["kept"] < 8
    assert all(r["margin"] >= cut for r in filtered.preferences)

    # re-push: a no-op with the outbox; without it, the same records are upserted, not added
    again = ArgillaBackend(owner, "loop-main", WS, outbox=outbox).push(pairs)
    assert (again.sent, again.already_sent) == (0, 8)
    fresh = ArgillaBackend(owner, "loop-main", WS, outbox=tmp_path / "other.jsonl").push(pairs)
    assert fresh.sent == 8
    assert sorted(server_keys(backend)) == sorted(p.key for p in pairs)
    assert backend.progress().completed == 8  # answers kept


def test_noisy_annotators_and_discards(owner, speech_pairs, tmp_path):
    pairs, _ = load_pairs(speech_pairs)
    pairs = pairs[:6]
    backend = ArgillaBackend(owner, "loop-noisy", WS, outbox=tmp_path / "ob.jsonl",
                             min_submitted=3)
    backend.push(pairs)
    quality = speaking_rate()
    voters = make_annotators(owner, 3, WS, quality, prefix="loop-noisy-", seed=3,
                             noise_per_annotator=[0.0, 0.0, 2.0], tie_band=0.01)
    discarder = make_annotators(owner, 1, WS, quality, prefix="loop-discard-", discard_rate=1.0)[0]
    assert discarder.work("loop-noisy", WS) == 6  # first, before the pairs are complete
    run_annotators(voters, "loop-noisy", WS)
    result = backend.pull()
    assert all(o.discards == 1 and o.n_votes == 3 for o in result.outcomes.values())
    assert all(r["votes"]["discarded"] == 1 for r in result.preferences)
    table = [[o.counts[label] for label in LABELS] for o in result.outcomes.values()]
    assert result.agreement.fleiss_kappa == pytest.approx(fleiss_kappa(table))
    assert result.agreement.cohen[("loop-noisy-1", "loop-noisy-2")][0] == pytest.approx(1.0)
    # the noise-free majority decides every pair as the hidden preference does
    for pair in pairs:
        assert result.outcomes[pair.id].decision == expected_choice(pair, quality)
    noisy_pairs = [k for k in result.agreement.cohen if "loop-noisy-3" in k]
    assert noisy_pairs and result.agreement.n_items == 6


def test_prompt_is_stored_escaped(owner, argilla_server, tmp_path):
    import soundfile as sf

    t = np.arange(4000) / 16000
    for name, amp in (("a.wav", 0.1), ("b.wav", 0.4)):
        sf.write(tmp_path / name, amp * np.sin(2 * np.pi * 300 * t), 16000, subtype="PCM_16")
    prompt = 'Read <script>alert("x")</script> **now** & [click](javascript:alert(1))'
    pair = make_pair(prompt, tmp_path / "a.wav", tmp_path / "b.wav", {"policy": "rl"}, id="xss")
    backend = ArgillaBackend(owner, "loop-escape", WS, outbox=tmp_path / "ob.jsonl")
    backend.push([pair])
    stored = next(backend.iter_records()).fields[FIELD_PROMPT]
    assert "<script>" not in stored and "&lt;script&gt;" in stored and "**" not in stored
    annotator = make_annotators(owner, 1, WS, loudness(0.3), prefix="loop-escape-")[0]
    seen = annotator.pending(annotator.dataset_id("loop-escape", WS))[0][0]
    assert seen["fields"][FIELD_PROMPT] == stored
    assert unescape_text(stored) == prompt
    annotator.work("loop-escape", WS)
    row = backend.pull().preferences[0]
    assert row["prompt"] == prompt and row["chosen"] == str(tmp_path / "b.wav")  # louder


def test_server_killed_mid_push(argilla_server, owner, speech_pairs, tmp_path):
    pairs, _ = load_pairs(speech_pairs)
    outbox = tmp_path / "ob.jsonl"
    killed = []

    def kill_after_first_batch(done: int, total: int) -> None:
        if not killed:
            killed.append(done)
            argilla_server.kill()

    backend = ArgillaBackend(owner, "loop-kill", WS, outbox=outbox, batch_size=2, retry_seconds=2)
    with pytest.raises(UserError, match=r"2 of 8 pairs are on the server; run the push again"):
        backend.push(pairs, on_batch=kill_after_first_batch)
    assert killed == [2]
    box = Outbox(outbox)
    assert len(box) == 8 and len(box.pending(str(backend.dataset().id))) == 6
    argilla_server.restart()

    report = ArgillaBackend(owner, "loop-kill", WS, outbox=outbox, batch_size=2).push(pairs)
    assert (report.sent, report.already_sent, report.total) == (6, 2, 8)
    keys = server_keys(backend)
    assert sorted(keys) == sorted(p.key for p in pairs)  # every pair exactly once

    # an acknowledgement lost after the server stored the batch: forget the last "sent" line
    lines = outbox.read_text().splitlines(keepends=True)
    assert json.loads(lines[-1])["op"] == "sent"
    outbox.write_text("".join(lines[:-1]))
    redo = ArgillaBackend(owner, "loop-kill", WS, outbox=outbox).push(pairs)
    assert (redo.sent, redo.already_sent) == (2, 6)
    assert sorted(server_keys(backend)) == sorted(p.key for p in pairs)


def test_push_rides_out_a_restart(argilla_server, owner, speech_pairs, tmp_path):
    pairs, _ = load_pairs(speech_pairs)
    restarted = threading.Event()

    def restart_in_background(done: int, total: int) -> None:
        if done == 2 and not restarted.is_set():
            argilla_server.kill()
            threading.Thread(target=lambda: (argilla_server.restart(), restarted.set()),
                             daemon=True).start()

    backend = ArgillaBackend(owner, "loop-restart", WS, outbox=tmp_path / "ob.jsonl",
                             batch_size=2, retry_seconds=240)
    report = backend.push(pairs, on_batch=restart_in_background)
    assert restarted.wait(60)
    assert report.complete and report.sent == 8
    assert sorted(server_keys(backend)) == sorted(p.key for p in pairs)


def test_cli_push_progress_pull(argilla_server, speech_pairs, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rlhf.cli.app import app

    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server.api_key)
    runner = CliRunner()
    args = ["annotate", "push", "--pairs", str(speech_pairs), "--dataset", "loop-cli",
            "--annotators-per-pair", "1"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "8 sent now, 0 already on the server" in first.output
    assert argilla_server.api_key not in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "0 sent now, 8 already on the server" in second.output
    ScriptedAnnotator("loop-cli-1", argilla_server.url, argilla_server.add_user("loop-cli-1"),
                      speaking_rate()).work("loop-cli", WS)
    prog = runner.invoke(app, ["annotate", "progress", "--dataset", "loop-cli", "--json"])
    assert prog.exit_code == 0, prog.output
    data = json.loads(prog.output)
    assert (data["total"], data["completed"]) == (8, 8)
    assert data["users"]["loop-cli-1"]["submitted"] == 8
    out = tmp_path / "prefs.jsonl"
    pulled = runner.invoke(app, ["annotate", "pull", "--dataset", "loop-cli", "-o", str(out),
                                 "--report", str(tmp_path / "report.json")])
    assert pulled.exit_code == 0, pulled.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8 and all(Path(r["chosen"]).is_file() for r in rows)
    assert json.loads((tmp_path / "report.json").read_text())["counts"]["kept"] == 8
    missing = runner.invoke(app, ["annotate", "pull", "--dataset", "nope", "-o", str(out)])
    assert missing.exit_code == 2 and "no dataset 'nope'" in missing.output


def _recipe(tmp_path: Path, pairs: Path, **stage) -> Path:
    recipe = {"name": "annotate_it", "seed": 0, "tracking": {"enabled": False},
              "stages": [{"name": "annotate", "kind": "annotate", "pairs": str(pairs),
                          "dataset": "loop-stage", "annotators_per_pair": 2,
                          "poll_seconds": 0.5, **stage}]}
    path = tmp_path / "recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_stage_waits_stops_and_resumes(argilla_server, speech_pairs, tmp_path, monkeypatch):
    from rlhf.recipe.loader import load_recipe
    from rlhf.recipe.run_state import load_state
    from rlhf.recipe.runner import run_recipe
    from rlhf.stages.base import StageWaiting

    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server.api_key)
    run_dir = tmp_path / "run"
    # 1) no annotators yet and wait: false -> the run stops cleanly, to be resumed
    recipe = load_recipe(str(_recipe(tmp_path, speech_pairs, wait=False)))
    with pytest.raises(StageWaiting, match=r"0/8 pairs complete.*rlhf run --resume"):
        run_recipe(recipe, run_dir=run_dir)
    state = load_state(run_dir).stages["annotate"]
    assert state["status"] == "interrupted" and "0/8 pairs complete" in state["waiting"]
    assert not (run_dir / "annotate" / "error.txt").exists()
    # the same through `rlhf run`: a yellow "waiting:" note and exit code 3
    from typer.testing import CliRunner

    from rlhf.cli.app import app

    cli = CliRunner().invoke(app, ["run", str(_recipe(tmp_path / "cli", speech_pairs, wait=False,
                                                      dataset="loop-stage-cli")),
                                   "--run-dir", str(tmp_path / "cli-run")])
    assert cli.exit_code == 3 and "waiting:" in cli.output and "--resume" in cli.output
    # 2) people annotate meanwhile (scripted here), then the run is resumed and finishes
    owner = Connection(argilla_server.url, argilla_server.api_key)
    run_annotators(make_annotators(owner, 2, WS, speaking_rate(), prefix="loop-stage-"),
                   "loop-stage", WS)
    outcome = run_recipe(recipe, run_dir=run_dir, resume=True)
    result = outcome.results["annotate"]
    assert result.metrics["annotation/pairs/kept"] == 8
    assert result.metrics["annotation/agreement/fleiss_kappa"] == pytest.approx(1.0)
    prefs = [json.loads(x) for x in (run_dir / "annotate" / "preferences.jsonl").read_text().splitlines()]
    assert len(prefs) == 8 and all(r["votes"]["chosen"] == 2 for r in prefs)
    assert json.loads((run_dir / "annotate" / "agreement.json").read_text())["counts"]["kept"] == 8
    state = load_state(run_dir).stages["annotate"]
    assert state["status"] == "finished" and "waiting" not in state


def test_stage_with_simulated_annotators(argilla_server, speech_pairs, tmp_path, monkeypatch):
    from rlhf.recipe.loader import load_recipe
    from rlhf.recipe.runner import run_recipe

    monkeypatch.setenv("ARGILLA_API_URL", argilla_server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server.api_key)
    path = _recipe(tmp_path, speech_pairs, dataset="loop-sim", annotators_per_pair=3,
                   simulate={"annotators": 3, "noise": 0.0, "prefix": "loop-sim-"},
                   min_margin=0.5)
    outcome = run_recipe(load_recipe(str(path)), run_dir=tmp_path / "run")
    metrics = outcome.results["annotate"].metrics
    assert metrics["annotation/pairs/total"] == 8 and metrics["annotation/pairs/decided"] == 8
    kept = [json.loads(x) for x in (tmp_path / "run" / "annotate" / "preferences.jsonl")
            .read_text().splitlines()]
    assert len(kept) == metrics["annotation/pairs/kept"] and all(r["margin"] >= 0.5 for r in kept)
