"""Judge verdicts: strict, total parsing; swapping; the monotone verdict -> reward map."""

from __future__ import annotations

import pytest

from rewards.generative.verdict import build_mapping, parse_verdict, swap_verdict
from rlhf.errors import UserError


@pytest.mark.parametrize("text, value", [
    ("[[A]]", "A"),
    ("After comparing, [[B]]", "B"),
    ("[[tie]]", "tie"),
    ("[[A]] ... final: [[A]]", "A"),            # the same token repeated is one verdict
    ("[[a]]", None),                             # spelling is exact
    ("[[A]] or [[B]]", None),                    # two different verdicts: none
    ("A is better", None),
    ("", None),
    ("[[ A ]]", None),
])
def test_pairwise_parsing_is_strict(text, value):
    verdict = parse_verdict(text, "pairwise")
    assert verdict.value == value
    assert verdict.raw == text                   # the raw text is always kept
    assert verdict.ok == (value is not None)
    assert bool(verdict.problem) == (value is None)


@pytest.mark.parametrize("text, value", [
    ("Score: 4", 4),
    ("Score: 5.", 5),
    ("reasoning... Score: 2\nSo, Score: 2", 2),
    ("Score: 6", None),                          # outside 1..5
    ("Score: 0", None),
    ("Score: 3.5", None),                        # not an integer
    ("Score: 3, then Score: 4", None),           # disagreeing scores
    ("score: 3", None),                          # exact spelling
    ("4/5", None),
])
def test_score_parsing_is_strict(text, value):
    assert parse_verdict(text, "score", scale=5).value == value


def test_parsing_never_raises_on_odd_input():
    assert parse_verdict(None, "pairwise").value is None  # type: ignore[arg-type]
    assert parse_verdict("[[" * 1000, "pairwise").value is None
    assert parse_verdict("Score: ٣", "score").value is None  # a non-ASCII digit


def test_swap_turns_a_verdict_to_the_other_slot():
    assert swap_verdict(parse_verdict("[[A]]", "pairwise")).value == "B"
    assert swap_verdict(parse_verdict("[[B]]", "pairwise")).value == "A"
    assert swap_verdict(parse_verdict("[[tie]]", "pairwise")).value == "tie"
    assert swap_verdict(parse_verdict("nothing", "pairwise")).value is None


def test_default_maps_and_custom_monotone_table():
    pair = build_mapping("pairwise")
    assert [pair(parse_verdict(t, "pairwise")) for t in ("[[B]]", "[[tie]]", "[[A]]")] == \
        [0.0, 0.5, 1.0]
    assert pair(parse_verdict("?", "pairwise")) is None
    assert pair.neutral == 0.5
    score = build_mapping("score", {"1": -1, 2: 0, 3: 0, 4: 2})
    assert score.scale == 4
    assert [score(parse_verdict(f"Score: {n}", "score", 4)) for n in range(1, 5)] == \
        [-1.0, 0.0, 0.0, 2.0]


@pytest.mark.parametrize("kind, table, message", [
    ("pairwise", {"A": 0, "tie": 0.5, "B": 1}, "not monotone"),
    ("pairwise", {"A": 1, "B": 0}, r"no reward for verdict\(s\) tie"),
    ("pairwise", {"A": 1, "tie": 0.5, "B": 0, "C": 0}, "unknown pairwise verdict 'C'"),
    ("pairwise", {"A": 1, "tie": 1, "B": 1}, "same reward"),
    ("pairwise", {"A": "high", "tie": 0.5, "B": 0}, "finite number"),
    ("score", {1: 0, 2: 1, 4: 2}, "1..K"),
    ("score", {1: 0, "two": 1}, "not an integer"),
    ("score", {1: 1, 2: 0}, "not monotone"),
])
def test_bad_tables_are_user_errors(kind, table, message):
    with pytest.raises(UserError, match=message):
        build_mapping(kind, table)


def test_judge_match_rewards_a_verdict_equal_to_the_label():
    from rewards.base import REWARDS

    match = REWARDS.get("judge.match")()
    assert match(["p"] * 4, ["[[A]]", "Verdict: [[B]]", "[[A]] [[B]]", "[[tie]]"],
                 label=["A", "A", "A", "tie"]) == [1.0, 0.0, 0.0, 1.0]
    unscored = REWARDS.get("judge.match")(invalid=None)
    assert unscored(["p"], ["no verdict"], label=["A"]) == [None]
    assert match(["p"], ["[[A]]"], label=["X"]) == [None]          # a bad label is not scored
    scores = REWARDS.get("judge.match")(mode="pointwise", scale=5, partial=True)
    assert scores(["p"] * 3, ["Score: 4", "Score: 2", "Score: 9"], label=[4, 4, 4]) == \
        [1.0, 0.5, 0.0]
    details = scores.score_batch(["p"], ["Score: 9"], label=[4])[0].details
    assert details["verdict"] is None and "outside 1..5" in details["problem"]
