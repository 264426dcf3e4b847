"""The actor's prompt and its strictly parsed index output; random baselines of the same budget."""

from __future__ import annotations

import random

import pytest

from rlhf.policies.emphasis.actor import (
    IndexParseError, actor_prompt, fits, format_indices, parse_indices, random_selection,
    random_single,
)
from rlhf.policies.emphasis.spans import segment


@pytest.mark.parametrize("text, expected", [
    ("2", (2,)), ("  2 ", (2,)), ("2,4", (2, 4)), ("4, 2", (4, 2)), ("0 ,\t1", (0, 1)),
    ("\n3\n", (3,)), ("007", (7,)),
])
def test_valid_outputs(text, expected):
    assert parse_indices(text, 8) == expected


@pytest.mark.parametrize("text", [
    "", " ", "2,", ",2", "2,,3", "-1", "+1", "2 5", "2;5", "1.0", "[1]", "1, 2, x", "one",
    "\u0663", "２", "2\n3", "none", "None", "2,2", "8", "1,8",
])
def test_invalid_outputs_are_rejected(text):
    with pytest.raises(IndexParseError):
        parse_indices(text, 8)


def test_none_selects_nothing_only_when_allowed():
    assert parse_indices(" None ", 3, allow_empty=True) == ()
    assert parse_indices("1", 3, allow_empty=True) == (1,)
    with pytest.raises(IndexParseError):
        parse_indices("", 3, allow_empty=True)
    assert format_indices(()) == "none" and format_indices((3, 1)) == "1,3"


def test_prompt_lists_the_units_with_indices():
    context = "Tom works at the  mill. Mia has a small\nhouse in Oslo."  # a line end ends a unit
    prompt = actor_prompt("Which town does  Mia live in?", context, segment(context))
    assert prompt == ("Q: Which town does Mia live in?\n[0] Tom works at the mill.\n"
                      "[1] Mia has a small\n[2] house in Oslo.\nImportant:")


def test_random_selection_fills_the_same_budget():
    context = "a b. c d. e f. g h. i j."  # 5 units of 2 words: 20% each
    units = segment(context)
    for seed in range(20):
        rng = random.Random(seed)
        picked = random_selection(context, units, 0.45, rng)
        assert len(picked) == 2 and fits(context, units, picked, 0.45)
        single = random_single(context, units, 0.45, rng)
        assert len(single) == 1
    assert random_selection(context, units, 0.1, random.Random(0)) == ()
    assert random_single(context, units, 0.1, random.Random(0)) == ()
    draws = {random_selection(context, units, 0.2, random.Random(s)) for s in range(50)}
    assert draws == {(i,) for i in range(5)}  # uniform over the fitting units
