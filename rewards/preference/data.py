"""Preference pairs for the text reward model: ties, large-margin filtering, a synthetic BT task.

**Ties.** A row is a *tie* when any of these holds (our definition; the audio stage's
:func:`rewards.preference.audio_data.is_tie` uses the first two):

- ``tie`` is ``true`` (exactly the JSON boolean);
- ``margin`` is exactly 0 (the rating margin of the two responses is nil);
- a pair of rating fields is present and equal: ``score_chosen == score_rejected`` or
  ``chosen_rating == rejected_rating`` (see :data:`RATING_FIELDS`).

``ties: drop`` removes tie rows; ``ties: half`` keeps them with the Bradley–Terry target ½, i.e.
the loss ``-½ log σ(d) − ½ log σ(−d)`` instead of ``-log σ(d)`` (``d = r_c − r_r``), and a tie
row's loss margin is 0. TRL's ``RewardTrainer`` has no soft targets, so a ``target`` column
(1.0, or 0.5 for ties) is added and :mod:`rewards.preference.trainer` reads it.

**Large-margin filtering** (Step-Audio-EditX: keep a pair only when the human rating margin is
large, e.g. > 3 on a 1–5 scale). The *rating margin* of a row is its ``margin`` column when set,
else the difference of its first present rating pair (``score_chosen − score_rejected``). With
``min_margin`` set, a non-tie pair is kept only when its rating margin is ≥ ``min_margin``
(ties are governed by ``ties`` alone). A non-tie row without any rating margin is a bad row:
an error, or with ``data.on_bad_rows: skip`` dropped and counted.

**Synthetic Bradley–Terry task** (:func:`bradley_terry_pairs`): responses are short word
sequences from the quickstart lexicon, utility ``u(y) = scale · (#positive − #negative)``, and
the label is *sampled*: ``P(first preferred) = σ(u(y1) − u(y2))`` (Bradley & Terry 1952). The
best any model can do on such pairs is :func:`bayes_accuracy`.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlhf.errors import DataError

log = logging.getLogger(__name__)

TIES = ("drop", "half")
"""Values of the ``ties`` option."""
RATING_FIELDS: tuple[tuple[str, str], ...] = (("score_chosen", "score_rejected"),
                                              ("chosen_rating", "rejected_rating"))
"""Pairs of per-response rating columns (UltraFeedback / distilabel naming), in lookup order."""
TIE_TARGET = 0.5
"""Bradley–Terry target probability of a tie row (``ties: half``)."""
TRAIN_COLUMNS = ("prompt", "chosen", "rejected", "margin", "target")
"""Columns handed to the trainer; every other column is left out of the training dataset."""


def _number(value: Any) -> float | None:
    """A finite int/float as float; anything else (bool, string, None, NaN) as None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def rating_margin(row: Mapping[str, Any]) -> float | None:
    """The row's rating margin: ``margin`` if set, else ``score_chosen − score_rejected`` (or
    ``chosen_rating − rejected_rating``); ``None`` when the row holds none of them.

    Units are those of the ratings (e.g. points on a 1–5 scale)."""
    margin = _number(row.get("margin"))
    if margin is not None:
        return margin
    for chosen_key, rejected_key in RATING_FIELDS:
        chosen, rejected = _number(row.get(chosen_key)), _number(row.get(rejected_key))
        if chosen is not None and rejected is not None:
            return chosen - rejected
    return None


def is_tie(row: Mapping[str, Any]) -> bool:
    """True for a tie row (see the module docstring): ``tie: true``, ``margin == 0``, or equal
    ratings in a :data:`RATING_FIELDS` pair."""
    if row.get("tie") is True or _number(row.get("margin")) == 0.0:
        return True
    for chosen_key, rejected_key in RATING_FIELDS:
        chosen, rejected = _number(row.get(chosen_key)), _number(row.get(rejected_key))
        if chosen is not None and chosen == rejected:
            return True
    return False


