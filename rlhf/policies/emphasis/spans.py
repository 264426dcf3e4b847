"""Units of an unaltered context, emphasis tags, the highlight budget and the byte-exact round trip.

HiLight (arXiv 2604.22565): an Emphasis Actor marks pivotal spans of the *unaltered* context with
``<start_important>`` ... ``<end_important>``; removing the tags must give back the original context
byte for byte, and the marked share of the context is capped by a budget γ.

- **Units** (what the actor selects, by index): ``sentence`` units end after ``.``, ``!`` or ``?``
  (plus closing quotes/brackets) followed by whitespace, or at a line end; ``phrase`` units further
  split a sentence after ``,``, ``;`` or ``:`` followed by whitespace. A unit is a character span
  ``[start, end)`` of the context with no leading or trailing whitespace; units never overlap and
  are separated by whitespace, in text order. (A rule, not a parser: ``"Mr. Smith"`` splits.)
- **Tokens** for the budget are whitespace-separated words (``\\S+``) of the context, so the budget
  does not depend on any model's tokenizer. ``marked_fraction`` = words inside marked spans / all
  words; a selection is within budget iff ``marked_fraction <= γ`` (1e-9 slack).
- **Tags** are inserted deterministically: the selected units are sorted, runs of consecutive unit
  indices are merged into one span (from the first unit's start to the last unit's end, the
  whitespace between them included), and each span gets ``<start_important>`` before its first
  character and ``<end_important>`` after its last. :func:`strip_tags` deletes every tag in one
  left-to-right pass; a context that already contains a tag string is rejected
  (:class:`TagInContextError`), and then the round trip is exact (both tags start with their only
  ``<`` and end with their only ``>``, so no tag occurrence can straddle context characters).
  :func:`emphasize` checks ``strip_tags(tagged) == context`` for every sample it builds and raises
  :class:`ContextAlteredError` otherwise (a real check, not an ``assert`` that ``-O`` removes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

START_TAG = "<start_important>"
END_TAG = "<end_important>"
UnitKind = Literal["sentence", "phrase"]
UNIT_KINDS: tuple[str, ...] = ("sentence", "phrase")
BUDGET_SLACK = 1e-9

_TAG_RE = re.compile(re.escape(START_TAG) + "|" + re.escape(END_TAG))
_LINE_RE = re.compile(r"[^\n]+")
_SENTENCE_RE = re.compile(r"""\S.*?(?:[.!?]+["'”’)\]]*(?=\s|\Z)|(?<=\S)(?=\s*\Z))""")
_PHRASE_END_RE = re.compile(r"[,;:](?=\s)")
_WORD_RE = re.compile(r"\S+")


class TagInContextError(ValueError):
    """The context already contains ``<start_important>`` or ``<end_important>``."""


class ContextAlteredError(AssertionError):
    """Removing the tags did not give back the original context byte for byte."""


@dataclass(frozen=True)
class Unit:
    """A selectable span ``[start, end)`` of the context (character offsets)."""

    start: int
    end: int

    def text(self, context: str) -> str:
        return context[self.start:self.end]


def check_context(context: str) -> None:
    """Reject a context that contains a tag string (its round trip could not be exact)."""
    if START_TAG in context or END_TAG in context:
        raise TagInContextError(f"the context contains {START_TAG!r} or {END_TAG!r}; emphasis "
                                "tags could not be removed exactly")


def _sentences(context: str) -> list[Unit]:
    units = []
    for line in _LINE_RE.finditer(context):
        for m in _SENTENCE_RE.finditer(line.group()):
            units.append(Unit(line.start() + m.start(), line.start() + m.end()))
    return units


def _phrases(context: str, sentence: Unit) -> list[Unit]:
    text = sentence.text(context)
    out, begin = [], 0
    for m in _PHRASE_END_RE.finditer(text):
        out.append((begin, m.end()))
        rest = text[m.end():]
        begin = m.end() + (len(rest) - len(rest.lstrip()))
    out.append((begin, len(text)))
    return [Unit(sentence.start + a, sentence.start + b) for a, b in out if b > a]


def segment(context: str, unit: UnitKind = "sentence") -> list[Unit]:
    """The units of ``context`` in text order (see the module docstring for the rules)."""
    if unit not in UNIT_KINDS:
        raise ValueError(f"unit must be one of {UNIT_KINDS}, got {unit!r}")
    sentences = _sentences(context)
    if unit == "sentence":
        return sentences
    return [p for s in sentences for p in _phrases(context, s)]


def word_spans(context: str) -> list[tuple[int, int]]:
    """Character spans of the whitespace-separated words (the budget's tokens)."""
    return [m.span() for m in _WORD_RE.finditer(context)]


def marked_fraction(context: str, spans: Iterable[tuple[int, int]]) -> float:
    """Share of the context's words that lie inside the marked ``spans`` (0 for an empty text)."""
    words = word_spans(context)
    if not words:
        return 0.0
    spans = list(spans)
    inside = sum(1 for ws, we in words if any(s <= ws and we <= e for s, e in spans))
    return inside / len(words)


def within_budget(fraction: float, budget: float) -> bool:
    return fraction <= budget + BUDGET_SLACK


def selection_spans(units: Sequence[Unit], indices: Iterable[int]) -> list[tuple[int, int]]:
    """Character spans of a selection: sorted, consecutive unit indices merged into one span."""
    picked = sorted(set(indices))
    for i in picked:
        if not 0 <= i < len(units):
            raise IndexError(f"unit index {i} out of range (0..{len(units) - 1})")
    spans: list[tuple[int, int]] = []
    previous = None
    for i in picked:
        if previous is not None and i == previous + 1:
            spans[-1] = (spans[-1][0], units[i].end)
        else:
            spans.append((units[i].start, units[i].end))
        previous = i
    return spans


def insert_tags(context: str, spans: Sequence[tuple[int, int]]) -> str:
    """``context`` with ``START_TAG``/``END_TAG`` around each span (sorted, non-overlapping;
    touching spans give ``<end_important><start_important>``)."""
    check_context(context)
    out, cursor = [], 0
    for start, end in sorted(spans):
        if start < cursor or end < start or end > len(context):
            raise ValueError(f"spans must be sorted, non-overlapping and inside the context: "
                             f"({start}, {end})")
        out += [context[cursor:start], START_TAG, context[start:end], END_TAG]
        cursor = end
    out.append(context[cursor:])
    return "".join(out)


def strip_tags(tagged: str) -> str:
    """Delete every emphasis tag (one left-to-right pass)."""
    return _TAG_RE.sub("", tagged)


def parse_tagged(tagged: str) -> tuple[str, list[tuple[int, int]]]:
    """The plain text and the marked spans (offsets in the plain text) of a tagged text.

    Raises ``ValueError`` for unbalanced or nested tags."""
    plain: list[str] = []
    spans: list[tuple[int, int]] = []
    length, cursor, open_at = 0, 0, None
    for m in _TAG_RE.finditer(tagged):
        piece = tagged[cursor:m.start()]
        plain.append(piece)
        length += len(piece)
        cursor = m.end()
        if m.group() == START_TAG:
            if open_at is not None:
                raise ValueError(f"nested {START_TAG} at character {m.start()}")
            open_at = length
        else:
            if open_at is None:
                raise ValueError(f"{END_TAG} without {START_TAG} at character {m.start()}")
            spans.append((open_at, length))
            open_at = None
    if open_at is not None:
        raise ValueError(f"{START_TAG} is never closed")
    plain.append(tagged[cursor:])
    return "".join(plain), spans


def check_round_trip(context: str, tagged: str) -> None:
    """Raise :class:`ContextAlteredError` unless removing the tags gives back ``context`` exactly
    (compared as UTF-8 bytes)."""
    if strip_tags(tagged).encode("utf-8") != context.encode("utf-8"):
        raise ContextAlteredError("removing the emphasis tags does not give back the original "
                                  "context byte for byte")


@dataclass(frozen=True)
class Emphasis:
    """One emphasised sample: the tagged text, the selection and its share of the context."""

    tagged: str
    indices: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    marked_fraction: float


def emphasize(context: str, units: Sequence[Unit], indices: Iterable[int]) -> Emphasis:
    """Tag the selected units of ``context``; the byte-exact round trip is checked every time."""
    picked = tuple(sorted(set(indices)))
    spans = selection_spans(units, picked)
    tagged = insert_tags(context, spans)
    check_round_trip(context, tagged)
    return Emphasis(tagged, picked, tuple(spans), marked_fraction(context, spans))


def validate_tagged(context: str, tagged: str, budget: float) -> str | None:
    """Why a tagged text (e.g. from a rewriting actor) is invalid for ``context``, or ``None``:
    altered context, unbalanced/nested tags, or more than ``budget`` of the words marked."""
    try:
        plain, spans = parse_tagged(tagged)
    except ValueError as exc:
        return f"bad tags: {exc}"
    if plain.encode("utf-8") != context.encode("utf-8"):
        return "the context was altered"
    fraction = marked_fraction(context, spans)
    if not within_budget(fraction, budget):
        return f"over budget: {fraction:.3f} of the words marked > {budget}"
    return None
