"""rerank.conditional / rerank.plain (GR2, arXiv 2602.07774): hand-computed rewards."""

import json

import pytest

from rewards.base import REWARDS
from rewards.rerank import ConditionalRerank, PlainRerank
from rlhf.errors import UserError

CANDIDATES = [f"i{n}" for n in range(1, 11)]  # K = 10, pre-rank order


def answer(recs, explanation="because"):
    return json.dumps({"explanation": explanation, "recommendations": recs})


def moved(target, position):
    """The candidates with ``target`` moved to 1-based ``position``."""
    rest = [c for c in CANDIDATES if c != target]
    return rest[:position - 1] + [target] + rest[position - 1:]


def both(completion, target="i3", candidates=CANDIDATES, **params):
    return [r(**params).score_batch(["p"], [completion], candidates=[candidates],
                                    target=[target])[0] for r in (ConditionalRerank, PlainRerank)]


def test_registered_by_short_name():
    assert REWARDS.get("rerank.conditional") is ConditionalRerank
    assert REWARDS.get("rerank.plain") is PlainRerank


def test_copying_the_input_order_earns_nothing_conditionally():
    cond, plain = both(answer(CANDIDATES))  # target at rank_pre 3 stays at 3
    assert cond.value == 0.0
    assert plain.value == pytest.approx(0.1)
    assert cond.details == {"rank_pre": 3, "rank_re": 3, "r_rank": 0.0, "format_ok": True,
                            "copied_input_order": True}


def test_moving_the_target_up_earns_rank_gain_and_bonus():
    cond, plain = both(answer(moved("i3", 1)))
    # R_rank = (3 - 1) / 10 = 0.2, + alpha 0.1
    assert cond.value == pytest.approx(0.3) and plain.value == pytest.approx(0.3)
    assert cond.details["rank_re"] == 1 and cond.details["copied_input_order"] is False


def test_moving_the_target_down_loses_the_bonus_conditionally():
    cond, plain = both(answer(moved("i3", 5)))
    # R_rank = (3 - 5) / 10 = -0.2
    assert cond.value == pytest.approx(-0.2) and plain.value == pytest.approx(-0.1)


def test_target_first_and_kept_first_gets_the_bonus():
    cond, plain = both(answer(CANDIDATES), target="i1")
    assert cond.value == pytest.approx(0.1) and plain.value == pytest.approx(0.1)
    # kept first while reordering the others: still R_rank 0 + alpha, not a copy
    cond, _ = both(answer(["i1"] + CANDIDATES[:0:-1]), target="i1")
    assert cond.value == pytest.approx(0.1) and cond.details["copied_input_order"] is False


def test_target_first_moved_down_still_gets_the_bonus_by_the_rule():
    cond, _ = both(answer(moved("i1", 2)), target="i1")  # R_rank = -0.1; rank_pre = 1
    assert cond.value == pytest.approx(0.0)


@pytest.mark.parametrize("completion", [
    answer(CANDIDATES[:-1]),  # an id missing
    answer(CANDIDATES[:-1] + ["i1"]),  # an id repeated
    answer(CANDIDATES[:-1] + ["x99"]),  # a foreign id
    answer(CANDIDATES + ["x99"]),  # one too many
    answer(CANDIDATES, explanation=3),  # explanation not a string
    json.dumps({"recommendations": CANDIDATES}),  # explanation missing
    json.dumps({"explanation": "e", "recommendations": ",".join(CANDIDATES)}),
    json.dumps(CANDIDATES),  # a bare list is not the answer object
    answer(CANDIDATES)[:-2],  # truncated JSON
    "I think i3 is best.",
    answer([None] * 10),
])
def test_invalid_format_is_minus_one(completion):
    for s in both(completion):
        assert s.value == -1.0
        assert s.details["format_ok"] is False and s.details["r_rank"] is None
        assert s.details["rank_pre"] == 3 and s.details["rank_re"] is None


def test_target_not_among_candidates_is_not_scored():
    for s in both(answer(CANDIDATES), target="x99"):
        assert s.value is None and "not among" in s.details["error"]


@pytest.mark.parametrize("candidates", [[], ["a", "a"], "not json", None])
def test_malformed_candidates_are_not_scored(candidates):
    for s in both(answer(["a"]), target="a", candidates=candidates):
        assert s.value is None and s.details["error"]


def test_fences_json_text_columns_and_numeric_ids():
    text = "```json\n" + json.dumps({"explanation": "e", "recommendations": [3, 1, 2]}) + "\n```"
    cond, plain = both(text, target="3", candidates=json.dumps([1, 2, 3]))
    # rank_pre 3, rank_re 1, K = 3 -> R_rank = 2/3, + alpha
    assert cond.value == pytest.approx(2 / 3 + 0.1) == plain.value


def test_alpha_parameter_and_value_range():
    cond, plain = both(answer(CANDIDATES), alpha=0.5)
    assert (cond.value, plain.value) == (0.0, 0.5)
    assert ConditionalRerank(alpha=0.5).value_range == (-1.0, 1.5)
    assert ConditionalRerank.value_range == (-1.0, 1.1)
    with pytest.raises(UserError):
        PlainRerank(alpha=-0.1)
    with pytest.raises(UserError):
        PlainRerank(beta=1)


def test_batch_contract_with_chat_messages():
    messages = [{"role": "assistant", "content": answer(moved("i3", 2))}]
    values = ConditionalRerank()(["p", "p"], [messages, "junk"],
                                 candidates=[CANDIDATES, CANDIDATES], target=["i3", "i3"])
    assert values == [pytest.approx(0.2), -1.0]
