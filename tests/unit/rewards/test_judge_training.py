"""Judge training pieces: judgment records, swap augmentation, the verdict-weighted SFT loss."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rewards.generative.data import (
    load_judgments,
    record_fields,
    sft_examples,
    synthetic_judgments,
)
from rewards.generative.templates import load_template
from rewards.generative.trainer import (
    JudgeStageOptions,
    verdict_token_ids,
    weighted_token_loss,
)
from rlhf.data.validate import BadRowError
from rlhf.stages.synthetic import sentiment_score


def test_synthetic_judgments_are_balanced_and_labelled_by_the_true_utility():
    rows = synthetic_judgments(400, seed=3, min_margin=0.3)
    assert len(rows) == 400
    share_a = sum(r["label"] == "A" for r in rows) / len(rows)
    assert 0.4 < share_a < 0.6
    for r in rows:
        a, b = sentiment_score(r["response_a"]), sentiment_score(r["response_b"])
        assert (a > b) == (r["label"] == "A") and abs(a - b) >= 0.3 - 1e-9
    assert synthetic_judgments(5, seed=3, min_margin=0.3) == rows[:5]   # seeded


def test_sft_examples_come_in_both_orders_with_swapped_labels():
    template = load_template("pairwise_compact")
    row = {"prompt": "Say:", "response_a": "good", "response_b": "bad", "label": "A"}
    first, second = sft_examples([row], template, "pairwise")
    assert first == {"prompt": "Say:\nA: good\nB: bad\nBetter: [[A]] or [[B]]?",
                     "completion": "[[A]]"}
    assert second["prompt"].startswith("Say:\nA: bad\nB: good") and \
        second["completion"] == "[[B]]"
    assert len(sft_examples([row], template, "pairwise", swap_augment=False)) == 1
    point = load_template("pointwise_rubric")
    (only,) = sft_examples([{"prompt": "P", "response": "r", "label": 4}], point, "pointwise",
                           rubric="Be kind.")
    assert "Rubric: Be kind." in only["prompt"] and only["completion"] == "Score: 4"


def test_bad_judgment_rows_name_file_line_and_field(tmp_path):
    path = tmp_path / "judgments.jsonl"
    rows = [{"prompt": "P", "response_a": "x", "response_b": "y", "label": "A"},
            {"prompt": "P", "response_a": "x", "response_b": "", "label": "C"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    fields = record_fields(load_template("pairwise"), "pairwise")
    assert fields == ["prompt", "response_a", "response_b", "label"]
    with pytest.raises(BadRowError, match=r"judgments.jsonl:2: response_b: empty") as err:
        load_judgments(path, fields, "pairwise")
    assert ("label", "expected 'A', 'B' or 'tie', got 'C'") in err.value.problems
    kept = load_judgments(path, fields, "pairwise", on_bad_rows="skip",
                          rejected_path=tmp_path / "rejected.jsonl")
    assert kept == rows[:1]
    assert (tmp_path / "rejected.jsonl").read_text().count("\n") == 1


def test_weighted_loss_matches_a_hand_computation():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    labels = torch.tensor([[-100, -100, 3, 5], [-100, 2, 3, -100]])
    # positions predicted: logits[:, t] predicts labels[:, t + 1]
    terms = []
    for b in range(2):
        for t in range(3):
            y = int(labels[b, t + 1])
            if y == -100:
                continue
            ce = -torch.log_softmax(logits[b, t], -1)[y]
            terms.append((3.0 if y == 3 else 1.0, float(ce)))
    expected = sum(w * c for w, c in terms) / sum(w for w, _ in terms)
    got = float(weighted_token_loss(logits, labels, [3], 3.0))
    assert math.isclose(got, expected, rel_tol=1e-6)
    plain = float(weighted_token_loss(logits, labels, [3], 1.0))
    assert math.isclose(plain, sum(c for _, c in terms) / len(terms), rel_tol=1e-6)


def test_verdict_tokens_are_the_ones_that_differ_between_verdicts():
    from rlhf.models import load_tokenizer

    tok = load_tokenizer("tiny:lm")
    ids = verdict_token_ids(tok, "pairwise")
    decoded = {tok.decode([i]).strip() for i in ids}
    assert {"A", "B"} <= decoded and not decoded & {"[[", "]]", "[", "]"}


def test_stage_options_are_validated_before_compute():
    with pytest.raises(ValueError, match="exactly one of `data`"):
        JudgeStageOptions(model={"model": "tiny:lm"})
    with pytest.raises(ValueError, match="does not fit mode pointwise"):
        JudgeStageOptions(model={"model": "tiny:lm"}, data={"train": "x.jsonl"},
                          mode="pointwise", template="pairwise")
    with pytest.raises(ValueError, match="no \\{rubric\\}"):
        JudgeStageOptions(model={"model": "tiny:lm"}, synthetic={}, rubric="Be kind.")
