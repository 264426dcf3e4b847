"""JSON values shared by the structured rewards (ranking, tool calls, GR2 reranking):
JSON completions (optionally fenced), columns that hold objects or their JSON text, item ids."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_DECODER = json.JSONDecoder()
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S | re.I)


def parse_json_completion(text: str) -> Any:
    """The JSON value of a completion's text: the whole text (surrounding whitespace allowed),
    optionally wrapped in one ```` ```json ```` / ```` ``` ```` fence. Raises ``ValueError``."""
    try:  # fast path: the text is exactly one JSON value (one C-level decode)
        value, end = _DECODER.raw_decode(text)
        if end == len(text):
            return value
    except (ValueError, RecursionError):
        pass
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    try:
        return json.loads(stripped)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def load_json_column(value: Any, column: str, kind: type | tuple[type, ...]) -> Any:
    """A structured column's value: the object itself, or the object encoded as JSON text.

    Raises ``ValueError`` naming the column when the text is not JSON or the type is wrong."""
    if isinstance(value, (str, bytes, bytearray)):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"column {column!r} holds text that is not JSON: {exc}") from None
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValueError(f"column {column!r} must be a {names} (or its JSON text), "
                         f"got {type(value).__name__}")
    return value


def item_id(value: Any) -> str:
    """An item id as a string: strings as they are, integers (and integral floats) in decimal.

    Raises ``ValueError`` for anything else (booleans, null, lists, objects, NaN)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"an item id must be a string or a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"an item id must be finite, got {value!r}")
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def id_list(values: list) -> list[str]:
    """Every element of a JSON list as an item id (``ValueError`` if one is not an id)."""
    try:
        "".join(values)  # TypeError unless every element is a str: a fast C-level check
        return values
    except TypeError:
        return [item_id(v) for v in values]


def per_row(value: Any, n: int) -> list[Any]:
    """A column as one value per row, with :func:`rewards.base.row_columns`' rules: a list or
    tuple is indexed (``None`` past its end), anything else is the same for every row."""
    if isinstance(value, (list, tuple)):
        return list(value[:n]) + [None] * (n - len(value))
    return [value] * n
