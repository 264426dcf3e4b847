"""ASR rewards: ``asr.wer`` (word error rate) and ``asr.cer`` (character error rate).

Both compare a completion (the hypothesis) with the row's ``reference`` column after the same
normaliser (param ``normalizer``: ``none | basic | whisper_en``, see
:mod:`rewards.verifiable.text_normalize`).

Definitions (the standard ones, as in NIST sclite and ``jiwer``):

- ``error rate = (S + D + I) / N``, where ``N`` is the number of reference units (words for
  WER; characters for CER) and ``S + D + I`` is the Levenshtein distance between the reference
  and hypothesis unit sequences (unit costs). A unit has no dimension; the rate is a ratio.
- WER units: the normalised text split on whitespace. CER units: the characters of the
  normalised text, **spaces included** (as ``jiwer.cer`` counts them); with ``basic`` and
  ``whisper_en`` the whitespace is already folded to single inner spaces; with ``none`` every
  character counts, leading/trailing whitespace included.
- ``reward = 1 - error rate``. It is **not clipped**: when the hypothesis has many more units than
  the reference (insertions beyond ``N``) the error rate exceeds 1 and the reward goes below 0,
  without a lower bound; hence ``value_range = (-inf, 1]``.
- Empty reference (after normalisation): the error rate is 0 when the hypothesis is empty too,
  else 1 (reward 1 or 0). ``jiwer`` would instead report the insertion count as the rate.
- ``details``: ``wer`` / ``cer``, and the counts ``substitutions``, ``deletions``,
  ``insertions`` and ``n_ref`` (``N``). ``S, D, I`` are those of the alignment rapidfuzz's
  ``Levenshtein.editops`` backtracks (the alignment ``jiwer`` reports): several minimal
  alignments can split the same distance differently (``"a b"`` -> ``"b c"`` is 2 = S + S or
  D + I); the distance, hence the rate, does not depend on that choice.

Speed: :meth:`_ErrorRateReward.score_batch` scores a batch in one loop: one normalisation per
distinct reference, one C-level ``editops`` call per row (bit-parallel, Hyyrö 2003), and the
S/D/I split read off the operation count without walking the alignment where the lengths
already decide it (``I - D = n_hyp - n_ref`` and ``S + D + I = distance``, so only ``D`` has to be
counted). ``bench/rewards_asr.py`` times it against ``jiwer``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field
from rapidfuzz.distance import Levenshtein

from rewards.base import Reward, RewardParams, Scored, completion_text
from rewards.verifiable.text_normalize import basic_words, get_normalizer


class ErrorRateParams(RewardParams):
    """Parameters of ``asr.wer`` and ``asr.cer``."""

    normalizer: Literal["none", "basic", "whisper_en"] = Field(
        "basic", description="Text normaliser applied to reference and hypothesis: 'none' "
        "(unchanged), 'basic' (lowercase, delete Unicode punctuation, fold whitespace) or "
        "'whisper_en' (Whisper's English normaliser, empty spelling mapping).")


def edit_counts(ref: Sequence[Any], hyp: Sequence[Any]) -> tuple[int, int, int]:
    """``(substitutions, deletions, insertions)`` turning ``ref`` into ``hyp`` along rapidfuzz's
    minimal Levenshtein alignment. ``ref``/``hyp``: strings (characters) or lists of hashables
    (e.g. words)."""
    ops = Levenshtein.editops(ref, hyp)
    distance = len(ops)
    diff = len(hyp) - len(ref)  # = I - D for every alignment
    if distance == abs(diff):  # only insertions, or only deletions (or no edit at all)
        return 0, max(-diff, 0), max(diff, 0)
    deletions = [op[0] for op in ops.as_list()].count("delete")
    insertions = deletions + diff
    return distance - deletions - insertions, deletions, insertions


def error_rate(errors: int, n_ref: int, n_hyp: int) -> float:
    """``errors / n_ref``; for an empty reference 0.0 if the hypothesis is empty too, else 1.0."""
    if n_ref == 0:
        return 0.0 if n_hyp == 0 else 1.0
    return errors / n_ref


def _column(columns: dict[str, Any], key: str, n: int) -> Sequence[Any]:
    """A column as ``n`` row values (a list/tuple indexed, padded with ``None``; a scalar
    repeated), as :func:`rewards.base.row_columns` reads it."""
    value = columns.get(key)
    if isinstance(value, (list, tuple)):
        return value if len(value) >= n else [*value, *([None] * (n - len(value)))]
    return [value] * n


class _ErrorRateReward(Reward):
    """Shared code of WER and CER: subclasses set :attr:`metric` and :meth:`unit_function`."""

    columns = ("reference",)
    value_range = (-math.inf, 1.0)
    Params = ErrorRateParams
    metric: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._units: Callable[[str], Sequence[Any]] = self.unit_function(self.params.normalizer)

    @classmethod
    def unit_function(cls, normalizer: str) -> Callable[[str], Sequence[Any]]:
        """``text -> sequence of units`` after the normaliser called ``normalizer``."""
        raise NotImplementedError

    def _score(self, ref_units: Sequence[Any], hyp_text: str) -> Scored:
        hyp = self._units(hyp_text)
        n_ref, n_hyp = len(ref_units), len(hyp)
        s, d, i = edit_counts(ref_units, hyp)
        rate = error_rate(s + d + i, n_ref, n_hyp)
        return Scored(1.0 - rate, {self.metric: rate, "substitutions": s, "deletions": d,
                                   "insertions": i, "n_ref": n_ref})

    def _ref_units(self, reference: Any) -> Sequence[Any]:
        if not isinstance(reference, str):
            raise TypeError(f"reference must be a string, got {type(reference).__name__}")
        return self._units(reference)

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        return self._score(self._ref_units(row.get("reference")), completion_text(completion))

    def score_batch(self, prompts: Sequence[Any], completions: Sequence[Any],
                    **columns: Any) -> list[Scored]:
        """Every row in one loop; a reference is normalised once per batch (GRPO groups repeat
        it); a row that raises gets ``None`` and ``details.error``. ``completion_ids`` and other
        columns are ignored."""
        refs = _column(columns, "reference", len(completions))
        cache: dict[str, Sequence[Any]] = {}
        out = []
        for completion, reference in zip(completions, refs):
            try:
                units = cache.get(reference) if isinstance(reference, str) else None
                if units is None:
                    units = cache[reference] = self._ref_units(reference)
                out.append(self._score(units, completion if isinstance(completion, str)
                                       else completion_text(completion)))
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop a batch
                out.append(Scored(None, {"error": f"{type(exc).__name__}: {exc}"}))
        return out


class WordErrorRate(_ErrorRateReward):
    """``1 - WER``: word-level Levenshtein errors over reference words."""

    name = "asr.wer"
    description = "1 - word error rate vs the reference column (S+D+I)/N, normalised text"
    metric = "wer"

    @classmethod
    def unit_function(cls, normalizer: str) -> Callable[[str], Sequence[Any]]:
        """Words: the normalised text split on whitespace (``basic`` skips re-joining)."""
        if normalizer == "basic":
            return basic_words
        normalize = get_normalizer(normalizer)
        return lambda text: normalize(text).split()


class CharErrorRate(_ErrorRateReward):
    """``1 - CER``: character-level Levenshtein errors over reference characters (spaces
    count)."""

    name = "asr.cer"
    description = "1 - character error rate vs the reference column (spaces count), normalised"
    metric = "cer"

    @classmethod
    def unit_function(cls, normalizer: str) -> Callable[[str], Sequence[Any]]:
        """Characters: the normalised text itself (every character, spaces included)."""
        return get_normalizer(normalizer)
