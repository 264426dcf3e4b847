"""``math.exact``: 1.0 when the completion's final answer equals the row's ``answer``, else 0.0.

Final answer (the verifiable-reward convention of DAPO, arXiv 2503.14476, and the MATH/GSM8K
graders):

1. the content of the **last** ``\\boxed{...}`` in the completion, braces balanced (nested
   braces are fine: ``\\boxed{\\frac{1}{2}}`` gives ``\\frac{1}{2}``); a ``\\boxed{`` that is
   never closed is skipped (the previous one is used, else step 2);
2. otherwise the **last number** in the text: an integer or decimal, optionally negative
   (a ``-`` right before the digits, not after a letter, digit or closing bracket, so ``5-3``
   gives ``3``), with thousands separators (``1,234,567``: groups of exactly three digits), or a
   simple fraction of integers ``a/b``; a percentage is the plain number (``50%`` -> ``50``).
   ``1,2,3`` is a list: the last number is ``3``.

Comparison, in order:

- **numeric** when both the extracted answer and ``answer`` parse as numbers (the forms above,
  also a whole-string ``\\frac{a}{b}`` / ``\\dfrac`` / ``\\tfrac`` of numbers, surrounding ``$``
  and a trailing ``%`` or period allowed, spaces ignored — the LaTeX fractions are our
  addition):
  ``|x - y| <= tolerance * max(1, |y|)`` with ``y`` the reference answer, i.e. absolute
  tolerance for ``|y| <= 1`` and relative beyond (param ``tolerance``, default ``1e-6``);
- **string** otherwise: both normalised (strip, lowercase, strip surrounding ``$`` and spaces,
  strip a trailing period; inner spaces are kept) and compared for equality.

``details``: ``extracted`` (the answer text found, ``None`` when there is none), ``answer``,
``match_kind`` (``"numeric" | "string" | "none"``). No extractable answer scores 0.0 with
``match_kind = "none"``. A row whose ``answer`` is missing (``None``) is not scored (``None``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import Field

from rewards.base import Reward, RewardParams, Scored, completion_text

_INT = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)"
_NUMBER_BODY = rf"(?:{_INT}/{_INT}(?!\.\d)|{_INT}(?:\.\d+)?|\.\d+)"
NUMBER_IN_TEXT = re.compile(rf"(?<![\d.]){_NUMBER_BODY}")
"""A number (no sign) not starting inside another number; the sign is read separately."""
WHOLE_NUMBER = re.compile(rf"[-+]?{_NUMBER_BODY}")
LATEX_FRACTION = re.compile(
    r"\\[dt]?frac\s*\{\s*([-+]?[\d.,]+)\s*\}\s*\{\s*([-+]?[\d.,]+)\s*\}")
BOXED = re.compile(r"\\boxed\s*\{")
_NEGATIVE_AFTER = re.compile(r"[\w)\]}]")


def boxed_contents(text: str) -> str | None:
    """The content of the last balanced ``\\boxed{...}`` of ``text``, or ``None``."""
    for match in reversed(list(BOXED.finditer(text))):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            char = text[i]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i]
    return None


def last_number(text: str) -> str | None:
    """The last number of ``text`` as written (with its ``-`` sign), or ``None``."""
    match = None
    for match in NUMBER_IN_TEXT.finditer(text):
        pass
    if match is None:
        return None
    start = match.start()
    if start > 0 and text[start - 1] == "-" and (
            start == 1 or not _NEGATIVE_AFTER.match(text[start - 2])):
        start -= 1
    return text[start:match.end()]


def extract_answer(text: str) -> str | None:
    """The final answer of a completion: last ``\\boxed{}`` content, else the last number."""
    boxed = boxed_contents(text)
    return boxed if boxed is not None else last_number(text)


def normalize_answer(text: str) -> str:
    """Strip, lowercase, strip surrounding ``$`` and spaces and a trailing period (repeatedly)."""
    text = text.lower()
    previous = None
    while text != previous:
        previous = text
        text = text.strip().strip("$").rstrip(".")
    return text


def _plain_number(text: str) -> float | None:
    if not WHOLE_NUMBER.fullmatch(text):
        return None
    text = text.replace(",", "")
    if "/" in text:
        numerator, denominator = text.split("/")
        return float(numerator) / float(denominator) if float(denominator) else None
    return float(text)


def parse_number(value: Any) -> float | None:
    """``value`` as a finite float (ints and floats as they are; text in the forms of the module
    docstring), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    text = normalize_answer(str(value)).replace("\u2212", "-").replace(" ", "")
    text = text.removesuffix("\\%").removesuffix("%")
    number = _plain_number(text)
    if number is None and (frac := LATEX_FRACTION.fullmatch(text)):
        numerator, denominator = (_plain_number(g) for g in frac.groups())
        if numerator is not None and denominator:
            number = numerator / denominator
    return number


class MathExactParams(RewardParams):
    """Parameters of ``math.exact``."""

    tolerance: float = Field(1e-6, ge=0, description="Numeric tolerance, absolute for |answer| "
                             "<= 1 and relative beyond: |x - y| <= tolerance * max(1, |y|).")


class MathExact(Reward):
    """Final-answer exact match: last ``\\boxed{}`` or last number vs the ``answer`` column."""

    name = "math.exact"
    description = "1 if the last \\boxed{} (else last number) equals the answer column, else 0"
    columns = ("answer",)
    value_range = (0.0, 1.0)
    Params = MathExactParams

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        answer = row.get("answer")
        if answer is None:
            raise ValueError("the row has no answer")
        extracted = extract_answer(completion_text(completion))
        details: dict[str, Any] = {"extracted": extracted, "answer": answer}
        if extracted is None:
            return Scored(0.0, {**details, "match_kind": "none"})
        x, y = parse_number(extracted), parse_number(answer)
        if x is not None and y is not None:
            ok = abs(x - y) <= self.params.tolerance * max(1.0, abs(y))
            return Scored(float(ok), {**details, "match_kind": "numeric"})
        ok = normalize_answer(extracted) == normalize_answer(str(answer))
        return Scored(float(ok), {**details, "match_kind": "string"})
