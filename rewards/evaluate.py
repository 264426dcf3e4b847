"""Evaluate a pairwise reward model: accuracy, calibration (ECE), reward gap, annotator agreement.

A reward model gives a pair the Bradley–Terry probability ``p = σ(r_chosen − r_rejected)`` that
the chosen response is preferred (Bradley & Terry 1952; Ouyang et al. 2022 train on it).

- **Accuracy**: share of pairs with ``r_chosen > r_rejected``; a tie of scores counts ½.
- **Reward gap**: mean of ``r_chosen − r_rejected`` (in the model's reward units, logits).
- **Expected calibration error** (Naeini et al. 2015; Guo et al. 2017): the probabilities fall
  into ``n_bins`` equal-width bins of [0, 1]; ECE = Σ_b (|B_b| / N) · |mean label in b −
  mean p in b|. A pair's label is always "chosen wins", so calibration would only be measured
  on one side of ½; we therefore score **every pair in both orientations**, ``(p, 1)`` and
  ``(1 − p, 0)`` (our choice, see :func:`pair_probabilities`): N is twice the number of pairs
  and the diagram is symmetric about ½.
- **Annotator agreement**: with an ``annotator`` id on the rows (top level or in
  ``metadata``), the model's accuracy against each annotator's labels.

:func:`evaluate_reward_model` does all of it for a saved model and preference rows; the
``reward_model`` stage and ``rlhf rewards eval`` use :func:`evaluate_scores`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_BINS = 10


def _check_pairs(chosen: Sequence[float], rejected: Sequence[float]) -> int:
    if len(chosen) != len(rejected):
        raise ValueError(f"{len(chosen)} chosen scores but {len(rejected)} rejected scores")
    return len(chosen)


def accuracy(chosen: Sequence[float], rejected: Sequence[float]) -> float:
    """Share of pairs with ``chosen > rejected`` (equal scores count ½); NaN for no pairs."""
    n = _check_pairs(chosen, rejected)
    if not n:
        return math.nan
    wins = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected))
    return wins / n


def reward_gap(chosen: Sequence[float], rejected: Sequence[float]) -> float:
    """Mean of ``chosen − rejected`` (reward units); NaN for no pairs."""
    n = _check_pairs(chosen, rejected)
    return sum(c - r for c, r in zip(chosen, rejected)) / n if n else math.nan


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def pair_probabilities(chosen: Sequence[float],
                       rejected: Sequence[float]) -> tuple[list[float], list[int]]:
    """Both orientations of every pair: ``probs = [p_1, …, p_n, 1 − p_1, …, 1 − p_n]`` with
    ``p_i = σ(chosen_i − rejected_i)``, and ``labels = [1]*n + [0]*n``. Shapes [2n]."""
    _check_pairs(chosen, rejected)
    p = [_sigmoid(c - r) for c, r in zip(chosen, rejected)]
    return p + [1.0 - x for x in p], [1] * len(p) + [0] * len(p)


def calibration_bins(probs: Sequence[float], labels: Sequence[float],
                     n_bins: int = DEFAULT_BINS) -> list[dict[str, float]]:
    """Per equal-width bin of [0, 1]: ``lo``, ``hi``, ``count``, ``confidence`` (mean p) and
    ``frequency`` (mean label); empty bins have count 0 and NaN means. Bin of p:
    ``min(floor(p · n_bins), n_bins − 1)``, so p = 1 lands in the last bin."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities but {len(labels)} labels")
    sums = [[0, 0.0, 0.0] for _ in range(n_bins)]  # count, sum p, sum label
    for p, y in zip(probs, labels):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability {p} is outside [0, 1]")
        b = min(int(p * n_bins), n_bins - 1)
        sums[b][0] += 1
        sums[b][1] += p
        sums[b][2] += y
    return [{"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": float(c),
             "confidence": sp / c if c else math.nan, "frequency": sy / c if c else math.nan}
            for b, (c, sp, sy) in enumerate(sums)]


def expected_calibration_error(probs: Sequence[float], labels: Sequence[float],
                               n_bins: int = DEFAULT_BINS) -> float:
    """ECE = Σ_b (|B_b| / N) · |frequency_b − confidence_b| over ``n_bins`` equal-width bins
    (Guo et al. 2017), in [0, 1]; NaN for no points. For pairs pass both orientations
    (:func:`pair_probabilities`)."""
    bins = calibration_bins(probs, labels, n_bins)
    n = sum(b["count"] for b in bins)
    if not n:
        return math.nan
    return sum(b["count"] / n * abs(b["frequency"] - b["confidence"]) for b in bins if b["count"])


def annotator_of(row: Mapping[str, Any]) -> str | None:
    """The row's annotator id as a string: ``annotator``, else ``metadata.annotator``; or None."""
    value = row.get("annotator")
    if value is None and isinstance(row.get("metadata"), Mapping):
        value = row["metadata"].get("annotator")
    return None if value is None else str(value)


