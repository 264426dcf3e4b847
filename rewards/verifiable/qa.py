"""Extractive-QA metrics as the official SQuAD (v1.1 / v2.0) evaluation script computes them.

``normalize_answer``: lowercase, delete ASCII punctuation (``string.punctuation``), delete the
articles ``a``, ``an``, ``the`` (as whole words), fold whitespace.

- ``exact_match(prediction, golds)`` = 1 if the normalised prediction equals some normalised gold,
  else 0.
- ``f1(prediction, golds)`` = max over golds of the token F1: with ``common`` the multiset
  intersection of the normalised tokens, ``P = |common| / |pred|``, ``R = |common| / |gold|``,
  ``F1 = 2PR / (P + R)`` (0 when nothing is shared). SQuAD 2.0 rule: if the prediction or the gold
  has no tokens, F1 = 1 when both have none, else 0.
- An empty gold list means "unanswerable" (SQuAD 2.0): the gold is ``""``, so only an empty
  prediction scores 1.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation (lower, no punctuation, no articles, folded whitespace)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _golds(golds: Sequence[str] | str) -> list[str]:
    if isinstance(golds, str):
        return [golds]
    return list(golds) or [""]


def exact_match(prediction: str, golds: Sequence[str] | str) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _golds(golds)))


def _token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, golds: Sequence[str] | str) -> float:
    """The best token F1 of the prediction against the gold answers."""
    return max(_token_f1(prediction, g) for g in _golds(golds))
