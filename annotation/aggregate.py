"""From annotators' answers to preference pairs: votes per pair, majority, margin, agreement.

Pure functions, no I/O. Everything is in terms of the ORIGINAL pair (``A`` = the pair's
``audio_a``, ``B`` = its ``audio_b``), whatever order an annotator saw: the backend turns a
displayed answer back into the original orientation before it gets here.

Per pair (:func:`aggregate_votes`):

- only *submitted* answers are votes; *discarded* answers are counted (``discards``), drafts
  are ignored;
- the decision is the label (``A``, ``B`` or ``tie``) with strictly more votes than each other
  label; when the top count is shared (1 A / 1 B, or 2 A / 2 tie) the pair has ``no_majority``;
  fewer than ``min_votes`` votes: ``pending``; no vote but a discard: ``discarded``;
- ``margin``: the mean, over the voters who rated both clips, of the naturalness rating
  (1-5) of the chosen clip minus that of the rejected one, when that mean is positive; else
  ``None`` (nobody rated both, or the ratings do not favour the chosen clip although the votes
  do). A margin is never 0, because the preference readers of this toolkit take a margin of 0
  to mean a tie. Only pairs decided for ``A`` or ``B`` have a margin;
- ``agreement``: the share of the votes that went to the decision.

Agreement between annotators (:func:`agreement`), over the labels ``A`` / ``B`` / ``tie``:

- Cohen's kappa (Cohen 1960) for every two annotators, over the pairs both voted on:
  ``κ = (p_o − p_e) / (1 − p_e)`` with ``p_e`` from each annotator's own label frequencies
  (the same number as ``sklearn.metrics.cohen_kappa_score``). NaN when ``p_e`` is 1 (both used
  one and the same label only), as sklearn;
- Fleiss' kappa (Fleiss 1971) over all pairs with at least two votes, in the form that allows
  a different number of raters per item: ``P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1))``,
  ``P̄ = mean_i P_i``, ``p_j = Σ_i n_ij / Σ_i n_i``, ``P_e = Σ_j p_j²``,
  ``κ = (P̄ − P_e) / (1 − P_e)``. With equal ``n_i`` this is Fleiss' formula exactly. NaN when
  ``P_e`` is 1.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

LABELS: tuple[str, ...] = ("A", "B", "tie")
"""Answer labels of the "which is better" question, in the pair's original orientation."""
SUBMITTED, DISCARDED, DRAFT = "submitted", "discarded", "draft"
DECIDED = ("A", "B")
"""Decisions that make a preference pair."""
RATING_RANGE = (1, 5)


@dataclass(frozen=True)
class Vote:
    """One annotator's answer to one pair, in the pair's original orientation.

    ``choice``: ``A``, ``B``, ``tie`` or ``None`` (a discard, or a draft without an answer);
    ``rating_a`` / ``rating_b``: naturalness of ``audio_a`` / ``audio_b`` (1-5) or ``None``.
    """

    annotator: str
    status: str = SUBMITTED
    choice: str | None = None
    rating_a: int | None = None
    rating_b: int | None = None
    comment: str | None = None

    def counts(self) -> bool:
        """Whether this answer is a vote (submitted, with a valid label)."""
        return self.status == SUBMITTED and self.choice in LABELS


@dataclass
class PairOutcome:
    """The aggregate of one pair's answers (see the module docstring for the rules)."""

    decision: str
    """``A``, ``B``, ``tie``, ``no_majority``, ``pending`` or ``discarded``."""
    counts: dict[str, int]
    """Votes per label ``A`` / ``B`` / ``tie``."""
    discards: int = 0
    annotators: list[str] = field(default_factory=list)
    """Who voted (submitted), sorted."""
    margin: float | None = None
    agreement: float | None = None
    """Share of the votes that went to the decision (``None`` without votes)."""

    @property
    def n_votes(self) -> int:
        return sum(self.counts.values())

    @property
    def decided(self) -> bool:
        return self.decision in DECIDED


def _valid_rating(value: Any) -> bool:
    lo, hi = RATING_RANGE
    return isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi


