"""The synthetic persona-dialogue task and its exact ground truth (persona consistency).

A persona is one value per slot, stated as three facts in a fixed order::

    Persona: I have a dog. I like music. I live in the town.
    User: I am Anna. What do you like?
    Bot:

The policy writes the bot's next turn (``" I like music."``). Every slot value is one token of
the tiny tokenizer, so the task is about *which* word, not spelling.

Ground truth (:func:`persona_score`), computed from the turn's words, the persona and the asked
slot:

- **incoherent** (not one plain sentence: :data:`WELL_FORMED` fails, e.g. word salad or broken
  subwords): score 0, judge label 1;
- a **contradiction** (the turn names a value of some slot other than the persona's value for
  that slot): score 0, judge label 1;
- **consistent** (no contradiction, and the persona's value of the asked slot is named): score 1,
  judge label 5;
- **neutral** (neither): score 0.25, judge label 2.

So ``score = (label - 1) / 4``, the default map of a 1..5 pointwise judge; a perfect judge's
reward equals the hidden score. :func:`on_topic` is the cheap verifiable proxy: the turn names
*some* value of the asked slot, right or wrong.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

SLOTS: dict[str, tuple[str, ...]] = {
    "have": ("dog", "cat", "boat", "piano"),
    "like": ("music", "books", "tea", "soup"),
    "live": ("town", "city", "forest", "garden"),
}
"""Slot -> its values (each a single token of the tiny tokenizer)."""

FACT = {"have": "I have a {v}.", "like": "I like {v}.", "live": "I live in the {v}."}
"""How a fact (and a consistent or contradicting turn) about a slot is worded."""

QUESTIONS = {"have": ("What do you have?", "Do you have a pet?"),
             "like": ("What do you like?", "What do you enjoy?"),
             "live": ("Where do you live?", "Where is your home?")}
"""User questions that ask about each slot."""

USERS = ("Anna", "Ben", "Clara", "David", "Ella", "Finn", "Grace", "Hugo", "Iris", "Jack", "Lily",
         "Max", "Nora", "Omar", "Paul", "Rosa", "Sam", "Tom", "Uma", "Zoe")
"""Users who introduce themselves before asking (varies the dialogue context)."""

NEUTRAL = ("I do not know.", "That is a good question.", "Let me think.", "Nice to meet you.")
"""Turns that name no slot value."""

LABELS = {"incoherent": 1, "contradiction": 1, "neutral": 2, "consistent": 5}
"""Judge label (1..5) per ground-truth class."""

WELL_FORMED = re.compile(r"\s*[A-Z][a-z]*(?: [a-z]+)*[.?!]\s*")
"""One plain sentence: a capitalised word, lowercase words, a final mark (re.fullmatch)."""

_WORD = re.compile(r"[a-z]+")
_VALUE_SLOT = {v: s for s, values in SLOTS.items() for v in values}


def sample_persona(rng: random.Random) -> dict[str, str]:
    """One value per slot, uniformly."""
    return {slot: rng.choice(values) for slot, values in SLOTS.items()}


def persona_text(facts: Mapping[str, str]) -> str:
    """``"I have a dog. I like music. I live in the town."`` (slot order of :data:`SLOTS`)."""
    return " ".join(FACT[s].format(v=facts[s]) for s in SLOTS)


def prompt_text(facts: Mapping[str, str], question: str) -> str:
    """The policy's prompt: persona, the user's turn, and the bot's cue."""
    return f"Persona: {persona_text(facts)}\nUser: {question}\nBot:"


def classify(turn: str, facts: Mapping[str, str], slot: str) -> str:
    """``incoherent``, ``contradiction``, ``consistent`` or ``neutral`` (module docstring)."""
    if not WELL_FORMED.fullmatch(turn):
        return "incoherent"
    words = set(_WORD.findall(turn.lower()))
    named = {v: _VALUE_SLOT[v] for v in words if v in _VALUE_SLOT}
    if any(facts[s] != v for v, s in named.items()):
        return "contradiction"
    return "consistent" if facts[slot] in named else "neutral"


def persona_score(turn: str, facts: Mapping[str, str], slot: str) -> float:
    """Hidden ground truth in [0, 1]: 0 incoherent or contradiction, 0.25 neutral, 1 consistent."""
    return (LABELS[classify(turn, facts, slot)] - 1) / 4


def on_topic(turn: str, slot: str) -> float:
    """The verifiable proxy: 1.0 when the turn names any value of the asked slot, else 0.0."""
    words = set(_WORD.findall(turn.lower()))
    return 1.0 if words & set(SLOTS[slot]) else 0.0


def sample_turn(rng: random.Random, facts: Mapping[str, str], slot: str,
                p_consistent: float, p_neutral: float) -> str:
    """A bot turn (with a leading space, as a completion): consistent with probability
    ``p_consistent``, neutral with ``p_neutral``, else the asked slot with a wrong value."""
    u = rng.random()
    if u < p_consistent:
        value = facts[slot]
    elif u < p_consistent + p_neutral:
        return " " + rng.choice(NEUTRAL)
    else:
        value = rng.choice([v for v in SLOTS[slot] if v != facts[slot]])
    return " " + FACT[slot].format(v=value)


def sample_cast(rng: random.Random, n: int) -> list[dict[str, str]]:
    """``n`` distinct personas (the bot characters of a run)."""
    cast: list[dict[str, str]] = []
    while len(cast) < n:
        persona = sample_persona(rng)
        if persona not in cast:
            cast.append(persona)
    return cast


def n_contexts(n_personas: int) -> int:
    """Distinct prompts of a cast: persona x user x question."""
    return n_personas * len(USERS) * sum(len(q) for q in QUESTIONS.values())


def sample_case(rng: random.Random, cast: list[dict[str, str]]) -> dict[str, Any]:
    """A prompt row: ``prompt``, ``facts`` (slot -> value) and ``slot`` (the asked one), for a
    persona of ``cast`` and a user who introduces themself, then asks about one slot."""
    facts = dict(rng.choice(cast))
    slot = rng.choice(list(SLOTS))
    question = f"I am {rng.choice(USERS)}. {rng.choice(QUESTIONS[slot])}"
    return {"prompt": prompt_text(facts, question), "facts": facts, "slot": slot}


def parse_facts(value: Any) -> dict[str, str]:
    """The ``facts`` column as a dict (it may arrive as a JSON string); checks the slots."""
    import json

    facts = json.loads(value) if isinstance(value, str) else value
    if not isinstance(facts, dict) or set(facts) != set(SLOTS):
        raise ValueError(f"facts must map each of {', '.join(SLOTS)} to a value, got {value!r}")
    return {str(k): str(v) for k, v in facts.items()}
