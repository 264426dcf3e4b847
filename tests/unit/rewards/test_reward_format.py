"""``format.regex`` and ``format.json``: matching, flags, fences, keys, and parameter errors."""

import pytest

from rewards.base import REWARDS
from rewards.spec import RewardSpec
from rewards.verifiable.format import JSONFormat, RegexFormat
from rlhf.errors import UserError


def test_registered():
    assert REWARDS.get("format.regex") is RegexFormat
    assert REWARDS.get("format.json") is JSONFormat


def test_regex_full_match_with_dotall_default():
    reward = RegexFormat(pattern=r"<think>.*</think>\s*\d+")
    assert reward(["p"] * 3, ["<think>a\nb</think> 42", "<think>a</think> 42 extra",
                              "x <think>a</think> 42"]) == [1.0, 0.0, 0.0]
    assert reward.score_row("p", "<think></think>7").details == {"matched": True}


def test_regex_flags():
    assert RegexFormat(pattern="abc", flags=["IGNORECASE"])(["p"], ["ABC"]) == [1.0]
    assert RegexFormat(pattern="abc")(["p"], ["ABC"]) == [0.0]
    assert RegexFormat(pattern="a.b", flags=[])(["p"], ["a\nb"]) == [0.0]  # no DOTALL
    assert RegexFormat(pattern="a.b")(["p"], ["a\nb"]) == [1.0]
    assert RegexFormat(pattern=r"(?:^\d$\n?)+", flags=["MULTILINE"])(["p"], ["1\n2"]) == [1.0]


def test_invalid_regex_is_a_user_error_naming_the_reward():
    with pytest.raises(UserError) as info:
        RegexFormat(pattern="(unclosed")
    assert str(info.value).startswith("reward 'format.regex': bad parameters: pattern: ")
    assert "invalid regular expression '(unclosed'" in str(info.value)
    assert "missing )" in str(info.value)
    with pytest.raises(UserError, match="pattern: Field required"):
        RegexFormat()
    with pytest.raises(UserError, match="flags"):
        RegexFormat(pattern="a", flags=["VERBOSE"])
    with pytest.raises(ValueError, match="invalid regular expression"):  # at recipe validation
        RewardSpec(name="format.regex", params={"pattern": "[a-"})


@pytest.mark.parametrize("text, value, valid", [
    ('  {"a": 1}\n', 1.0, True),
    ("[1, 2]", 1.0, True),
    ('"text"', 1.0, True),
    ('```json\n{"a": 1}\n```', 1.0, True),
    ('```JSON {"a": 1}```', 1.0, True),
    ("```\n[1]\n```", 1.0, True),  # a bare fence
    ('Here: ```json\n{"a": 1}\n```', 0.0, False),  # text outside the fence
    ("{'a': 1}", 0.0, False),  # Python, not JSON
    ('{"a": NaN}', 0.0, False),  # not strict JSON
    ("", 0.0, False),
])
def test_json_validity_and_fences(text, value, valid):
    s = JSONFormat().score_row("p", text)
    assert s.value == value and s.details == {"valid_json": valid, "missing_keys": []}


def test_json_fence_can_be_disallowed():
    s = JSONFormat(allow_code_fence=False).score_row("p", '```json\n{"a": 1}\n```')
    assert s.value == 0.0 and s.details["valid_json"] is False


def test_json_required_keys():
    reward = JSONFormat(required_keys=["explanation", "recommendations"])
    ok = reward.score_row("p", '{"explanation": "x", "recommendations": [1, 2]}')
    assert ok.value == 1.0 and ok.details == {"valid_json": True, "missing_keys": []}
    partial = reward.score_row("p", '```json\n{"explanation": "x"}\n```')
    assert partial.value == 0.0
    assert partial.details == {"valid_json": True, "missing_keys": ["recommendations"]}
    not_object = reward.score_row("p", "[1]")
    assert not_object.value == 0.0
    assert not_object.details["missing_keys"] == ["explanation", "recommendations"]
    invalid = reward.score_row("p", "{")
    assert invalid.details == {"valid_json": False,
                               "missing_keys": ["explanation", "recommendations"]}


def test_json_bad_params():
    with pytest.raises(UserError, match="reward 'format.json': bad parameters: required_keys"):
        JSONFormat(required_keys="a")
