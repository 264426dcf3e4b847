"""Preference data options of the text reward model: ties, min_margin, the BT generator, loss."""

import math

import pytest

from rewards.preference.data import (
    bayes_accuracy, bradley_terry_pairs, filter_pairs, is_tie, rating_margin, sigmoid,
    training_rows,
)
from rlhf.errors import DataError


def row(**extra):
    return {"prompt": "p", "chosen": "a", "rejected": "b", **extra}


def test_tie_definition_and_rating_margin():
    assert is_tie(row(tie=True)) and is_tie(row(margin=0)) and is_tie(row(margin=0.0))
    assert is_tie(row(score_chosen=4, score_rejected=4))
    assert is_tie(row(chosen_rating=3.0, rejected_rating=3))
    assert not is_tie(row(tie=False, margin=1.0)) and not is_tie(row(tie="yes"))
    assert not is_tie(row(score_chosen=5, score_rejected=2)) and not is_tie(row())
    assert rating_margin(row(margin=1.5, score_chosen=5, score_rejected=1)) == 1.5  # margin first
    assert rating_margin(row(score_chosen=5, score_rejected=1)) == 4.0
    assert rating_margin(row(chosen_rating=2, rejected_rating=1.5)) == 0.5
    assert rating_margin(row(score_chosen="5", score_rejected=1)) is None
    assert rating_margin(row()) is None


ROWS = [row(margin=4.0), row(margin=3.0), row(margin=1.0), row(score_chosen=5, score_rejected=1),
        row(score_chosen=2, score_rejected=1), row(tie=True), row(margin=0)]


def test_ties_drop_and_half_counts():
    dropped = filter_pairs(ROWS, ties="drop")
    assert (dropped.n_kept, dropped.n_ties_dropped, dropped.n_ties_kept) == (5, 2, 0)
    half = filter_pairs(ROWS, ties="half")
    assert (half.n_kept, half.n_ties_dropped, half.n_ties_kept) == (7, 0, 2)
    with pytest.raises(DataError, match="ties"):
        filter_pairs(ROWS, ties="keep")


def test_min_margin_keeps_large_margins_only_and_reports_counts():
    kept = filter_pairs(ROWS, ties="half", min_margin=3.0)
    # margin 4, 3 and score difference 4 pass; margin 1 and score difference 1 do not; ties kept
    assert kept.n_kept == 5 and kept.n_below_margin == 2 and kept.n_ties_kept == 2
    assert kept.n_dropped == 2
    stats = kept.stats("train")
    assert stats["data/train_pairs_kept"] == 5 and stats["data/train_below_min_margin"] == 2
    assert "kept 5 of 7 pairs (2 below min_margin)" in kept.describe("train")
    drop = filter_pairs(ROWS, ties="drop", min_margin=3.0)
    assert (drop.n_kept, drop.n_below_margin, drop.n_ties_dropped) == (3, 2, 2)


def test_min_margin_without_a_rating_margin_is_a_bad_row():
    rows = [row(margin=5.0), row()]
    with pytest.raises(DataError, match="f.jsonl:2: margin: missing"):
        filter_pairs(rows, min_margin=1.0, locations=["f.jsonl:1", "f.jsonl:2"])
    skipped = filter_pairs(rows, min_margin=1.0, on_bad_rows="skip")
    assert skipped.n_kept == 1 and skipped.n_no_margin == 1
    assert filter_pairs(rows).n_kept == 2  # no filter, no margin needed


def test_training_rows_targets_and_margins():
    out = training_rows([row(margin=2.0, annotator="x"), row(tie=True), row()], use_margin=True)
    assert out[0] == {"prompt": "p", "chosen": "a", "rejected": "b", "margin": 2.0, "target": 1.0}
    assert out[1]["target"] == 0.5 and out[1]["margin"] == 0.0 and out[2]["margin"] == 0.0
    plain = training_rows([row(margin=2.0), row(margin=1.0)], use_margin=False)
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in plain)  # no ties, no target


