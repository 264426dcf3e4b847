"""Aggregation of votes and agreement statistics, against hand-computed numbers and sklearn."""

from __future__ import annotations

import math
import random

import pytest

from annotation.aggregate import (
    LABELS, Vote, agreement, aggregate_votes, cohen_kappa, fleiss_kappa, keep_pair,
    preference_row, summarize,
)


def v(name, choice, ra=None, rb=None, status="submitted"):
    return Vote(name, status, choice, ra, rb)


# ---------------------------------------------------------------------------- per pair


def test_majority_and_margin_by_hand():
    # A, A, B; ratings (a, b): (4, 2), (5, 3), (3, 4) -> gaps for A: 2, 2, -1 -> mean 1.0
    out = aggregate_votes([v("x", "A", 4, 2), v("y", "A", 5, 3), v("z", "B", 3, 4)])
    assert out.decision == "A" and out.counts == {"A": 2, "B": 1, "tie": 0}
    assert out.margin == pytest.approx(1.0)
    assert out.agreement == pytest.approx(2 / 3)
    assert out.annotators == ["x", "y", "z"]


def test_margin_for_b_is_rating_of_b_minus_a_and_never_zero():
    out = aggregate_votes([v("x", "B", 2, 5), v("y", "B", 3, 4)])  # gaps 3, 1 -> 2
    assert out.decision == "B" and out.margin == pytest.approx(2.0)
    contra = aggregate_votes([v("x", "B", 5, 2)])  # ratings contradict the vote: gap -3
    assert contra.decision == "B" and contra.margin is None
    even = aggregate_votes([v("x", "A", 3, 4), v("y", "A", 4, 3)])  # gaps -1, 1 -> 0: no margin
    assert even.decision == "A" and even.margin is None


def test_margin_ignores_missing_or_bad_ratings():
    out = aggregate_votes([v("x", "A", 5, 1), v("y", "A", None, 2), v("z", "A", 9, 1)])
    assert out.margin == pytest.approx(4.0)  # only x rated both within 1-5
    assert aggregate_votes([v("x", "A")]).margin is None


def test_ties_no_majority_pending_discarded():
    assert aggregate_votes([v("x", "tie"), v("y", "tie"), v("z", "A")]).decision == "tie"
    assert aggregate_votes([v("x", "A"), v("y", "B")]).decision == "no_majority"
    assert aggregate_votes([v("x", "A"), v("y", "tie")]).decision == "no_majority"
    nomaj = aggregate_votes([v("x", "A"), v("y", "A"), v("z", "tie"), v("w", "tie")])
    assert nomaj.decision == "no_majority" and nomaj.agreement is None and nomaj.margin is None
    assert aggregate_votes([]).decision == "pending"
    assert aggregate_votes([v("x", "A")], min_votes=2).decision == "pending"
    gone = aggregate_votes([v("x", None, status="discarded"), v("y", None, status="discarded")])
    assert gone.decision == "discarded" and gone.discards == 2


def test_discards_and_drafts_are_not_votes():
    out = aggregate_votes([v("x", "B"), v("y", None, status="discarded"),
                           v("z", "A", status="draft")])
    assert out.decision == "B" and out.counts == {"A": 0, "B": 1, "tie": 0}
    assert out.discards == 1 and out.annotators == ["x"]


def test_keep_pair_filters():
    strong = aggregate_votes([v("x", "A", 5, 1), v("y", "A", 4, 2)])  # margin 3, agreement 1
    weak = aggregate_votes([v("x", "A", 3, 3), v("y", "A", 3, 2), v("z", "B", 3, 3)])  # 1/3
    unrated = aggregate_votes([v("x", "A")])
    assert keep_pair(strong) and keep_pair(weak) and keep_pair(unrated)
    assert keep_pair(strong, min_margin=2.0) and not keep_pair(weak, min_margin=2.0)
    assert not keep_pair(unrated, min_margin=0.5)
    assert not keep_pair(weak, min_agreement=0.8) and keep_pair(strong, min_agreement=0.8)
    assert not keep_pair(aggregate_votes([v("x", "tie")]))


def test_preference_row_uses_original_paths():
    a_wins = aggregate_votes([v("x", "A", 4, 2), v("y", "A", 4, 3), v("z", "tie", 3, 3),
                              v("w", None, status="discarded")])
    row = preference_row("p1", "say hi", "/d/a.wav", "/d/b.wav", a_wins, {"metadata": {"k": 1}})
    assert row["chosen"] == "/d/a.wav" and row["rejected"] == "/d/b.wav"
    assert row["votes"] == {"chosen": 2, "rejected": 0, "tie": 1, "discarded": 1}
    assert row["annotators"] == ["x", "y", "z"] and row["metadata"] == {"k": 1}
    assert row["chosen_audio"] == row["chosen"] and row["margin"] == pytest.approx(1.0)
    b_wins = aggregate_votes([v("x", "B")])
    row = preference_row("p2", "say hi", "/d/a.wav", "/d/b.wav", b_wins)
    assert (row["chosen"], row["rejected"]) == ("/d/b.wav", "/d/a.wav")
    with pytest.raises(ValueError):
        preference_row("p3", "", "a", "b", aggregate_votes([v("x", "tie")]))


