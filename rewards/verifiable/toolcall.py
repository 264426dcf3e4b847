"""Tool-call reward: well-formed JSON calls, known tools, schema-valid arguments, expected calls.

Calls are atomic JSON objects ``{"name": str, "arguments": {...}}`` between the markers
``<|toolcall_begin|>`` and ``<|toolcall_end|>`` (DuplexSLA's action channel; the markers are
parameters). A verifiable tool-call reward "checks JSON validity, tool name against a schema, and
argument match" (DuplexSLA); here each check is one part in ``[0, 1]``:

- ``well_formed`` = (call blocks whose text parses as a JSON object with a string ``name`` and an
  object ``arguments``) / (call blocks). A begin marker without an end marker is a block that is
  not well formed (its text runs to the end of the completion).
- ``known_tool`` = (well-formed calls whose name is in ``tools``) / (well-formed calls).
- ``valid_args`` = (calls to a known tool whose arguments validate against that tool's JSON Schema,
  Draft 2020-12) / (calls to a known tool). Our choice: unknown-tool calls are left out of this
  denominator (``known_tool`` already counts them), and the part is 0 when there is none.
- ``match`` (only when the row has ``expected``) = (expected calls matched one-to-one by a
  well-formed call with the same name and JSON-equal arguments, order ignored) /
  ``max(len(expected), call blocks)``: extra calls, malformed ones included, cost.

With no call block at all, every part is 1 when ``expected == []`` (the model rightly made no
call) and 0 otherwise. The reward is the weighted mean of the parts present (``weights``; ``match``
is absent without ``expected``), in ``[0, 1]``.

Columns: ``tools`` (required) is a list of ``{"name", "parameters": <JSON Schema>}`` or OpenAI's
``{"type": "function", "function": {"name", "parameters"}}``; a tool without ``parameters`` takes
any arguments object. ``expected`` (optional) is a list of ``{"name", "arguments"}``. Either may be
given as the object or as its JSON text. A malformed tool list or expected list, or an invalid
schema, scores the row ``None`` with ``details.error``.

JSON equality: objects compare key by key regardless of order, numbers by value (``1 == 1.0``),
and ``true`` / ``false`` are not numbers (``true != 1``), as in JSON Schema's ``const``.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewards.base import Reward, RewardParams, Scored, completion_text
from rewards.verifiable.json_values import load_json_column

PARTS = ("well_formed", "known_tool", "valid_args", "match")


class ToolCallWeights(BaseModel):
    """Weight of each part in the reward's weighted mean (non-negative; omitted keys keep 1)."""

    model_config = ConfigDict(extra="forbid")

    well_formed: float = Field(1.0, ge=0, description="Weight of the JSON-validity part.")
    known_tool: float = Field(1.0, ge=0, description="Weight of the known-tool-name part.")
    valid_args: float = Field(1.0, ge=0, description="Weight of the schema-valid-arguments part.")
    match: float = Field(1.0, ge=0, description="Weight of the expected-calls part.")

    @model_validator(mode="after")
    def _not_all_zero(self) -> "ToolCallWeights":
        if not any(getattr(self, part) > 0 for part in PARTS):
            raise ValueError("at least one weight must be positive")
        return self


class ToolCallParams(RewardParams):
    """Parameters of :class:`ToolCallJSON`."""

    begin_marker: str = Field("<|toolcall_begin|>", min_length=1,
                              description="Text that opens a tool call (DuplexSLA).")
    end_marker: str = Field("<|toolcall_end|>", min_length=1,
                            description="Text that closes a tool call (DuplexSLA).")
    weights: ToolCallWeights = Field(default_factory=ToolCallWeights,
                                     description="Weights of well_formed, known_tool, "
                                                 "valid_args, match in the weighted mean.")


def call_blocks(text: str, begin: str, end: str) -> list[str]:
    """The text inside each ``begin ... end`` pair, in order; an unclosed block runs to the end
    of the text."""
    blocks = []
    pos = text.find(begin)
    while pos != -1:
        start = pos + len(begin)
        stop = text.find(end, start)
        if stop == -1:
            blocks.append(text[start:])
            break
        blocks.append(text[start:stop])
        pos = text.find(begin, stop + len(end))
    return blocks


def parse_call(block: str) -> dict[str, Any] | None:
    """The call ``{"name": str, "arguments": dict}`` in a block's text, or ``None``."""
    try:
        call = json.loads(block)
    except (ValueError, RecursionError):
        return None
    if (isinstance(call, dict) and isinstance(call.get("name"), str)
            and isinstance(call.get("arguments"), dict)):
        return call
    return None