def aggregate_votes(votes: Iterable[Vote], min_votes: int = 1) -> PairOutcome:
    """Majority decision, margin and agreement of one pair's answers."""
    if min_votes < 1:
        raise ValueError(f"min_votes must be >= 1, got {min_votes}")
    votes = list(votes)
    cast = [v for v in votes if v.counts()]
    counts = {label: 0 for label in LABELS}
    for v in cast:
        counts[v.choice] += 1  # type: ignore[index]
    discards = sum(1 for v in votes if v.status == DISCARDED)
    annotators = sorted({v.annotator for v in cast})
    if not cast:
        return PairOutcome(DISCARDED if discards else "pending", counts, discards, annotators)
    if len(cast) < min_votes:
        return PairOutcome("pending", counts, discards, annotators)
    top = max(counts.values())
    winners = [label for label in LABELS if counts[label] == top]
    decision = winners[0] if len(winners) == 1 else "no_majority"
    agreement = top / len(cast) if len(winners) == 1 else None
    margin = None
    if decision in DECIDED:
        gaps = [(v.rating_a - v.rating_b) if decision == "A" else (v.rating_b - v.rating_a)
                for v in cast if _valid_rating(v.rating_a) and _valid_rating(v.rating_b)]
        mean_gap = sum(gaps) / len(gaps) if gaps else 0.0
        if mean_gap > 0:
            margin = round(mean_gap, 6)
    return PairOutcome(decision, counts, discards, annotators, margin, agreement)


def keep_pair(outcome: PairOutcome, min_margin: float | None = None,
              min_agreement: float | None = None) -> bool:
    """Whether a pair goes into the preference data: decided for A or B, and (when the filters
    are set) ``margin >= min_margin`` (large-margin filtering; a pair without a margin fails it)
    and ``agreement >= min_agreement``."""
    if not outcome.decided:
        return False
    if min_margin is not None and (outcome.margin is None or outcome.margin < min_margin):
        return False
    if min_agreement is not None and (outcome.agreement or 0.0) < min_agreement:
        return False
    return True


