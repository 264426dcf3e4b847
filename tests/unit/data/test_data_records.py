"""Record formats: which rows are valid, and the exact problem for each mistake."""

from __future__ import annotations

import pytest

from rlhf.data import format_problem, record_form, validate_row


def _msgs(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": role, "content": content} for role, content in pairs]


def _texts(kind: str, row: dict) -> list[str]:
    return [format_problem(f, p) for f, p in validate_row(kind, row)]


VALID_PREFERENCES = {
    "text": {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
    "explicit chat": {"prompt": _msgs(("system", "Be brief."), ("user", "2+2?")),
                      "chosen": _msgs(("assistant", "4")),
                      "rejected": _msgs(("assistant", "5"))},
    "implicit prompt chat": {"chosen": _msgs(("user", "2+2?"), ("assistant", "4")),
                             "rejected": _msgs(("user", "2+2?"), ("assistant", "5"))},
    "optional fields": {"prompt": "p", "chosen": "a", "rejected": "b", "margin": 2,
                        "id": "pair-1", "metadata": {"annotator": 3}},
    "int id, float margin": {"prompt": "p", "chosen": "a", "rejected": "b", "margin": 0.25,
                             "id": 7},
    "nulls count as absent": {"prompt": "p", "chosen": "a", "rejected": "b", "margin": None,
                              "id": None, "metadata": None},
    "extra columns": {"prompt": "p", "chosen": "a", "rejected": "b", "lang": "en",
                      "scores": [1, 2]},
    "tool message": {"prompt": _msgs(("user", "weather?"), ("tool", "{\"t\": 20}")),
                     "chosen": _msgs(("assistant", "20C")), "rejected": _msgs(("assistant", "?"))},
}


@pytest.mark.parametrize("name", list(VALID_PREFERENCES))
def test_valid_preference_rows(name):
    assert validate_row("preference", VALID_PREFERENCES[name]) == []


def test_record_forms():
    assert record_form("preference", VALID_PREFERENCES["text"]) == "text"
    assert record_form("preference", VALID_PREFERENCES["explicit chat"]) == "messages"
    assert (record_form("preference", VALID_PREFERENCES["implicit prompt chat"])
            == "messages with implicit prompt")


def test_missing_chosen():
    assert validate_row("preference", {"prompt": "p", "rejected": "b"}) == [("chosen", "missing")]


def test_wrong_type():
    assert _texts("preference", {"prompt": "p", "chosen": 3, "rejected": "b"}) == [
        "chosen: expected a string or a list of messages, got int"]


def test_empty_string_and_empty_list():
    assert _texts("preference", {"prompt": "p", "chosen": "  ", "rejected": "b"}) == [
        "chosen: empty string"]
    assert _texts("preference", {"prompt": [], "chosen": [], "rejected": _msgs(("user", "x"))}
                  ) == ["prompt: empty list of messages", "chosen: empty list of messages"]


def test_bad_role_in_a_message():
    row = {"chosen": _msgs(("user", "q"), ("assistant", "a")),
           "rejected": _msgs(("user", "q"), ("bot", "b"))}
    assert _texts("preference", row) == [
        "rejected: message 2: role 'bot' is not one of system, user, assistant, tool"]


@pytest.mark.parametrize(("message", "problem"), [
    ("hello", "message 1: expected an object with role and content, got str"),
    ({"content": "x"}, "message 1: role missing"),
    ({"role": 1, "content": "x"}, "message 1: role: expected a string, got int"),
    ({"role": "user"}, "message 1: content missing"),
    ({"role": "user", "content": ["x"]}, "message 1: content: expected a string, got list"),
])
def test_message_problems(message, problem):
    assert _texts("prompt", {"prompt": [message]}) == [f"prompt: {problem}"]


def test_identical_chosen_and_rejected():
    assert _texts("preference", {"prompt": "p", "chosen": "same", "rejected": "same"}) == [
        "chosen and rejected are identical"]


@pytest.mark.parametrize("margin", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_margin(margin):
    row = {"prompt": "p", "chosen": "a", "rejected": "b", "margin": margin}
    assert _texts("preference", row) == ["margin: not a finite number"]


def test_optional_field_types():
    row = {"prompt": "p", "chosen": "a", "rejected": "b", "margin": "1", "id": True,
           "metadata": "x"}
    assert _texts("preference", row) == ["margin: expected a finite number, got str",
                                         "id: expected a string or an integer, got bool",
                                         "metadata: expected an object, got str"]


def test_mixed_forms_text_prompt_with_message_completions():
    row = {"prompt": "2+2?", "chosen": _msgs(("assistant", "4")),
           "rejected": _msgs(("assistant", "5"))}
    assert _texts("preference", row) == [
        "mixed forms: prompt is text but chosen and rejected are lists of messages; prompt, "
        "chosen and rejected must all be text or all be lists of messages"]


def test_prompt_required_unless_completions_are_conversations():
    assert _texts("preference", {"chosen": "a", "rejected": "b"}) == [
        "prompt: missing (only chat records whose chosen and rejected are whole conversations "
        "may omit it)"]


def test_problems_are_listed_in_field_order():
    row = {"margin": float("nan"), "rejected": 1}
    assert [f for f, _ in validate_row("preference", row)] == ["prompt", "chosen", "rejected",
                                                               "margin"]


def test_prompt_kind():
    assert validate_row("prompt", {"prompt": "hi", "answer": "4"}) == []
    assert validate_row("prompt", {"prompt": _msgs(("user", "hi"))}) == []
    assert _texts("prompt", {"question": "hi"}) == ["prompt: missing"]
    assert _texts("prompt", {"prompt": ""}) == ["prompt: empty string"]


def test_unknown_kind_and_non_object_row():
    with pytest.raises(ValueError, match="unknown record kind 'pairs'"):
        validate_row("pairs", {})
    assert _texts("prompt", ["prompt"]) == ["expected an object, got list"]