@dataclass
class FilteredPairs:
    """The rows kept by :func:`filter_pairs` and counts of the others (all in rows)."""

    rows: list[dict[str, Any]]
    n_in: int
    n_ties_kept: int = 0
    n_ties_dropped: int = 0
    n_below_margin: int = 0
    n_no_margin: int = 0
    """Non-tie rows without a rating margin, dropped (``on_bad_rows: skip`` with ``min_margin``)."""

    @property
    def n_kept(self) -> int:
        return len(self.rows)

    @property
    def n_dropped(self) -> int:
        return self.n_in - self.n_kept

    def stats(self, label: str) -> dict[str, float]:
        """Counts as metrics: ``data/<label>_pairs_kept``, ``..._pairs_dropped``, ``..._ties_kept``,
        ``..._ties_dropped``, ``..._below_min_margin``, ``..._no_margin``."""
        return {f"data/{label}_pairs_kept": float(self.n_kept),
                f"data/{label}_pairs_dropped": float(self.n_dropped),
                f"data/{label}_ties_kept": float(self.n_ties_kept),
                f"data/{label}_ties_dropped": float(self.n_ties_dropped),
                f"data/{label}_below_min_margin": float(self.n_below_margin),
                f"data/{label}_no_margin": float(self.n_no_margin)}

    def describe(self, label: str) -> str:
        """One line for the stage summary, e.g. ``train: kept 90 of 100 pairs (10 below ...)``."""
        parts = [f"{n} {what}" for n, what in (
            (self.n_below_margin, "below min_margin"), (self.n_ties_dropped, "ties dropped"),
            (self.n_no_margin, "without a rating margin")) if n]
        extra = f" ({', '.join(parts)})" if parts else ""
        ties = f"; {self.n_ties_kept} ties kept with target ½" if self.n_ties_kept else ""
        return f"{label}: kept {self.n_kept} of {self.n_in} pairs{extra}{ties}"


def filter_pairs(rows: Sequence[Mapping[str, Any]], ties: str = "drop",
                 min_margin: float | None = None, locations: Sequence[str] | None = None,
                 on_bad_rows: str = "error") -> FilteredPairs:
    """Apply ``ties`` and ``min_margin`` (see the module docstring) to validated preference rows.

    Rows are returned unchanged, in order. A non-tie row without a rating margin while
    ``min_margin`` is set raises :class:`DataError` naming ``locations[i]`` (default ``row i+1``),
    or is dropped and counted when ``on_bad_rows == "skip"``.
    """
    if ties not in TIES:
        raise DataError(f"ties: expected one of {', '.join(TIES)}, got {ties!r}")
    out = FilteredPairs([], len(rows))
    for i, row in enumerate(rows):
        if is_tie(row):
            if ties == "drop":
                out.n_ties_dropped += 1
            else:
                out.n_ties_kept += 1
                out.rows.append(dict(row))
            continue
        if min_margin is not None:
            margin = rating_margin(row)
            if margin is None:
                if on_bad_rows != "skip":
                    where = locations[i] if locations is not None else f"row {i + 1}"
                    raise DataError(
                        f"{where}: margin: missing; min_margin is set, so every pair that is not "
                        "a tie needs a margin or score_chosen/score_rejected; set "
                        "data.on_bad_rows=skip to skip such rows")
                out.n_no_margin += 1
                continue
            if margin < min_margin:
                out.n_below_margin += 1
                continue
        out.rows.append(dict(row))
    return out


def training_rows(rows: Iterable[Mapping[str, Any]], use_margin: bool) -> list[dict[str, Any]]:
    """The trainer's view of filtered rows: :data:`TRAIN_COLUMNS` only.

    ``target`` (1.0, or :data:`TIE_TARGET` for a tie) is added only when some row is a tie.
    ``margin`` is kept only with ``use_margin`` and when some row has one; a row without one
    (or a tie) then gets 0.0, i.e. the plain Bradley–Terry loss.
    """
    rows = list(rows)
    ties = [is_tie(r) for r in rows]
    with_margin = use_margin and any(_number(r.get("margin")) is not None for r in rows)
    with_target = any(ties)
    out = []
    for row, tie in zip(rows, ties, strict=True):
        new = {k: row[k] for k in ("prompt", "chosen", "rejected") if row.get(k) is not None}
        if with_margin:
            new["margin"] = 0.0 if tie else (_number(row.get("margin")) or 0.0)
        if with_target:
            new["target"] = TIE_TARGET if tie else 1.0
        out.append(new)
    return out


def _load_validated(ctx: Any, path: str, data: Any, label: str) -> Any:
    """``load_records`` of one split into the stage directory; logs ``data/<label>_bad_rows``."""
    from rlhf.data import load_records

    loaded = load_records(ctx.path(path), "preference", on_bad_rows=data.on_bad_rows,
                          rejected_path=ctx.stage_dir / f"rejected_{label}.jsonl")
    if loaded.n_bad:
        ctx.tracker.log_metrics({f"data/{label}_bad_rows": float(loaded.n_bad)}, step=0)
    return loaded


def _filtered(ctx: Any, path: str, data: Any, label: str, ties: str,
              min_margin: float | None) -> FilteredPairs:
    loaded = _load_validated(ctx, path, data, label)
    kept = filter_pairs(loaded.rows, ties, min_margin, loaded.locations, data.on_bad_rows)
    ctx.tracker.log_metrics(kept.stats(label), step=0)
    if not kept.rows:
        raise DataError(f"{path}: no pairs left: {kept.describe(label)} (ties={ties}, "
                        f"min_margin={min_margin})")
    if kept.n_dropped:
        log.info("%s", kept.describe(label))
    return kept


