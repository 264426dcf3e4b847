"""The reranker's prompt and answer.

Prompt (one string, no chat template, so that it fits the tiny models' 256 positions)::

    History: <sid><sid><sid><sid><sid>
    Candidates: A<sid>B<sid>C<sid>...J<sid>
    Answer:

with ``<sid>`` = ``<|sid_begin|><s_a_N><s_b_N><s_c_N><s_d_N><|sid_end|>``, the history oldest
first and the candidates in pre-rank order. The answer names candidates by an id, in one of two
forms (the data stage's ``item_ids``):

- ``label`` (default): the letter in front of the candidate's SID (``A`` = pre-rank 1). The
  policy reads the items as SIDs and writes a permutation of ten one-token letters;
- ``sid``: the SID string itself; the candidates line is then the JSON list the answer copies
  (``Candidates: ["<sid>","<sid>",...]``). Copying ten 6-token SIDs in a new order is a skill
  that ``tiny:lm`` (2 layers, 64 dimensions) did not pick up in a CPU-sized warm start (0% valid
  permutations after 300 SFT steps); a pretrained policy does not have that problem.

With ``metadata`` fields (``category``, ``title``), an item's SID is followed by ``(field; field)``.

Answer: compact JSON ``{"explanation":"...","recommendations":["C","A",...]}``, the form that
``rerank.conditional`` / ``rerank.plain`` score (:func:`rewards.rerank.recommendations` parses
it); the prompt records' ``candidates`` (pre-rank order) and ``target`` columns hold the same
ids as the answer.

The teacher's explanation (:func:`explanation`) is a short reasoning trace: the coarse codes
(first two levels) of the last history item, then those of the item it puts first
(``after <s_a_3><s_b_1> comes <s_a_3><s_b_7>``), so the answer's first id follows from a code
the policy has just written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rlhf.policies.rerank.semantic_ids import parse_sid

ANSWER_CUE = "Answer:"
LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Candidate labels of the ``label`` id form, in pre-rank order."""


def candidate_labels(k: int) -> list[str]:
    if not 1 <= k <= len(LABELS):
        raise ValueError(f"the label id form names at most {len(LABELS)} candidates, got {k}")
    return list(LABELS[:k])


def build_prompt(history: list[str], candidates: list[str],
                 info: Callable[[str], str] | None = None, labels: list[str] | None = None,
                 label_after: bool = False) -> str:
    """The prompt text. ``history`` and ``candidates`` are SID strings; ``labels`` (one per
    candidate) selects the ``label`` form, ``None`` the ``sid`` form; ``info(sid)`` gives an
    item's metadata text (``None``: no metadata); ``label_after`` writes each letter after its
    candidate (``<sid>A<sid>B...``) instead of before it."""
    def item(sid: str) -> str:
        return f"{sid}({info(sid)})" if info else sid

    if labels is not None:
        if len(labels) != len(candidates):
            raise ValueError("one label per candidate")
        pairs = zip(labels, candidates, strict=True)
        listed = "".join(f"{item(sid)}{label}" if label_after else f"{label}{item(sid)}"
                         for label, sid in pairs)
    else:
        listed = json.dumps(candidates, separators=(",", ":"))
        if info:
            listed += "\nInfo: " + " ".join(f"({info(s)})" for s in candidates)
    lines = ["History: " + "".join(item(s) for s in history), "Candidates: " + listed,
             ANSWER_CUE]
    return "\n".join(lines) + "\n"


def format_answer(recommendations: list[str], explanation: str) -> str:
    """Compact JSON answer, as the policy is trained to write it."""
    return json.dumps({"explanation": explanation, "recommendations": recommendations},
                      separators=(",", ":"), ensure_ascii=False)


def _prefix(sid: str, levels: int = 2) -> str:
    """The first ``levels`` code tokens of a SID (``<s_a_3><s_b_1>``)."""
    code = parse_sid(sid)
    return "".join(f"<s_{'abcdefgh'[i]}_{c}>" for i, c in enumerate(code[:levels]))


def explanation(history: list[str], pick: str, label: str | None = None) -> str:
    """The teacher's reasoning trace: the coarse codes of the last history item and of the item
    it puts first (``after <s_a_3><s_b_1> comes <s_a_3><s_b_7>``). With ``label`` (the
    ``label_position: after`` layout) the picked item is named by its whole SID and its letter,
    as the prompt lists it (``after <s_a_3><s_b_1> comes <sid>C``), so that every token after
    the first code can be copied from the candidates line."""
    if label is not None:
        return f"after {_prefix(history[-1])} comes {pick}{label}"
    return f"after {_prefix(history[-1])} comes {_prefix(pick)}"


def parse_recommendations(completion: Any) -> list[str] | None:
    """The recommended ids of an answer, or ``None`` (the rerank rewards' own parser)."""
    from rewards.rerank import recommendations

    return recommendations(completion)