def test_preference_loss_by_hand():
    import torch

    from rewards.preference.trainer import preference_loss

    c, r = torch.tensor([2.0, 0.5]), torch.tensor([1.0, 1.5])
    d = [1.0, -1.0]
    plain = -(math.log(sigmoid(d[0])) + math.log(sigmoid(d[1]))) / 2
    assert preference_loss(c, r).item() == pytest.approx(plain)
    assert preference_loss(c, r, target=torch.ones(2)).item() == pytest.approx(plain)
    m = torch.tensor([0.5, 0.0])
    with_margin = -(math.log(sigmoid(0.5)) + math.log(sigmoid(-1.0))) / 2
    assert preference_loss(c, r, margin=m).item() == pytest.approx(with_margin)
    tie = -(0.5 * math.log(sigmoid(1.0)) + 0.5 * math.log(sigmoid(-1.0)))
    half = preference_loss(c[:1], r[:1], target=torch.tensor([0.5])).item()
    assert half == pytest.approx(tie)


def test_bradley_terry_pairs_follow_the_model():
    rows = bradley_terry_pairs(3000, seed=3)
    assert rows == bradley_terry_pairs(3000, seed=3) and rows[0]["id"] == "bt-0"
    assert all(r["chosen"] != r["rejected"] for r in rows)
    # the true utility agrees with the sampled label as often as Bayes says it should
    agree = sum(1.0 if r["u_chosen"] > r["u_rejected"] else 0.5 if r["u_chosen"] ==
                r["u_rejected"] else 0.0 for r in rows) / len(rows)
    bayes = bayes_accuracy(rows)
    assert 0.65 < bayes < 0.8 and abs(agree - bayes) < 0.03
    assert bayes_accuracy([{"u_chosen": 1.0, "u_rejected": 1.0},
                           {"u_chosen": 0.0, "u_rejected": 2.0}]) == \
        pytest.approx((0.5 + sigmoid(2.0)) / 2)


def test_reward_model_stage_trains_ties_with_target_half(tmp_path, monkeypatch):
    import json

    import rewards.preference.trainer as stage
    from rlhf.recipe.loader import validate_recipe
    from rlhf.recipe.runner import run_recipe

    seen = []
    real = stage.preference_loss

    def spy(chosen, rejected, margin=None, target=None):
        seen.append(None if target is None else sorted(target.tolist()))
        return real(chosen, rejected, margin, target)

    monkeypatch.setattr(stage, "preference_loss", spy)
    words = ["good day", "bad day", "kind tree", "cold rain", "warm sky", "dark road", "calm sea",
             "grim city"]
    rows = [{"prompt": "Say:", "chosen": f" {words[i]} {i}.", "rejected": f" {words[-1 - i]} {i}.",
             **extra} for i, extra in enumerate(
                 [{"margin": 4.0}, {"margin": 3.0}, {"score_chosen": 5, "score_rejected": 1},
                  {"margin": 3.5}, {"margin": 1.0}, {"score_chosen": 2, "score_rejected": 1},
                  {"tie": True}, {"margin": 0.0}])]
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {"name": "t", "tracking": {"enabled": False}, "stages": [{
        "name": "rm", "kind": "reward_model", "model": {"model": "tiny:reward"},
        "data": {"train": str(data), "eval": str(data)}, "ties": "half", "min_margin": 3.0,
        "trainer": {"max_steps": 1, "per_device_train_batch_size": 8}}]}
    outcome = run_recipe(validate_recipe(raw, "test", []), run_dir=tmp_path / "run")
    metrics = outcome.results["rm"].metrics
    assert metrics["data/train_pairs_kept"] == 6 and metrics["data/train_pairs_dropped"] == 2
    assert metrics["eval/n_pairs"] == 6  # held-out: ties left out, no min_margin filter
    assert 0.0 <= metrics["eval/ece"] <= 1.0
    assert seen == [[0.5, 0.5, 1.0, 1.0, 1.0, 1.0]]  # the soft-target loss saw the whole batch
    stage_dir = tmp_path / "run" / "rm"
    assert (stage_dir / "reliability.png").is_file()
    assert json.loads((stage_dir / "eval.json").read_text())["n"] == 6