def canonical(value: Any) -> str:
    """A text that is equal for two JSON values exactly when they are JSON-equal."""
    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            return int(v) if isinstance(v, float) and v.is_integer() else v
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return repr(v)
    return json.dumps(norm(value), sort_keys=True, allow_nan=True)


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> Draft202012Validator:
    schema = json.loads(schema_text)
    Draft202012Validator.check_schema(schema)  # SchemaError for an invalid schema
    return Draft202012Validator(schema)


def tool_validators(tools: Any) -> dict[str, Draft202012Validator]:
    """``{tool name: validator of its arguments}`` from the ``tools`` column (either form).

    Raises ``ValueError`` for a malformed list, a repeated name or an invalid schema."""
    tools = load_json_column(tools, "tools", (list, tuple))
    out = {}
    for i, tool in enumerate(tools):
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            tool = tool["function"]  # OpenAI form
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise ValueError(f"tools[{i}] must be an object with a string 'name'")
        schema = tool.get("parameters", {})
        if not isinstance(schema, (dict, bool)):
            raise ValueError(f"tools[{i}] ({tool['name']}): 'parameters' must be a JSON Schema")
        if tool["name"] in out:
            raise ValueError(f"tools[{i}]: tool {tool['name']!r} is defined twice")
        try:
            out[tool["name"]] = _validator(json.dumps(schema, sort_keys=True))
        except SchemaError as exc:
            raise ValueError(f"tools[{i}] ({tool['name']}): invalid JSON Schema: "
                             f"{exc.message}") from None
    return out


def expected_calls(expected: Any) -> list[tuple[str, str]]:
    """The ``expected`` column as ``(name, canonical arguments)`` pairs (``ValueError`` if
    malformed)."""
    expected = load_json_column(expected, "expected", (list, tuple))
    out = []
    for i, call in enumerate(expected):
        if (not isinstance(call, dict) or not isinstance(call.get("name"), str)
                or not isinstance(call.get("arguments"), dict)):
            raise ValueError(f"expected[{i}] must be an object with a string 'name' and an "
                             "object 'arguments'")
        out.append((call["name"], canonical(call["arguments"])))
    return out


class ToolCallJSON(Reward):
    """Tool calls between markers: JSON validity, known tool, schema-valid arguments and (with
    ``expected``) an order-insensitive match of the expected calls (DuplexSLA).

    ``details``: each part present, ``n_calls`` (call blocks), ``validation_error`` (the message
    of the first call whose arguments fail their schema, or ``None``)."""

    name = "toolcall.json"
    description = ("Tool calls between markers: valid JSON, known tool, schema-valid arguments, "
                   "expected calls matched")
    columns: ClassVar[tuple[str, ...]] = ("tools",)
    optional_columns: ClassVar[tuple[str, ...]] = ("expected",)
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    Params: ClassVar[type[RewardParams]] = ToolCallParams

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        validators = tool_validators(row.get("tools"))
        expected = None if row.get("expected") is None else expected_calls(row["expected"])
        params = self.params
        blocks = call_blocks(completion_text(completion), params.begin_marker, params.end_marker)
        details: dict[str, Any] = {"n_calls": len(blocks), "validation_error": None}
        if not blocks:
            score = 1.0 if expected == [] else 0.0
            parts = {part: score for part in PARTS[:3]}
            if expected is not None:
                parts["match"] = score
            return self._combine(parts, details)
        calls = [c for c in map(parse_call, blocks) if c is not None]
        known = [c for c in calls if c["name"] in validators]
        n_valid = 0
        for call in known:
            error = best_match(validators[call["name"]].iter_errors(call["arguments"]))
            if error is None:
                n_valid += 1
            elif details["validation_error"] is None:
                details["validation_error"] = f"{call['name']}: {error.message}"
        parts = {"well_formed": len(calls) / len(blocks),
                 "known_tool": len(known) / len(calls) if calls else 0.0,
                 "valid_args": n_valid / len(known) if known else 0.0}
        if expected is not None:
            emitted = Counter((c["name"], canonical(c["arguments"])) for c in calls)
            matched = sum((Counter(expected) & emitted).values())
            parts["match"] = matched / max(len(expected), len(blocks))
        return self._combine(parts, details)

    def _combine(self, parts: dict[str, float], details: dict[str, Any]) -> Scored:
        """The weighted mean of the parts present, with the parts in the details."""
        weights = self.params.weights
        total = sum(getattr(weights, part) for part in parts)
        details.update(parts)
        if total <= 0:
            details["error"] = "the weights of the parts present sum to 0"
            return Scored(None, details)
        return Scored(sum(getattr(weights, p) * v for p, v in parts.items()) / total, details)