def test_summarize():
    outs = [aggregate_votes(x) for x in ([v("a", "A")], [v("a", "B")], [v("a", "tie")], [])]
    s = summarize(outs)
    assert s["decided"] == 2 and s["tie"] == 1 and s["pending"] == 1 and s["total"] == 4


# ---------------------------------------------------------------------------- Cohen


def test_cohen_kappa_by_hand():
    # p_o = 4/5; marginals r1: A2 B2 tie1, r2: A1 B3 tie1 -> p_e = (2 + 6 + 1) / 25 = 0.36
    k = cohen_kappa(["A", "A", "B", "B", "tie"], ["A", "B", "B", "B", "tie"])
    assert k == pytest.approx((0.8 - 0.36) / (1 - 0.36)) and k == pytest.approx(0.6875)


def test_cohen_kappa_matches_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(0)
    for trial in range(50):
        n = rng.randint(2, 40)
        first = [rng.choice(LABELS) for _ in range(n)]
        second = [x if rng.random() < 0.6 else rng.choice(LABELS) for x in first]
        if len(set(first) | set(second)) < 2:
            continue
        assert cohen_kappa(first, second, LABELS) == pytest.approx(
            cohen_kappa_score(first, second), abs=1e-12), trial


def test_cohen_kappa_degenerate_is_nan():
    assert math.isnan(cohen_kappa(["A", "A"], ["A", "A"]))
    assert math.isnan(cohen_kappa([], []))
    with pytest.raises(ValueError):
        cohen_kappa(["A"], ["A", "B"])


# ---------------------------------------------------------------------------- Fleiss


def test_fleiss_kappa_wikipedia_example():
    """The worked example of Fleiss' kappa on Wikipedia: 10 items, 14 raters, 5 categories,
    P̄ = 0.378, P_e = 0.213, κ = 0.210."""
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
             [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
             [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.20993, abs=5e-5)


def test_fleiss_kappa_variable_raters_by_hand():
    # items (A, B, tie): (3,0,0) P=1; (1,1,0) P=0; (0,2,1) P=1/3 -> P̄ = 4/9
    # totals A4 B3 tie1 of 8 -> P_e = 1/4 + 9/64 + 1/64 = 13/32; κ = (4/9 - 13/32)/(19/32)
    table = [[3, 0, 0], [1, 1, 0], [0, 2, 1], [0, 0, 1]]  # the last has one rating: left out
    assert fleiss_kappa(table) == pytest.approx(352 / 5472)


def test_fleiss_equals_cohen_like_agreement_extremes():
    assert fleiss_kappa([[2, 0, 0], [0, 2, 0], [0, 0, 2]]) == pytest.approx(1.0)
    assert fleiss_kappa([[1, 1, 0], [1, 1, 0]]) == pytest.approx(-1.0)
    assert math.isnan(fleiss_kappa([[3, 0, 0], [2, 0, 0]]))  # one category only
    assert math.isnan(fleiss_kappa([[1, 0, 0]]))


# ---------------------------------------------------------------------------- agreement()


def test_agreement_over_pairs():
    votes = {
        "p1": [v("ann1", "A"), v("ann2", "A"), v("ann3", "A")],
        "p2": [v("ann1", "B"), v("ann2", "B"), v("ann3", "A")],
        "p3": [v("ann1", "tie"), v("ann2", "B")],
        "p4": [v("ann1", "A"), v("ann3", None, status="discarded")],  # one vote: not an item
    }
    agr = agreement(votes)
    assert agr.n_items == 3
    assert agr.fleiss_kappa == pytest.approx(fleiss_kappa([[3, 0, 0], [1, 2, 0], [0, 1, 1]]))
    # ann1 vs ann2 over p1, p2, p3: A/A, B/B, tie/B
    assert agr.cohen[("ann1", "ann2")] == (pytest.approx(cohen_kappa(["A", "B", "tie"],
                                                                     ["A", "B", "B"], LABELS)), 3)
    assert agr.cohen[("ann1", "ann3")][1] == 2 and ("ann2", "ann3") in agr.cohen
    assert agr.observed == pytest.approx((1 + 1 / 3 + 0) / 3)
    m = agr.metrics()
    assert m["agreement/n_items"] == 3.0 and "agreement/cohen/ann1__ann2" in m
    assert agr.to_json()["cohen"][0]["annotators"] == ["ann1", "ann2"]


def test_agreement_min_common_and_empty():
    votes = {"p1": [v("a", "A"), v("b", "A")]}
    assert agreement(votes).cohen == {}  # one shared pair < min_common=2
    assert agreement(votes, min_common=1).cohen[("a", "b")][1] == 1
    empty = agreement({})
    assert empty.n_items == 0 and math.isnan(empty.fleiss_kappa) and math.isnan(empty.mean_cohen_kappa)
