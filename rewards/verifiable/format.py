"""Format rewards: ``format.regex`` (the completion fully matches a pattern) and ``format.json``
(the completion is JSON, optionally an object with required keys). Both are 1.0 or 0.0.

Format rewards are the cheap half of verifiable-reward designs (GR2's ``R_fmt``, arXiv
2602.07774; DeepSeek-R1-style ``<think>...</think>`` checks); they are usually weighted low or
used as a gate (``rewards/compose.py``).
"""

from __future__ import annotations

import json
import re
from functools import reduce
from typing import Any, Literal

from pydantic import Field, field_validator

from rewards.base import Reward, RewardParams, Scored, completion_text

FLAG_VALUES = {"IGNORECASE": re.IGNORECASE, "DOTALL": re.DOTALL, "MULTILINE": re.MULTILINE}


class RegexParams(RewardParams):
    """Parameters of ``format.regex``."""

    pattern: str = Field(description="Python regular expression the whole completion must "
                         "match (re.fullmatch).")
    flags: list[Literal["IGNORECASE", "DOTALL", "MULTILINE"]] = Field(
        default_factory=lambda: ["DOTALL"],
        description="re flags by name; DOTALL (the default) lets '.' match newlines.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value


class RegexFormat(Reward):
    """1.0 when ``re.fullmatch(pattern, completion, flags)`` matches, else 0.0."""

    name = "format.regex"
    description = "1 if the whole completion matches the regex `pattern` (re.fullmatch), else 0"
    Params = RegexParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        flags = reduce(lambda a, b: a | b, (FLAG_VALUES[f] for f in self.params.flags),
                       re.RegexFlag(0))
        self._regex = re.compile(self.params.pattern, flags)  # compiled once

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        matched = self._regex.fullmatch(completion_text(completion)) is not None
        return Scored(float(matched), {"matched": matched})


FENCE = re.compile(r"```[ \t]*(?:json\b)?(.*?)```", re.DOTALL | re.IGNORECASE)
"""One Markdown fence, language tag ``json`` (any case) or none; the content is read as JSON."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str, allow_code_fence: bool) -> tuple[bool, Any]:
    """``(valid, value)`` of ``text`` as strict JSON (RFC 8259: ``NaN``/``Infinity`` rejected).
    Surrounding whitespace is ignored; with ``allow_code_fence`` the text may instead be exactly
    one Markdown fence, ```` ```json ```` (or a bare ```` ``` ````) ... ```` ``` ````, holding the
    JSON. Text before or after the fence makes it invalid."""
    text = text.strip()
    if allow_code_fence and (fenced := FENCE.fullmatch(text)):
        text = fenced.group(1)
    try:
        return True, json.loads(text, parse_constant=_reject_constant)
    except ValueError:  # json.JSONDecodeError is a ValueError
        return False, None


class JSONParams(RewardParams):
    """Parameters of ``format.json``."""

    required_keys: list[str] = Field(default_factory=list, description="Keys the JSON must "
                                     "have; when given, the JSON must be an object.")
    allow_code_fence: bool = Field(True, description="Also accept the JSON inside one "
                                   "```json ... ``` Markdown fence (the whole completion).")


class JSONFormat(Reward):
    """1.0 when the completion is JSON (an object with ``required_keys`` when any), else 0.0.

    ``details``: ``valid_json`` (bool), ``missing_keys`` (the required keys absent; all of them
    when the JSON is not an object or does not parse)."""

    name = "format.json"
    description = "1 if the completion parses as JSON (optionally fenced) with required_keys"
    Params = JSONParams

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        valid, value = parse_json(completion_text(completion), self.params.allow_code_fence)
        required = self.params.required_keys
        if valid and isinstance(value, dict):
            missing = [k for k in required if k not in value]
        else:
            missing = list(required)
        ok = valid and not missing
        return Scored(float(ok), {"valid_json": valid, "missing_keys": missing})
