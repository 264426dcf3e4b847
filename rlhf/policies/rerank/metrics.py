"""Ranking metrics of a reranker on held-out users, with one relevant item (the true next one).

For one example with target ``t`` and a ranked list ``L``: ``rank`` = 1-based position of ``t``
in ``L`` (``None`` when absent). Recall@k = 1 if rank <= k else 0; NDCG@k = 1 / log2(rank + 1)
if rank <= k else 0 (the ideal DCG of a single relevant item is 1). A model's answer counts only
if it is a valid permutation of the candidates (the rerank rewards' ``format_ok``); any other
answer ranks nothing and scores 0, like an example whose candidates miss the target.
Order-copy rate: the share of answers whose list equals the candidates in their input order.
Means are over all held-out examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

METRICS = ("recall_at_1", "recall_at_5", "ndcg_at_5", "order_copy_rate")


def rank_of(target: str, ranking: Sequence[str] | None) -> int | None:
    if not ranking or target not in ranking:
        return None
    return list(ranking).index(target) + 1


def recall_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def ndcg_at(rank: int | None, k: int) -> float:
    return 1.0 / math.log2(rank + 1) if rank is not None and rank <= k else 0.0


def valid_permutation(ranking: Sequence[str] | None, candidates: Sequence[str]) -> bool:
    return (ranking is not None and len(ranking) == len(candidates)
            and set(ranking) == set(candidates))


def ranking_metrics(rankings: Sequence[Sequence[str] | None], candidates: Sequence[Sequence[str]],
                    targets: Sequence[str]) -> dict[str, float]:
    """Mean ``recall_at_1``, ``recall_at_5``, ``ndcg_at_5``, ``order_copy_rate`` and
    ``valid_rate`` (share of valid permutations) over examples."""
    n = len(targets)
    if not (len(rankings) == len(candidates) == n) or n == 0:
        raise ValueError("rankings, candidates and targets must be non-empty and of one length")
    totals = dict.fromkeys((*METRICS, "valid_rate"), 0.0)
    for ranking, cands, target in zip(rankings, candidates, targets, strict=True):
        valid = valid_permutation(ranking, cands)
        rank = rank_of(target, ranking) if valid else None
        totals["recall_at_1"] += recall_at(rank, 1)
        totals["recall_at_5"] += recall_at(rank, 5)
        totals["ndcg_at_5"] += ndcg_at(rank, 5)
        totals["order_copy_rate"] += float(valid and list(ranking) == list(cands))
        totals["valid_rate"] += float(valid)
    return {k: v / n for k, v in totals.items()}
