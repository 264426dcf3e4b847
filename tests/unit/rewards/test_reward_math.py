"""``math.exact``: answer extraction, numeric/string comparison, tolerance, and bad rows."""

import pytest

from rewards.base import REWARDS, Scored
from rewards.verifiable.math import MathExact, extract_answer, parse_number
from rlhf.errors import UserError


def score(completion, answer, **params):
    return MathExact(**params).score_row("p", completion, answer=answer)


def test_registered():
    assert REWARDS.get("math.exact") is MathExact


@pytest.mark.parametrize("text, expected", [
    (r"so \boxed{\frac{1}{2}} is it", r"\frac{1}{2}"),  # nested braces
    (r"\boxed{1} then \boxed{x^{2}+{y}}", "x^{2}+{y}"),  # the last box wins
    (r"\boxed{3} and an unclosed \boxed{4", "3"),  # unbalanced box skipped
    (r"\boxed{7} but later 9", "7"),  # a box beats any number
    ("The total is 1,234,567 apples.", "1,234,567"),  # thousands separators
    ("from 3 down to -12", "-12"),  # negative
    ("5-3", "3"),  # a minus after a digit is subtraction
    ("x=(-0.25)", "-0.25"),
    ("about 3/4.", "3/4"),  # a fraction, sentence period after it
    ("list 1,2,3", "3"),  # not a thousands group
    ("grew by 50%", "50"),  # a percentage is the plain number
    ("no digits here", None),
])
def test_extraction(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("value, expected", [
    ("1,234", 1234.0), ("-7", -7.0), ("3/4", 0.75), (r"\frac{1}{2}", 0.5),
    (r"\dfrac{-3}{4}", -0.75), ("$12$.", 12.0), (r"50\%", 50.0), (42, 42.0), ("1/0", None),
    ("x+1", None), (True, None),
])
def test_parse_number(value, expected):
    assert parse_number(value) == expected


def test_numeric_match_across_forms():
    s = score(r"The answer is $\boxed{\frac{1}{2}}$", "0.5")
    assert s == Scored(1.0, {"extracted": r"\frac{1}{2}", "answer": "0.5",
                             "match_kind": "numeric"})
    assert score("so 1,234 in all", 1234).value == 1.0
    assert score("it is -3", "3").value == 0.0


def test_tolerance_absolute_below_one_relative_above():
    # |b| <= 1: absolute 1e-6
    assert score("0.1000005", "0.1").value == 1.0
    assert score("0.1000020", "0.1").value == 0.0
    # |b| = 1e6: relative, 1e-6 * 1e6 = 1
    assert score("1000000.9", "1000000").value == 1.0
    assert score("1000001.1", "1000000").value == 0.0
    assert score("0.11", "0.1", tolerance=0.01).value == 1.0  # |0.01| <= 0.01 * max(1, 0.1)


def test_string_fallback_normalises():
    s = score(r"hence \boxed{ $X + Y$. }", "x + y")
    assert s.value == 1.0 and s.details["match_kind"] == "string"
    assert score(r"\boxed{\pi}", r"\pi").value == 1.0
    assert score(r"\boxed{x+y}", "x + y").value == 0.0  # inner spaces are kept


def test_no_answer_is_zero_with_extracted_none():
    s = score("I cannot tell.", "4")
    assert s == Scored(0.0, {"extracted": None, "answer": "4", "match_kind": "none"})


def test_row_that_raises_is_none_with_error():
    out = MathExact().score_batch(["p", "p"], ["4", "4"], answer=[None, "4"])
    assert out[0].value is None and "no answer" in out[0].details["error"]
    assert out[1].value == 1.0


def test_bad_params():
    with pytest.raises(UserError, match="reward 'math.exact': bad parameters: tolerance"):
        MathExact(tolerance=-1)