def preference_row(pair_id: str, prompt: str, audio_a: str, audio_b: str, outcome: PairOutcome,
                   extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The preference record of a decided pair: ``chosen`` / ``rejected`` are the original
    audio paths; ``votes`` counts the votes for the chosen clip, the rejected one, ties and
    discards. ``chosen_audio`` / ``rejected_audio`` repeat the paths under the names the audio
    reward model's records use, so the file trains it directly."""
    if not outcome.decided:
        raise ValueError(f"pair {pair_id}: no preference ({outcome.decision})")
    chosen, rejected = (audio_a, audio_b) if outcome.decision == "A" else (audio_b, audio_a)
    won, lost = ("A", "B") if outcome.decision == "A" else ("B", "A")
    row = {"id": pair_id, "prompt": prompt, "chosen": chosen, "rejected": rejected,
           "margin": outcome.margin,
           "votes": {"chosen": outcome.counts[won], "rejected": outcome.counts[lost],
                     "tie": outcome.counts["tie"], "discarded": outcome.discards},
           "annotators": list(outcome.annotators),
           "agreement": outcome.agreement,
           "chosen_audio": chosen, "rejected_audio": rejected}
    if extra:
        row.update({k: v for k, v in extra.items() if k not in row})
    return row


# ---------------------------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------------------------


def cohen_kappa(first: Sequence[str], second: Sequence[str],
                categories: Sequence[str] | None = None) -> float:
    """Cohen's kappa of two raters' labels for the same items (NaN when ``p_e`` is 1)."""
    if len(first) != len(second):
        raise ValueError(f"the two label lists differ in length: {len(first)} vs {len(second)}")
    n = len(first)
    if n == 0:
        return math.nan
    cats = list(categories) if categories is not None else sorted(set(first) | set(second))
    c1, c2 = Counter(first), Counter(second)
    p_o = sum(1 for a, b in zip(first, second) if a == b) / n
    p_e = sum((c1[c] / n) * (c2[c] / n) for c in cats)
    if math.isclose(p_e, 1.0):
        return math.nan
    return (p_o - p_e) / (1.0 - p_e)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa of an items × categories table of counts (raters per item may vary;
    items with fewer than two ratings are left out). NaN without items or when ``P_e`` is 1."""
    rows = [list(map(int, r)) for r in table if sum(r) >= 2]
    if not rows:
        return math.nan
    k = len(rows[0])
    if any(len(r) != k for r in rows):
        raise ValueError("every row of the table needs the same number of categories")
    p_items = []
    for r in rows:
        n_i = sum(r)
        p_items.append((sum(x * x for x in r) - n_i) / (n_i * (n_i - 1)))
    p_bar = sum(p_items) / len(p_items)
    total = sum(sum(r) for r in rows)
    p_j = [sum(r[j] for r in rows) / total for j in range(k)]
    p_e = sum(p * p for p in p_j)
    if math.isclose(p_e, 1.0):
        return math.nan
    return (p_bar - p_e) / (1.0 - p_e)


@dataclass
class Agreement:
    """Inter-annotator agreement over a set of pairs (see the module docstring)."""

    fleiss_kappa: float
    n_items: int
    """Pairs with at least two votes (the ones Fleiss' kappa uses)."""
    observed: float
    """Mean pairwise agreement ``P̄`` over those pairs (NaN without any)."""
    cohen: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    """``(annotator1, annotator2)`` (sorted) → (Cohen's kappa, pairs both voted on)."""

    @property
    def mean_cohen_kappa(self) -> float:
        values = [k for k, _ in self.cohen.values() if not math.isnan(k)]
        return sum(values) / len(values) if values else math.nan

    def metrics(self, prefix: str = "agreement/") -> dict[str, float]:
        """Scalar metrics (for MLflow): Fleiss, mean Cohen, observed agreement, items, and one
        ``cohen/<a>__<b>`` per annotator pair."""
        out = {f"{prefix}fleiss_kappa": self.fleiss_kappa,
               f"{prefix}mean_cohen_kappa": self.mean_cohen_kappa,
               f"{prefix}observed": self.observed, f"{prefix}n_items": float(self.n_items)}
        for (a, b), (kappa, _) in sorted(self.cohen.items()):
            out[f"{prefix}cohen/{a}__{b}"] = kappa
        return out

    def to_json(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 6)

        return {"fleiss_kappa": num(self.fleiss_kappa), "mean_cohen_kappa": num(self.mean_cohen_kappa),
                "observed": num(self.observed), "n_items": self.n_items,
                "cohen": [{"annotators": [a, b], "kappa": num(k), "n": n}
                          for (a, b), (k, n) in sorted(self.cohen.items())]}


def agreement(votes_by_pair: Mapping[str, Iterable[Vote]], min_common: int = 2) -> Agreement:
    """Cohen's kappa per annotator pair (over at least ``min_common`` shared pairs) and Fleiss'
    kappa overall, from the submitted votes of every pair. An annotator's later vote on the same
    pair replaces an earlier one."""
    labels: dict[str, dict[str, str]] = {}  # pair -> annotator -> label
    for pair_id, votes in votes_by_pair.items():
        for v in votes:
            if v.counts():
                labels.setdefault(pair_id, {})[v.annotator] = v.choice  # type: ignore[assignment]
    table = [[Counter(by.values())[c] for c in LABELS] for by in labels.values() if len(by) >= 2]
    fleiss = fleiss_kappa(table)
    observed = math.nan
    if table:
        observed = sum((sum(x * x for x in r) - sum(r)) / (sum(r) * (sum(r) - 1))
                       for r in table) / len(table)
    annotators = sorted({a for by in labels.values() for a in by})
    cohen: dict[tuple[str, str], tuple[float, int]] = {}
    for a, b in combinations(annotators, 2):
        common = [(by[a], by[b]) for by in labels.values() if a in by and b in by]
        if len(common) >= max(1, min_common):
            first, second = zip(*common)
            cohen[(a, b)] = (cohen_kappa(first, second, LABELS), len(common))
    return Agreement(fleiss, len(table), observed, cohen)


def summarize(outcomes: Iterable[PairOutcome]) -> dict[str, int]:
    """Counts of pairs per decision (``decided`` = A or B)."""
    counts = Counter(o.decision for o in outcomes)
    out = {d: counts.get(d, 0) for d in ("A", "B", "tie", "no_majority", "pending", DISCARDED)}
    out["decided"] = out["A"] + out["B"]
    out["total"] = sum(counts.values())
    return out
