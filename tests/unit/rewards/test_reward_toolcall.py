"""toolcall.json: hand-computed parts for every rule of the definition (DuplexSLA format)."""

import json

import pytest

from rewards.base import REWARDS
from rewards.spec import RewardSpec, build_reward
from rewards.verifiable.toolcall import ToolCallJSON, call_blocks, canonical
from rlhf.errors import UserError

WEATHER = {"type": "object",
           "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
           "required": ["city"], "additionalProperties": False}
SEARCH = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
TOOLS = [{"name": "get_weather", "parameters": WEATHER}, {"name": "search", "parameters": SEARCH}]


def call(name, arguments, begin="<|toolcall_begin|>", end="<|toolcall_end|>"):
    return f"{begin}{json.dumps({'name': name, 'arguments': arguments})}{end}"


def score(completion, reward=None, **row):
    row.setdefault("tools", TOOLS)
    return (reward or ToolCallJSON()).score_batch(["p"], [completion],
                                                  **{k: [v] for k, v in row.items()})[0]


def test_registered_by_short_name():
    assert REWARDS.get("toolcall.json") is ToolCallJSON


def test_one_valid_call_scores_one_without_expected():
    s = score("Sure. " + call("get_weather", {"city": "Paris", "days": 2}) + " Done.")
    assert s.value == 1.0
    assert s.details == {"n_calls": 1, "validation_error": None, "well_formed": 1.0,
                         "known_tool": 1.0, "valid_args": 1.0}


def test_no_call_with_empty_expected_is_right():
    s = score("It is sunny, no tool needed.", expected=[])
    assert s.value == 1.0
    assert (s.details["well_formed"], s.details["known_tool"], s.details["valid_args"],
            s.details["match"]) == (1.0, 1.0, 1.0, 1.0)
    assert s.details["n_calls"] == 0


def test_no_call_when_one_was_expected_scores_zero():
    s = score("It is sunny.", expected=[{"name": "search", "arguments": {"q": "x"}}])
    assert s.value == 0.0
    assert s.details["well_formed"] == s.details["match"] == 0.0


def test_no_call_without_expected_scores_zero_and_has_no_match_part():
    s = score("nothing")
    assert s.value == 0.0 and "match" not in s.details


def test_malformed_block_counts_against_well_formed():
    text = call("get_weather", {"city": "Paris"}) + "<|toolcall_begin|>{not json<|toolcall_end|>"
    s = score(text)
    # well_formed 1/2, known_tool 1/1, valid_args 1/1 -> (0.5 + 1 + 1) / 3
    assert s.details["well_formed"] == 0.5 and s.details["n_calls"] == 2
    assert s.value == pytest.approx(2.5 / 3)


@pytest.mark.parametrize("block", ['{"name": 3, "arguments": {}}', '{"name": "search"}',
                                   '{"name": "search", "arguments": "{\\"q\\": 1}"}', '[1, 2]'])
def test_wrong_shapes_are_not_well_formed(block):
    s = score(f"<|toolcall_begin|>{block}<|toolcall_end|>")
    assert s.details["well_formed"] == 0.0 and s.value == 0.0


def test_unclosed_block_is_a_malformed_call():
    assert call_blocks("a<B>x<E>b<B>y", "<B>", "<E>") == ["x", "y"]
    s = score(call("search", {"q": "a"}) + '<|toolcall_begin|>{"name": "search", "arguments": {}')
    assert s.details["n_calls"] == 2 and s.details["well_formed"] == 0.5


def test_unknown_tool():
    s = score(call("fly_to", {"city": "Paris"}) + call("get_weather", {"city": "Paris"}))
    # well_formed 1, known_tool 1/2, valid_args 1/1 (unknown calls are not in its denominator)
    assert s.details["known_tool"] == 0.5 and s.details["valid_args"] == 1.0
    assert s.value == pytest.approx(2.5 / 3)


def test_only_unknown_tools_gives_zero_valid_args():
    s = score(call("fly_to", {}))
    assert (s.details["known_tool"], s.details["valid_args"]) == (0.0, 0.0)
    assert s.value == pytest.approx(1 / 3)


def test_schema_violation_reports_the_first_error():
    s = score(call("get_weather", {"city": 3}) + call("get_weather", {"days": 2}))
    assert s.details["valid_args"] == 0.0
    assert s.value == pytest.approx(2 / 3)
    assert s.details["validation_error"] == "get_weather: 3 is not of type 'string'"


def test_additional_property_and_minimum_violate_the_schema():
    s = score(call("get_weather", {"city": "Paris", "days": 0}) + call("get_weather",
                                                                       {"city": "X", "u": 1}))
    assert s.details["valid_args"] == 0.0


def test_order_insensitive_match_with_an_extra_call():
    expected = [{"name": "search", "arguments": {"q": "x"}},
                {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}]
    text = (call("get_weather", {"days": 2.0, "city": "Paris"}) + call("search", {"q": "x"})
            + call("search", {"q": "y"}))
    s = score(text, expected=expected)
    # 2 expected calls matched, 3 emitted -> 2 / max(2, 3); other parts 1 -> (3 + 2/3) / 4
    assert s.details["match"] == pytest.approx(2 / 3)
    assert s.value == pytest.approx((3 + 2 / 3) / 4)


