"""``length.overlong``: DAPO's three regions at their exact boundaries, units and fallbacks."""

import pytest

from rewards.base import REWARDS
from rewards.verifiable.length import OverlongPenalty, overlong_penalty
from rlhf.errors import UserError


def test_registered():
    assert REWARDS.get("length.overlong") is OverlongPenalty


@pytest.mark.parametrize("length, expected", [
    (0, 0.0), (6, 0.0),  # L <= max_len - cache = 6
    (7, -0.25), (8, -0.5), (9, -0.75),  # ((10 - 4) - L) / 4
    (10, -1.0),  # L = max_len: exactly -1
    (11, -1.0), (1000, -1.0),  # beyond max_len
])
def test_penalty_regions_and_boundaries(length, expected):
    assert overlong_penalty(length, max_len=10, cache=4) == expected


def test_zero_cache_is_a_hard_cut():
    assert overlong_penalty(10, 10, 0) == 0.0 and overlong_penalty(11, 10, 0) == -1.0


def test_tokens_from_completion_ids():
    reward = OverlongPenalty(max_len=10, cache=4)
    out = reward.score_batch(["p"] * 4, ["a", "b", "c", "d"],
                             completion_ids=[[0] * 6, [0] * 8, [0] * 10, [0] * 11])
    assert [s.value for s in out] == [0.0, -0.5, -1.0, -1.0]
    assert out[1].details == {"length": 8, "unit_used": "tokens"}


def test_tokens_fall_back_to_characters_without_completion_ids():
    s = OverlongPenalty(max_len=10, cache=4).score_batch(["p"], ["x" * 9])[0]
    assert s.value == -0.75
    assert s.details["unit_used"] == "chars" and s.details["length"] == 9
    assert "no completion_ids" in s.details["note"]


def test_chars_and_words_units():
    text = "one two three four five six seven"  # 7 words, 33 characters
    words = OverlongPenalty(max_len=8, cache=2, unit="words").score_row("p", text)
    assert words.value == -0.5 and words.details == {"length": 7, "unit_used": "words"}
    chars = OverlongPenalty(max_len=40, cache=10, unit="chars").score_row(
        "p", text, completion_ids=[1])  # ids ignored unless unit is tokens
    assert chars.value == pytest.approx(-0.3) and chars.details["length"] == 33


@pytest.mark.parametrize("params, field", [
    ({"max_len": 0}, "max_len"), ({"cache": -1}, "cache"),
    ({"max_len": 10, "cache": 10}, "cache .10. must be smaller than max_len"),
    ({"unit": "bytes"}, "unit"),
])
def test_bad_params(params, field):
    with pytest.raises(UserError, match=f"reward 'length.overlong': bad parameters: .*{field}"):
        OverlongPenalty(**params)