def load_preference_split(ctx: Any, path: str, data: Any, label: str, ties: str = "drop",
                          min_margin: float | None = None,
                          use_margin: bool = True) -> tuple[Any, FilteredPairs]:
    """Read, validate and filter one training split for the ``reward_model`` stage.

    ``ctx`` is the stage's :class:`~rlhf.stages.base.StageContext`, ``data`` its
    :class:`~rlhf.stages.options.DataOptions`. Returns ``(datasets.Dataset of training_rows,
    FilteredPairs)``; bad rows follow ``data.on_bad_rows`` (counted as ``data/<label>_bad_rows``),
    the filter counts are logged as in :meth:`FilteredPairs.stats`. Raises :class:`DataError`
    when nothing is left.
    """
    from rlhf.data import to_dataset

    kept = _filtered(ctx, path, data, label, ties, min_margin)
    return to_dataset(training_rows(kept.rows, use_margin)), kept


def load_eval_rows(ctx: Any, path: str, data: Any, label: str = "eval") -> FilteredPairs:
    """Held-out rows for evaluation: validated, ties dropped (accuracy is undefined on a tie),
    **no** ``min_margin`` filter (held-out accuracy is measured on every decided pair). The rows
    are the originals, extra columns (``annotator``, ``metadata``) included."""
    return _filtered(ctx, path, data, label, "drop", None)


# ---------------------------------------------------------------------------------------------
# Synthetic Bradley–Terry pairs with a known utility
# ---------------------------------------------------------------------------------------------

BT_SCALE = 0.5
"""Default ``scale`` of :func:`bradley_terry_pairs`: utility per net positive word (logits);
with 4–8 words per response the Bayes-optimal accuracy is about 0.72 (noisy preferences)."""


def sigmoid(x: float) -> float:
    """Logistic function σ(x) = 1 / (1 + e^(−x)), numerically safe for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _response(rng: random.Random, min_words: int, max_words: int) -> tuple[str, int]:
    """A lexicon sentence and its net sentiment count ``#positive − #negative``."""
    from rewards.synthetic import NEGATIVE, NEUTRAL, POSITIVE

    n = rng.randint(min_words, max_words)
    p_pos, p_neg = rng.uniform(0, 0.5), rng.uniform(0, 0.5)
    words, net = [], 0
    for _ in range(n):
        u = rng.random()
        if u < p_pos:
            words.append(rng.choice(POSITIVE))
            net += 1
        elif u < p_pos + p_neg:
            words.append(rng.choice(NEGATIVE))
            net -= 1
        else:
            words.append(rng.choice(NEUTRAL))
    return " " + " ".join(words) + ".", net


def bradley_terry_pairs(n: int, seed: int, scale: float = BT_SCALE, min_words: int = 4,
                        max_words: int = 8) -> list[dict[str, Any]]:
    """``n`` preference rows whose labels are sampled from the Bradley–Terry model.

    Utility ``u(y) = scale · (#positive − #negative)`` (in logits); for responses y1, y2 the
    first is chosen with probability ``σ(u(y1) − u(y2))``. Rows: ``prompt``, ``chosen``,
    ``rejected``, ``u_chosen``, ``u_rejected`` (the true utilities) and ``id``. Deterministic in
    ``seed``. Two identical responses are redrawn (a preference row needs two texts).
    """
    from rewards.synthetic import TOPICS

    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        (a, ua), (b, ub) = (_response(rng, min_words, max_words) for _ in range(2))
        if a == b:
            continue
        first = rng.random() < sigmoid(scale * (ua - ub))
        (chosen, uc), (rejected, ur) = ((a, ua), (b, ub)) if first else ((b, ub), (a, ua))
        rows.append({"id": f"bt-{len(rows)}", "prompt": f"Describe the {rng.choice(TOPICS)}.",
                     "chosen": chosen, "rejected": rejected,
                     "u_chosen": scale * uc, "u_rejected": scale * ur})
    return rows


def bayes_accuracy(rows: Iterable[Mapping[str, Any]]) -> float:
    """Expected accuracy of the Bayes-optimal scorer on BT rows: mean of ``max(p, 1 − p)`` with
    ``p = σ(u_chosen − u_rejected)`` (equal utilities count ½). Needs ``u_chosen``/``u_rejected``."""
    values = [sigmoid(abs(r["u_chosen"] - r["u_rejected"])) for r in rows]
    if not values:
        raise ValueError("bayes_accuracy of no rows")
    return sum(values) / len(values)
