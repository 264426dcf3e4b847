"""GR2's rerank rewards: the target's rank gain plus a format bonus (arXiv 2602.07774).

A pre-ranker gives ``K`` candidate ids (column ``candidates``, in pre-rank order); the reranker
answers ``{"explanation": str, "recommendations": [ids]}`` (surrounding whitespace and one
```` ```json ```` fence allowed). With ``target`` the ground-truth next item (column ``target``):

- ``rank_pre`` / ``rank_re`` = 1-based position of the target in ``candidates`` /
  ``recommendations``;
- ``R_rank = (rank_pre - rank_re) / K``, in ``[-(K-1)/K, (K-1)/K]``;
- ``R_fmt = 1`` when the output parses as that object (``explanation`` a string) and
  ``recommendations`` is a permutation of the candidates (ids compared as strings), else 0.

:class:`ConditionalRerank` (GR2's conditional verifiable reward)::

    R = R_rank + alpha   if R_fmt = 1 and (R_rank > 0 or rank_pre = 1)
    R = R_rank           if R_fmt = 1 otherwise
    R = -1               if R_fmt = 0

so copying the input order (``R_rank = 0``) earns nothing unless the target was already first.
:class:`PlainRerank` is the unconditional baseline ``R = R_rank + alpha * R_fmt`` (``-1`` for a
bad format), which pays ``alpha`` for copying. The -1 for a bad format (R_rank is undefined
then; -1 is below every well-formatted answer) and ``alpha = 0.1`` (the paper gives no value)
are the brief's choices. Range: ``[-1, 1 + alpha)``.

``details``: ``rank_pre``, ``rank_re`` and ``r_rank`` (``None`` for a bad format), ``format_ok``,
``copied_input_order`` (the recommendations equal the candidates, in order: the reward hack the
conditional form removes; an order-copying monitor can track its rate). A target that is not
among the candidates, or a malformed candidate list, scores ``None`` with ``details.error``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from rewards.base import Reward, RewardParams, Scored, completion_text
from rewards.verifiable.json_values import id_list, item_id, load_json_column, parse_json_completion


class RerankParams(RewardParams):
    """Parameters of the GR2 rerank rewards."""

    alpha: float = Field(0.1, ge=0, description="Format bonus added to R_rank (GR2's alpha; "
                                                "the paper gives no value).")


def recommendations(completion: Any) -> list[str] | None:
    """The ids of a ``{"explanation": str, "recommendations": [ids]}`` answer, or ``None`` when
    the answer has another shape or an element is not an id."""
    try:
        answer = parse_json_completion(completion_text(completion))
    except ValueError:
        return None
    if (not isinstance(answer, dict) or not isinstance(answer.get("explanation"), str)
            or not isinstance(answer.get("recommendations"), list)):
        return None
    try:
        return list(id_list(answer["recommendations"]))
    except ValueError:
        return None


def candidate_ids(candidates: Any) -> list[str]:
    """The ``candidates`` column as distinct string ids (``ValueError`` if malformed)."""
    values = load_json_column(candidates, "candidates", (list, tuple))
    ids = [item_id(v) for v in values]
    if not ids:
        raise ValueError("column 'candidates' is empty")
    if len(set(ids)) != len(ids):
        raise ValueError("column 'candidates' repeats an id")
    return ids


class _RerankReward(Reward):
    """Shared scoring of the GR2 rewards; subclasses decide when the format bonus is paid."""

    columns: ClassVar[tuple[str, ...]] = ("candidates", "target")
    value_range: ClassVar[tuple[float, float]] = (-1.0, 1.1)
    """``[-1, 1 + alpha)``; the class value is for the default ``alpha = 0.1``, instances hold
    their own."""
    Params: ClassVar[type[RewardParams]] = RerankParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.value_range = (-1.0, 1.0 + self.params.alpha)  # type: ignore[misc]

    def bonus(self, r_rank: float, rank_pre: int) -> bool:
        """Whether a well-formatted answer earns ``alpha``."""
        raise NotImplementedError

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        candidates = candidate_ids(row.get("candidates"))
        if row.get("target") is None:
            raise ValueError("column 'target' is missing")
        target = item_id(row["target"])
        if target not in candidates:
            raise ValueError(f"target {target!r} is not among the {len(candidates)} candidates")
        rank_pre = candidates.index(target) + 1
        recs = recommendations(completion)
        format_ok = (recs is not None and len(recs) == len(candidates)
                     and set(recs) == set(candidates))  # equal sizes + equal sets: no repeats
        details: dict[str, Any] = {"rank_pre": rank_pre, "rank_re": None, "r_rank": None,
                                   "format_ok": format_ok,
                                   "copied_input_order": recs == candidates}
        if not format_ok:
            return Scored(-1.0, details)
        rank_re = recs.index(target) + 1
        r_rank = (rank_pre - rank_re) / len(candidates)
        details.update(rank_re=rank_re, r_rank=r_rank)
        alpha = self.params.alpha if self.bonus(r_rank, rank_pre) else 0.0
        return Scored(r_rank + alpha, details)


class ConditionalRerank(_RerankReward):
    """GR2's conditional verifiable reward: ``R_rank + alpha`` only when the target moved up
    (``R_rank > 0``) or was already first; ``-1`` for a bad format (arXiv 2602.07774)."""

    name = "rerank.conditional"
    description = ("GR2 rerank reward: target rank gain, format bonus only if the target moved "
                   "up or was first")

    def bonus(self, r_rank: float, rank_pre: int) -> bool:
        return r_rank > 0 or rank_pre == 1


class PlainRerank(_RerankReward):
    """GR2's unconditional baseline: ``R_rank + alpha`` for any valid permutation (copying the
    input order is paid ``alpha``); ``-1`` for a bad format."""

    name = "rerank.plain"
    description = "GR2 rerank reward: target rank gain plus an unconditional format bonus"

    def bonus(self, r_rank: float, rank_pre: int) -> bool:
        return True
