"""flatten / redact / key cleaning, hand-computed."""

from __future__ import annotations

import pydantic

from rlhf.tracking.params import (
    MAX_KEY,
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    REDACTED,
    TRUNCATED_MARKER,
    flatten,
    is_secret_key,
    redact,
    safe_key,
    to_params,
)


def test_flatten_hand_computed() -> None:
    config = {
        "a": {"b": 1, "c": [10, {"d": None}]},
        "e": True,
        "f": [],
        "g": {},
        "h": 1e-6,
        "stages": [{"kind": "annotate"}, {"kind": "dapo", "steps": 2}],
    }
    assert flatten(config) == {
        "a.b": "1",
        "a.c.0": "10",
        "a.c.1.d": "None",
        "e": "True",
        "f": "[]",
        "g": "{}",
        "h": "1e-06",
        "stages.0.kind": "annotate",
        "stages.1.kind": "dapo",
        "stages.1.steps": "2",
    }
    assert flatten({"a": {"b": [1]}}, sep="/") == {"a/b/0": "1"}


def test_flatten_truncates_long_values_with_marker() -> None:
    out = flatten({"prompt": "x" * 7000, "short": "y" * MAX_PARAM_VALUE})
    assert len(out["prompt"]) == MAX_PARAM_VALUE
    assert out["prompt"].endswith(TRUNCATED_MARKER)
    assert out["prompt"].startswith("x" * 100)
    assert out["short"] == "y" * MAX_PARAM_VALUE  # exactly at the limit: untouched


def test_flatten_pydantic_model() -> None:
    class Stage(pydantic.BaseModel):
        kind: str
        lr: float = 0.5

    class Recipe(pydantic.BaseModel):
        stages: list[Stage]

    assert flatten(Recipe(stages=[Stage(kind="sft")])) == {
        "stages.0.kind": "sft",
        "stages.0.lr": "0.5",
    }


def test_safe_key() -> None:
    assert safe_key("train/loss") == "train/loss"
    assert safe_key("a@b#c") == "a_b_c"
    assert safe_key("//x//y/") == "x/y"
    assert safe_key("./a/../b") == "a/b"
    assert safe_key("") == "_"
    assert len(safe_key("k" * 400)) == MAX_KEY
    assert flatten({"weird key!": {"ok": 1}}) == {"weird key_.ok": "1"}


def test_redact_secret_keys() -> None:
    flat = {
        "tracking.api_key": "sk-1",
        "judge.token": "t",
        "openai.API_KEY": "k",
        "x.apikey": "k",
        "db.Password": "p",
        "db.passwd": "p",
        "hub.hf_token": "h",
        "oauth.client_secret": "s",
        "aws.secret-key": "s",
        "generation.max_new_tokens": "64",
        "model.tokenizer": "gpt2",
        "budget.token_budget": "100",
        "lr": "1e-5",
    }
    out = redact(flat)
    secret = {k for k, v in out.items() if v == REDACTED}
    assert secret == {
        "tracking.api_key",
        "judge.token",
        "openai.API_KEY",
        "x.apikey",
        "db.Password",
        "db.passwd",
        "hub.hf_token",
        "oauth.client_secret",
        "aws.secret-key",
    }
    assert flat["tracking.api_key"] == "sk-1"  # input untouched
    # A secret whose value is a nested structure is redacted below it too.
    assert is_secret_key("judge.token.0")
    nested = to_params({"judge": {"token": ["a", "b"]}})
    assert nested == {"judge.token.0": "***", "judge.token.1": "***"}


def test_limits_agree_with_mlflow() -> None:
    from mlflow.utils import validation

    assert validation.MAX_PARAM_VAL_LENGTH == MAX_PARAM_VALUE
    assert validation.MAX_ENTITY_KEY_LENGTH == MAX_KEY
    assert validation.MAX_TAG_VAL_LENGTH == MAX_TAG_VALUE
    assert validation.MAX_PARAMS_TAGS_PER_BATCH == 100
    assert validation.MAX_METRICS_PER_BATCH == 1000


def test_redact_tree_hides_nested_secrets():
    from rlhf.tracking import redact_tree

    tree = {"judge": {"api_key": "sk-123", "model": "m"}, "stages": [{"token": "t", "n": 1}]}
    assert redact_tree(tree) == {"judge": {"api_key": "***", "model": "m"},
                                 "stages": [{"token": "***", "n": 1}]}
    assert tree["judge"]["api_key"] == "sk-123"