def annotator_agreement(rows: Sequence[Mapping[str, Any]], chosen: Sequence[float],
                        rejected: Sequence[float]) -> dict[str, dict[str, float]]:
    """``{annotator: {"accuracy": share of their pairs the model agrees with, "n": pairs}}``
    for the rows that name an annotator (see :func:`annotator_of`); ``{}`` when none does."""
    if len(rows) != _check_pairs(chosen, rejected):
        raise ValueError(f"{len(rows)} rows but {len(chosen)} scored pairs")
    groups: dict[str, tuple[list[float], list[float]]] = {}
    for row, c, r in zip(rows, chosen, rejected):
        who = annotator_of(row)
        if who is not None:
            group = groups.setdefault(who, ([], []))
            group[0].append(c)
            group[1].append(r)
    return {who: {"accuracy": accuracy(c, r), "n": float(len(c))}
            for who, (c, r) in sorted(groups.items())}


def reliability_diagram(probs: Sequence[float], labels: Sequence[float], path: str | Path,
                        n_bins: int = DEFAULT_BINS, title: str = "Reliability") -> Path:
    """Write a reliability diagram PNG (observed frequency per confidence bin against the
    diagonal, with bin counts below) and return its path. Uses matplotlib's Agg canvas (no
    pyplot, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    bins = calibration_bins(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    fig = Figure(figsize=(4.5, 5.0))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = 1.0 / n_bins
    full = [b for b in bins if b["count"]]
    top.bar([b["lo"] for b in full], [b["frequency"] for b in full], width=width, align="edge",
            edgecolor="black", alpha=0.7, label="observed")
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    top.plot([b["confidence"] for b in full], [b["frequency"] for b in full], "o", color="C3",
             markersize=3, label="mean p per bin")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("observed frequency")
    top.set_title(f"{title} (ECE {ece:.3f}, n = {len(probs)})", fontsize=9)
    top.legend(fontsize=7, loc="upper left")
    bottom.bar([b["lo"] for b in bins], [b["count"] for b in bins], width=width, align="edge",
               edgecolor="black", color="C0")
    bottom.set_xlabel("predicted P(preferred) = σ(r_a − r_b)")
    bottom.set_ylabel("count")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    return out


def evaluate_scores(chosen: Sequence[float], rejected: Sequence[float],
                    rows: Sequence[Mapping[str, Any]] | None = None,
                    n_bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Metrics of scored pairs: ``accuracy``, ``ece`` (both orientations), ``reward_gap``,
    ``n`` (pairs), and ``per_annotator`` (see :func:`annotator_agreement`; ``{}`` without
    ``rows`` or annotator ids)."""
    probs, labels = pair_probabilities(chosen, rejected)
    return {"accuracy": accuracy(chosen, rejected),
            "ece": expected_calibration_error(probs, labels, n_bins),
            "reward_gap": reward_gap(chosen, rejected), "n": len(chosen),
            "per_annotator": annotator_agreement(rows, chosen, rejected) if rows else {}}


def score_pairs(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]],
                batch_size: int = 32, max_length: int = 512) -> tuple[list[float], list[float]]:
    """Rewards of every row's chosen and rejected response, shapes [n] each."""
    from rewards.preference.scoring import score_texts

    prompts = [r.get("prompt") for r in rows]
    chosen = score_texts(model, tokenizer, prompts, [r["chosen"] for r in rows],
                         batch_size, max_length)
    rejected = score_texts(model, tokenizer, prompts, [r["rejected"] for r in rows],
                           batch_size, max_length)
    return chosen, rejected


def evaluate_reward_model(model_dir: str, rows: Sequence[Mapping[str, Any]],
                          batch_size: int = 32, max_length: int = 512,
                          trust_remote_code: bool = False, n_bins: int = DEFAULT_BINS,
                          diagram: str | Path | None = None) -> dict[str, Any]:
    """Load a reward model (a directory, ``tiny:`` preset or hub id), score the preference
    ``rows`` (``prompt``, ``chosen``, ``rejected``; tie rows should be left out by the caller)
    and return :func:`evaluate_scores`'s dict; with ``diagram`` also write the reliability PNG."""
    from rlhf.models import load_reward_model, load_tokenizer

    tokenizer = load_tokenizer(model_dir, trust_remote_code)
    model = load_reward_model(model_dir, trust_remote_code=trust_remote_code, tokenizer=tokenizer)
    chosen, rejected = score_pairs(model, tokenizer, rows, batch_size, max_length)
    result = evaluate_scores(chosen, rejected, rows, n_bins)
    if diagram is not None:
        reliability_diagram(*pair_probabilities(chosen, rejected), diagram, n_bins)
    return result