def test_match_is_a_multiset_match():
    expected = [{"name": "search", "arguments": {"q": "x"}}] * 2
    s = score(call("search", {"q": "x"}), expected=expected)
    assert s.details["match"] == 0.5
    s = score(call("search", {"q": "x"}) * 2, expected=expected[:1])
    assert s.details["match"] == 0.5


def test_malformed_extra_block_costs_in_match():
    expected = [{"name": "search", "arguments": {"q": "x"}}]
    s = score(call("search", {"q": "x"}) + "<|toolcall_begin|>oops<|toolcall_end|>",
              expected=expected)
    assert s.details["match"] == 0.5


def test_call_when_none_expected_has_zero_match():
    s = score(call("search", {"q": "x"}), expected=[])
    assert s.details["match"] == 0.0 and s.value == pytest.approx(3 / 4)


def test_json_equality_of_arguments():
    assert canonical({"a": 1, "b": [1.0, {"c": None}]}) == canonical({"b": [1, {"c": None}],
                                                                       "a": 1.0})
    assert canonical({"a": True}) != canonical({"a": 1})
    assert canonical({"a": "1"}) != canonical({"a": 1})
    s = score(call("search", {"q": True}), expected=[{"name": "search", "arguments": {"q": 1}}])
    assert s.details["match"] == 0.0


def test_openai_tool_form_scores_the_same():
    openai = [{"type": "function", "function": t} for t in TOOLS]
    text = call("get_weather", {"city": 1}) + call("search", {"q": "x"}) + call("nope", {})
    assert score(text, tools=openai) == score(text)
    assert score(text).value == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)


def test_json_string_columns():
    expected = [{"name": "search", "arguments": {"q": "x"}}]
    text = call("search", {"q": "x"}) + call("get_weather", {"city": "Rome"})
    plain = score(text, expected=expected)
    as_text = score(text, tools=json.dumps(TOOLS), expected=json.dumps(expected))
    assert as_text == plain and plain.details["match"] == 0.5


def test_custom_markers():
    reward = ToolCallJSON(begin_marker="<tool>", end_marker="</tool>")
    text = call("search", {"q": "x"}, "<tool>", "</tool>") + call("search", {"q": 1})
    s = score(text, reward)
    assert s.details["n_calls"] == 1 and s.value == 1.0


def test_weights():
    expected = [{"name": "search", "arguments": {"q": "x"}}]
    text = call("search", {"q": "x"}) + call("search", {"q": "y"})  # match 1/2, rest 1
    only_match = ToolCallJSON(weights={"well_formed": 0, "known_tool": 0, "valid_args": 0})
    assert score(text, only_match, expected=expected).value == 0.5
    heavy = ToolCallJSON(weights={"match": 2})  # omitted weights stay 1
    assert score(text, heavy, expected=expected).value == pytest.approx((3 + 2 * 0.5) / 5)


def test_only_match_weighted_without_expected_is_not_scored():
    reward = ToolCallJSON(weights={"well_formed": 0, "known_tool": 0, "valid_args": 0})
    s = score(call("search", {"q": "x"}), reward)
    assert s.value is None and "sum to 0" in s.details["error"]


def test_bad_params_are_user_errors():
    with pytest.raises(UserError, match="weights"):
        ToolCallJSON(weights={"well_formed": 0, "known_tool": 0, "valid_args": 0, "match": 0})
    with pytest.raises(UserError, match="weights.matches"):
        ToolCallJSON(weights={"matches": 1})
    with pytest.raises(UserError):
        ToolCallJSON(begin_marker="")
    built = build_reward(RewardSpec(name="toolcall.json", params={"weights": {"match": 3.0}}))
    assert built.params.weights.match == 3.0


def test_invalid_schema_scores_none_with_error():
    tools = [{"name": "bad", "parameters": {"type": "no-such-type"}}]
    s = score(call("bad", {}), tools=tools)
    assert s.value is None and "invalid JSON Schema" in s.details["error"]


@pytest.mark.parametrize("tools", [None, "not json", [{"parameters": {}}], [TOOLS[0]] * 2])
def test_malformed_tools_score_none(tools):
    s = score(call("search", {"q": "x"}), tools=tools)
    assert s.value is None and s.details["error"]


def test_malformed_expected_scores_none():
    s = score(call("search", {"q": "x"}), expected=[{"name": "search"}])
    assert s.value is None and "expected[0]" in s.details["error"]


def test_tool_without_parameters_accepts_any_arguments_and_chat_completions_work():
    tools = [{"name": "ping"}]
    messages = [{"role": "assistant", "content": call("ping", {"anything": [1, 2]})}]
    assert score(messages, tools=tools).value == 1.0


def test_batch_call_contract():
    reward = ToolCallJSON()
    values = reward(["p", "p"], [call("search", {"q": "x"}), "no call"], tools=[TOOLS, None])
    assert values == [1.0, None]
