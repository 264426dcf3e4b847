"""Record formats as TRL accepts them, and row-level validation.

Two kinds of record:

``preference`` (DPO, reward models)
    ``prompt``, ``chosen``, ``rejected``. Each is a non-empty string (the *standard* form) or a
    list of chat messages ``{"role": "system"|"user"|"assistant"|"tool", "content": str}`` (the
    *conversational* form); all three must use the same form. ``prompt`` may be omitted only in
    the *implicit prompt* chat form, where ``chosen`` and ``rejected`` are whole conversations.
    Optional: ``margin`` (a finite number), ``id`` (a string or an integer), ``metadata`` (an
    object). Any other column is allowed and kept.

``prompt`` (RL, SFT, evaluation)
    ``prompt``: a non-empty string or a list of messages. Any other column is kept.

:func:`validate_row` returns every problem as a ``(field, problem)`` pair; a problem of the row
as a whole (``chosen and rejected are identical``) has the empty field ``""``.
:func:`format_problem` joins a pair into the ``field: problem`` text used in error messages.
A value of ``None`` counts as absent, because columnar files (Parquet, Arrow) store a missing
optional field as null.
"""

from __future__ import annotations

import math
from typing import Any, Literal

Kind = Literal["preference", "prompt"]
Problem = tuple[str, str]

KINDS: tuple[str, ...] = ("preference", "prompt")
"""Record kinds :func:`validate_row` knows."""
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
"""Chat roles a message may have."""
TEXT, MESSAGES, IMPLICIT = "text", "messages", "messages with implicit prompt"
"""The forms a record can take (see :func:`record_form`)."""

_PROMPT_MISSING = ("missing (only chat records whose chosen and rejected are whole "
                   "conversations may omit it)")


def format_problem(field: str, problem: str) -> str:
    """``"field: problem"``, or just ``problem`` for a problem of the whole row (empty field)."""
    return f"{field}: {problem}" if field else problem


def type_name(value: Any) -> str:
    """The Python type name used in ``expected ..., got <type>`` messages (``null`` for None)."""
    return "null" if value is None else type(value).__name__


def content_form(value: Any) -> str | None:
    """``"text"`` for a string, ``"messages"`` for a list, ``None`` for anything else."""
    if isinstance(value, str):
        return TEXT
    if isinstance(value, (list, tuple)):
        return MESSAGES
    return None


def record_form(kind: str, row: dict[str, Any]) -> str | None:
    """The form of a valid row: ``text``, ``messages`` or ``messages with implicit prompt``.

    All rows of one dataset must share a form (TRL builds one column type per field); for a row
    without a determinable form (an invalid one) this returns ``None``.
    """
    if row.get("prompt") is not None:
        return content_form(row["prompt"])
    if kind == "preference" and content_form(row.get("chosen")) == MESSAGES:
        return IMPLICIT
    return None


def validate_row(kind: Kind | str, row: dict[str, Any]) -> list[Problem]:
    """All problems of one row as ``(field, problem)`` pairs; an empty list when it is valid.

    ``kind`` is ``"preference"`` or ``"prompt"`` (anything else raises ``ValueError``).
    """
    check = _CHECKS.get(kind)
    if check is None:
        raise ValueError(f"unknown record kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if not isinstance(row, dict):
        return [("", f"expected an object, got {type_name(row)}")]
    return check(row)


# ---------------------------------------------------------------------------------------------
# Field checks (small functions, one per concern)
# ---------------------------------------------------------------------------------------------


def _check_content(field: str, value: Any) -> list[Problem]:
    """A prompt or completion: a non-empty string or a non-empty list of valid messages."""
    form = content_form(value)
    if form == TEXT:
        return [] if value.strip() else [(field, "empty string")]
    if form == MESSAGES:
        if not value:
            return [(field, "empty list of messages")]
        for i, message in enumerate(value, start=1):
            problem = _message_problem(message)
            if problem:
                return [(field, f"message {i}: {problem}")]
        return []
    return [(field, f"expected a string or a list of messages, got {type_name(value)}")]


def _message_problem(message: Any) -> str | None:
    """The first problem of one chat message, or ``None``."""
    if not isinstance(message, dict):
        return f"expected an object with role and content, got {type_name(message)}"
    role = message.get("role")
    if role is None:
        return "role missing"
    if not isinstance(role, str):
        return f"role: expected a string, got {type_name(role)}"
    if role not in ROLES:
        return f"role {role!r} is not one of {', '.join(ROLES)}"
    content = message.get("content")
    if content is None:
        return "content missing"
    if not isinstance(content, str):
        return f"content: expected a string, got {type_name(content)}"
    return None


def _check_margin(value: Any) -> list[Problem]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [("margin", f"expected a finite number, got {type_name(value)}")]
    return [] if math.isfinite(value) else [("margin", "not a finite number")]


def _check_id(value: Any) -> list[Problem]:
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool)):
        return []
    return [("id", f"expected a string or an integer, got {type_name(value)}")]


def _check_metadata(value: Any) -> list[Problem]:
    if value is None or isinstance(value, dict):
        return []
    return [("metadata", f"expected an object, got {type_name(value)}")]


def _mixed_forms(forms: dict[str, str]) -> list[Problem]:
    """One problem when prompt/chosen/rejected do not all use the same form."""
    if len(set(forms.values())) < 2:
        return []
    first = next(iter(forms.values()))
    same = [f for f, form in forms.items() if form == first]
    other = [f for f, form in forms.items() if form != first]
    return [("", f"mixed forms: {_describe(same, first)} but {_describe(other, _flip(first))}; "
                 "prompt, chosen and rejected must all be text or all be lists of messages")]


def _flip(form: str) -> str:
    return MESSAGES if form == TEXT else TEXT


def _describe(fields: list[str], form: str) -> str:
    names = " and ".join(fields)
    plural = len(fields) > 1
    if form == TEXT:
        return f"{names} {'are' if plural else 'is'} text"
    return f"{names} {'are lists' if plural else 'is a list'} of messages"


# ---------------------------------------------------------------------------------------------
# Record kinds
# ---------------------------------------------------------------------------------------------


def _check_preference(row: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    forms: dict[str, str] = {}
    for field in ("prompt", "chosen", "rejected"):
        value = row.get(field)
        if value is None:
            continue
        problems += _check_content(field, value)
        form = content_form(value)
        if form:
            forms[field] = form
    missing = [f for f in ("chosen", "rejected") if row.get(f) is None]
    if row.get("prompt") is None and MESSAGES not in forms.values():
        problems.append(("prompt", _PROMPT_MISSING))
    problems += [(f, "missing") for f in missing]
    problems += _mixed_forms(forms)
    if not problems and row["chosen"] == row["rejected"]:
        problems.append(("", "chosen and rejected are identical"))
    problems += _check_margin(row.get("margin"))
    problems += _check_id(row.get("id"))
    problems += _check_metadata(row.get("metadata"))
    return _field_order(problems)


def _check_prompt(row: dict[str, Any]) -> list[Problem]:
    value = row.get("prompt")
    if value is None:
        return [("prompt", "missing")]
    return _check_content("prompt", value)


_ORDER = {"prompt": 0, "chosen": 1, "rejected": 2, "": 3, "margin": 4, "id": 5, "metadata": 6}


def _field_order(problems: list[Problem]) -> list[Problem]:
    """Problems sorted by field (prompt, chosen, rejected, row, margin, id, metadata); stable."""
    return sorted(problems, key=lambda p: _ORDER.get(p[0], len(_ORDER)))


_CHECKS = {"preference": _check_preference, "prompt": _check_prompt}
