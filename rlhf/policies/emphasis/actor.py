"""The Emphasis Actor's text interface: its prompt, its strictly parsed output, random baselines.

The actor is an ordinary text policy (:class:`rlhf.policies.text.TextPolicy`, trained by the
``grpo`` stage); it never rewrites the context. Its prompt lists the context's units with their
indices, and it answers with the indices of the units to emphasise:

```
Q: Which town does Mia live in?
[0] Tom works at the mill.
[1] Mia has a small house in Oslo.
...
Important:
```
→ ``1`` (or ``1,3``). Tags are then inserted by :func:`rlhf.policies.emphasis.spans.emphasize`.

**Output grammar** (:func:`parse_indices`; anything else is unparsable): optional surrounding
whitespace, then ASCII decimal indices separated by commas (spaces allowed around a comma), e.g.
``2`` or ``2, 5``; every index in ``0..n_units-1``; no repeats; any order. With
``allow_empty=True`` the word ``none`` (any case) selects nothing; otherwise it is unparsable.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from rlhf.policies.emphasis.spans import Unit, marked_fraction, selection_spans, within_budget

PROMPT_TEMPLATE = "Q: {question}\n{units}\nImportant:"
"""The actor's prompt; ``{units}`` is one ``[i] unit text`` line per unit."""
UNIT_LINE = "[{i}] {text}"
_INDICES_RE = re.compile(r"[0-9]+(?:[ \t]*,[ \t]*[0-9]+)*")


class IndexParseError(ValueError):
    """The actor's output is not a valid list of unit indices."""


def actor_prompt(question: str, context: str, units: Sequence[Unit],
                 template: str = PROMPT_TEMPLATE) -> str:
    """The actor's prompt: the question and the numbered units (newlines inside a unit become
    spaces in the prompt only; the context itself is never changed)."""
    lines = "\n".join(UNIT_LINE.format(i=i, text=" ".join(u.text(context).split()))
                      for i, u in enumerate(units))
    return template.format(question=" ".join(question.split()), units=lines)


def parse_indices(text: str, n_units: int, allow_empty: bool = False) -> tuple[int, ...]:
    """The unit indices of an actor output, in the order written (see the module docstring)."""
    body = text.strip()
    if allow_empty and body.lower() == "none":
        return ()
    if not _INDICES_RE.fullmatch(body):
        raise IndexParseError(f"not a comma-separated list of unit indices: {text[:40]!r}")
    indices = tuple(int(part) for part in body.split(","))
    if len(set(indices)) != len(indices):
        raise IndexParseError(f"repeated unit index in {body!r}")
    for i in indices:
        if i >= n_units:
            raise IndexParseError(f"unit index {i} out of range (0..{n_units - 1})")
    return indices


def format_indices(indices: Sequence[int]) -> str:
    """The canonical written form of a selection (``"1,3"``; ``"none"`` when empty)."""
    return ",".join(str(i) for i in sorted(indices)) if indices else "none"


def fits(context: str, units: Sequence[Unit], indices: Sequence[int], budget: float) -> bool:
    """Whether the selection marks at most ``budget`` of the context's words."""
    return within_budget(marked_fraction(context, selection_spans(units, indices)), budget)


def random_selection(context: str, units: Sequence[Unit], budget: float,
                     rng: random.Random) -> tuple[int, ...]:
    """Random emphasis of the same budget: units in a random order, each added if the selection
    still fits the budget (so it fills the budget as an actor could)."""
    order = list(range(len(units)))
    rng.shuffle(order)
    chosen: list[int] = []
    for i in order:
        if fits(context, units, [*chosen, i], budget):
            chosen.append(i)
    return tuple(sorted(chosen))


def random_single(context: str, units: Sequence[Unit], budget: float,
                  rng: random.Random) -> tuple[int, ...]:
    """One random unit among those that fit the budget alone (empty if none does): the format
    the warm start teaches."""
    fitting = [i for i in range(len(units)) if fits(context, units, [i], budget)]
    return (rng.choice(fitting),) if fitting else ()
