"""Ranking rewards: NDCG@k and Recall@k of a ranked list of item ids (GR2's metrics).

The completion is a JSON list of item ids, best first, or a JSON object whose
``recommendations`` field is that list (GR2's output format, arXiv 2602.07774); surrounding
whitespace and one Markdown code fence (```` ```json ... ``` ````) are accepted. Ids compare as
strings (``5``, ``5.0`` and ``"5"`` are the same item). Only the first occurrence of an id counts:
a repeated id is skipped and does not take a position, so repeating a relevant item gains nothing.

The truth is one of two row columns:

- ``relevance``: an object ``{id: graded relevance}`` (finite, non-negative numbers; missing ids
  have relevance 0), or the same object as JSON text;
- ``target``: one id, read as ``{target: 1}`` (the next-item setting of GR2).

When a row has both, ``relevance`` is used. An unparseable completion (or one of the wrong
shape) scores 0.0 with ``details.valid = false``; a row without usable truth scores ``None``.

Formulas (Järvelin & Kekäläinen 2002, with linear gains as in scikit-learn's ``ndcg_score``):

- ``DCG@k = Σ_{i=1..min(k, n)} rel_i / log2(i + 1)`` over the first ``k`` distinct listed ids;
- ``IDCG@k`` is the DCG@k of the given relevances sorted descending; ``NDCG@k = DCG@k/IDCG@k``,
  and 0.0 with ``details.note`` when ``IDCG@k = 0`` (no relevant item);
- ``Recall@k = |{relevant ids (rel > 0)} ∩ top k| / |relevant ids|`` (0.0 with a note when there
  is no relevant id).

:class:`_RankingReward.score_batch` is the fast path (one C-level JSON decode per row, a cached
discount table, the truth validated and the ideal DCG computed once for consecutive rows that
share one truth object, as the rollouts of one prompt do): see ``bench/rewards_ranking.py`` for
its speed against scikit-learn.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from itertools import islice, repeat
from operator import mul
from typing import Any, ClassVar

from pydantic import Field

from rewards.base import Reward, RewardParams, Scored, completion_text
from rewards.verifiable.json_values import (
    id_list, item_id, load_json_column, parse_json_completion, per_row,
)

_DECODER = json.JSONDecoder()
_UNSET: Any = object()  # "no row seen yet" marker of the batch loop


@lru_cache(maxsize=64)
def discounts(k: int) -> tuple[float, ...]:
    """``1 / log2(i + 1)`` for ranks ``i = 1..k``: the DCG position discount table."""
    return tuple(1.0 / math.log2(i + 2) for i in range(k))


# ---------------------------------------------------------------------------------------------
# The rewards.
# ---------------------------------------------------------------------------------------------

class RankingParams(RewardParams):
    """Parameters of the ranking rewards."""

    k: int = Field(10, ge=1, description="Cutoff: only the first k distinct ids count.")


class _RankingReward(Reward):
    """Shared parsing, truth handling and the batch loop of :class:`NDCG` and :class:`Recall`.

    Subclasses implement :meth:`_prepare` (once per truth object, e.g. the ideal DCG)
    and :meth:`_metric` (once per row, given the row's first ``k`` distinct ids in order)."""

    columns: ClassVar[tuple[str, ...]] = ()
    optional_columns: ClassVar[tuple[str, ...]] = ("relevance", "target")
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    Params: ClassVar[type[RewardParams]] = RankingParams

    def _prepare(self, gains: dict[str, Any], ideal: list[Any]) -> Any:
        raise NotImplementedError

    def _metric(self, top: list[str], state: Any) -> Scored:
        raise NotImplementedError

    @staticmethod
    def truth(relevance: Any, target: Any) -> tuple[dict[str, Any], list[Any]]:
        """The row's truth as ``{id: relevance}`` and its relevances sorted descending (the
        ideal ordering), validated; ``ValueError`` when neither column is usable."""
        if relevance is not None:
            rel = relevance if type(relevance) is dict else load_json_column(
                relevance, "relevance", dict)
            try:  # TypeError for a value that is not a number
                ideal = sorted(rel.values(), reverse=True)
                total = sum(ideal)
                ok = not ideal or (ideal[-1] >= 0 and total < math.inf)  # NaN fails "<"
            except (TypeError, OverflowError):
                ok = False
            if not ok:
                raise ValueError("column 'relevance' must map ids to finite, non-negative numbers")
            try:
                "".join(rel)  # all keys already strings: use the object as it is
                return rel, ideal
            except TypeError:
                out = {item_id(key): value for key, value in rel.items()}
            if len(out) != len(rel):
                raise ValueError("column 'relevance' names the same id twice (e.g. 5 and '5')")
            return out, ideal
        if target is not None:
            return {item_id(target): 1}, [1]
        raise ValueError("a ranking reward needs a 'relevance' (object id -> graded relevance) "
                         "or a 'target' (one id) column on every row")

    @staticmethod
    def ids(completion: Any) -> list[str] | None:
        """The completion's ids in listed order (repeats kept), or ``None`` if unparseable."""
        text = completion if type(completion) is str else completion_text(completion)
        try:
            data = parse_json_completion(text)
        except ValueError:
            return None
        if type(data) is dict:
            data = data.get("recommendations")
        if type(data) is not list:
            return None
        try:
            return id_list(data)
        except ValueError:
            return None

    def top_ids(self, completion: Any) -> list[str] | None:
        """The first ``k`` distinct ids of the completion's list, or ``None`` if unparseable."""
        ids = self.ids(completion)
        return None if ids is None else list(islice(dict.fromkeys(ids), self.params.k))

    def score_batch(self, prompts: Sequence[Any], completions: Sequence[Any],
                    **columns: Any) -> list[Scored]:
        """Score every row. The truth is validated and prepared once per run of consecutive rows
        holding the same object (a prompt's group of rollouts); a completion that is exactly a JSON list of string ids
        takes the fast path (one C-level decode, no copies), anything else :meth:`top_ids`."""
        n, k = len(completions), self.params.k
        relevances = per_row(columns.get("relevance"), n)
        targets = per_row(columns.get("target"), n)
        decode, metric = _DECODER.raw_decode, self._metric
        out: list[Scored] = []
        last_relevance = last_target = state = _UNSET
        error = ""
        for completion, relevance, target in zip(completions, relevances, targets):
            if relevance is not last_relevance or target is not last_target:
                last_relevance, last_target = relevance, target
                try:
                    state, error = self._prepare(*self.truth(relevance, target)), ""
                except (ValueError, TypeError) as exc:
                    state, error = None, f"{type(exc).__name__}: {exc}"
            if state is None:
                out.append(Scored(None, {"error": error}))
                continue
            top = None
            if type(completion) is str:
                try:
                    data, end = decode(completion)
                    if end == len(completion):
                        if type(data) is dict:
                            data = data.get("recommendations")
                        if type(data) is list:
                            "".join(data)  # TypeError unless every id is a string
                            top = data[:k]
                            if len(set(top)) != len(top):  # a repeat among the first k
                                top = list(islice(dict.fromkeys(data), k))
                except (ValueError, TypeError, RecursionError):
                    pass
            if top is None:
                top = self.top_ids(completion)
                if top is None:
                    out.append(Scored(0.0, {"valid": False}))
                    continue
            out.append(metric(top, state))
        return out

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        return self.score_batch([prompt], [completion], **{k: [v] for k, v in row.items()})[0]


_ZEROS = repeat(0)  # an endless run of 0: the default gain of an id without relevance


class NDCG(_RankingReward):
    """NDCG@k of the completion's ranked id list against graded relevance (linear gains).

    ``details``: ``valid``, ``dcg``, ``idcg`` (and ``note`` when ``idcg`` is 0)."""

    name = "ranking.ndcg"
    description = "NDCG@k of a JSON list of item ids against graded relevance or one target id"

    def _prepare(self, gains: dict[str, Any], ideal: list[Any]
                 ) -> tuple[Any, float, tuple[float, ...]]:
        disc = discounts(self.params.k)
        return gains.get, sum(map(mul, ideal, disc), 0.0), disc

    def _metric(self, top: list[str], state: tuple[Any, float, tuple]) -> Scored:
        get, idcg, disc = state
        dcg = sum(map(mul, map(get, top, _ZEROS), disc), 0.0)
        if idcg <= 0.0:
            return Scored(0.0, {"valid": True, "dcg": dcg, "idcg": idcg,
                                "note": "no relevant item (IDCG = 0): NDCG set to 0"})
        return Scored(dcg / idcg, {"valid": True, "dcg": dcg, "idcg": idcg})


class Recall(_RankingReward):
    """Recall@k: the fraction of relevant ids (relevance > 0) among the first k distinct ids.

    ``details``: ``valid``, ``hits``, ``n_relevant`` (and ``note`` when nothing is relevant)."""

    name = "ranking.recall"
    description = "Recall@k of a JSON list of item ids: relevant ids found in the top k"

    def _prepare(self, gains: dict[str, Any], ideal: list[Any]) -> frozenset[str]:
        return frozenset(key for key, value in gains.items() if value > 0)

    def _metric(self, top: list[str], relevant: frozenset[str]) -> Scored:
        if not relevant:
            return Scored(0.0, {"valid": True, "hits": 0, "n_relevant": 0,
                                "note": "no relevant item: recall set to 0"})
        hits = len(relevant.intersection(top))
        return Scored(hits / len(relevant),
                      {"valid": True, "hits": hits, "n_relevant": len(relevant)})
