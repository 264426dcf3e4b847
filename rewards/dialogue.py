"""Rewards of the persona-dialogue task (:mod:`rlhf.policies.dialogue.persona`).

- ``dialogue.persona``: the exact ground truth, persona consistency of the bot's turn in
  ``[0, 1]`` (0 contradiction, 0.25 neutral, 1 consistent); needs the ``facts`` (slot -> value)
  and ``slot`` (the asked slot) columns. The yardstick of the evaluation; an oracle if trained on.
- ``dialogue.on_topic``: a cheap verifiable proxy, 1 when the turn names any value of the asked
  slot, right or wrong (needs ``slot``). It cannot tell consistency from contradiction: the
  "verifiable reward trap" of the ``dialogue_rewards`` sweep.
"""

from __future__ import annotations

from typing import Any

from rewards.base import Reward, Scored, completion_text


class PersonaConsistency(Reward):
    """Hidden ground truth of the persona-dialogue task."""

    name = "dialogue.persona"
    description = "Persona consistency of a turn: 0 contradiction, 0.25 neutral, 1 consistent"
    columns = ("facts", "slot")
    value_range = (0.0, 1.0)

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        from rlhf.policies.dialogue import persona as P

        facts = P.parse_facts(row["facts"])
        turn = completion_text(completion)
        kind = P.classify(turn, facts, str(row["slot"]))
        return Scored((P.LABELS[kind] - 1) / 4, {"kind": kind})


class OnTopic(Reward):
    """Verifiable proxy: the turn names a value of the asked slot (any value)."""

    name = "dialogue.on_topic"
    description = "1 if the turn names any value of the asked slot (right or wrong), else 0"
    columns = ("slot",)
    value_range = (0.0, 1.0)

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        from rlhf.policies.dialogue import persona as P

        slot = str(row["slot"])
        if slot not in P.SLOTS:
            raise ValueError(f"slot must be one of {', '.join(P.SLOTS)}, got {slot!r}")
        return Scored(P.on_topic(completion_text(completion), slot))
