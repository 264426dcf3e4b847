"""Judge verdicts: strict, total parsing and the monotone map from verdict to reward.

Two verdict kinds (StepAudio 2.5 / Step-Audio-R1.5: a generative reward model emits a judgment
and the reward is a monotone map of it, with several ordinal levels):

``pairwise``
    ``[[A]]``, ``[[B]]`` or ``[[tie]]`` (exactly these spellings). The text must hold exactly one
    distinct verdict token (repeating the same token is fine, e.g. in a summary line); two
    different tokens, or none, is no verdict. Ordinal order (from slot A's point of view):
    ``B < tie < A``.
``score``
    ``Score: N`` with N an integer in ``1..K`` (a trailing ``.``, ``,``, ``;`` or ``!`` is
    allowed: ``Score: 4.``). Every ``Score:`` in the text must give the same valid N.

Parsing never raises: anything else gives a :class:`Verdict` whose ``value`` is ``None``, with
the raw text and the reason kept for inspection.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rlhf.errors import UserError, did_you_mean

VerdictKind = Literal["pairwise", "score"]
PAIRWISE_LEVELS: tuple[str, ...] = ("B", "tie", "A")
"""Pairwise verdicts from worst to best for the answer in slot A."""
DEFAULT_PAIRWISE_MAP: dict[str, float] = {"A": 1.0, "tie": 0.5, "B": 0.0}
DEFAULT_SCORE_MAP: dict[int, float] = {1: 0.0, 2: 0.25, 3: 0.5, 4: 0.75, 5: 1.0}

_TOKEN = re.compile(r"\[\[([^\[\]\n]{0,16})\]\]")
_SCORE = re.compile(r"Score:[ \t]*(\S*)")
_SWAP = {"A": "B", "B": "A", "tie": "tie"}


@dataclass(frozen=True)
class Verdict:
    """One parsed judgment. ``value``: ``"A"``/``"B"``/``"tie"`` or an int score; ``None`` when
    the text holds no valid verdict (``problem`` says why). ``raw``: the judge's text."""

    kind: VerdictKind
    value: str | int | None
    raw: str
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.value, "raw": self.raw}
        if self.problem:
            out["problem"] = self.problem
        return out


def parse_pairwise(text: str) -> Verdict:
    """Parse ``[[A]]`` / ``[[B]]`` / ``[[tie]]``; exactly one distinct token or no verdict."""
    tokens = _TOKEN.findall(text)
    valid = list(dict.fromkeys(t for t in tokens if t in _SWAP))
    if len(valid) == 1:
        return Verdict("pairwise", valid[0], text)
    if len(valid) > 1:
        shown = ", ".join(f"[[{t}]]" for t in valid)
        return Verdict("pairwise", None, text, f"several different verdicts: {shown}")
    other = ", ".join(f"[[{t}]]" for t in dict.fromkeys(tokens))
    extra = f" (found {other})" if other else ""
    return Verdict("pairwise", None, text, f"no [[A]], [[B]] or [[tie]] verdict{extra}")


def parse_score(text: str, scale: int) -> Verdict:
    """Parse ``Score: N`` with an integer N in ``1..scale``; every ``Score:`` must agree."""
    found = _SCORE.findall(text)
    if not found:
        return Verdict("score", None, text, "no 'Score: N' verdict")
    values = []
    for token in found:
        token = token.rstrip(".,;!")
        if not token.isdigit() or not token.isascii():
            return Verdict("score", None, text, f"'Score: {token}' is not an integer")
        values.append(int(token))
    if len(set(values)) > 1:
        return Verdict("score", None, text, f"several different scores: {sorted(set(values))}")
    if not 1 <= values[0] <= scale:
        return Verdict("score", None, text, f"score {values[0]} is outside 1..{scale}")
    return Verdict("score", values[0], text)


def parse_verdict(text: str, kind: VerdictKind, scale: int = 5) -> Verdict:
    """Parse a judge's text as a verdict of ``kind`` (total: never raises)."""
    text = text if isinstance(text, str) else str(text)
    return parse_pairwise(text) if kind == "pairwise" else parse_score(text, scale)


def swap_verdict(verdict: Verdict) -> Verdict:
    """The verdict seen from the other slot (``A`` <-> ``B``, ``tie`` stays): un-swaps a judgment
    made with the two answers in swapped positions. Scores and non-verdicts are unchanged."""
    if verdict.kind != "pairwise" or verdict.value is None:
        return verdict
    return Verdict("pairwise", _SWAP[str(verdict.value)], verdict.raw, verdict.problem)


def verdict_text(kind: VerdictKind, value: str | int) -> str:
    """The canonical judge output for a label: ``[[A]]`` or ``Score: 4`` (SFT completions)."""
    return f"[[{value}]]" if kind == "pairwise" else f"Score: {value}"


def check_label(kind: VerdictKind, label: Any, scale: int = 5) -> str | int:
    """A record's label as a verdict value; raises ``ValueError`` (message for a data error)."""
    if kind == "pairwise":
        if label in _SWAP:
            return str(label)
        raise ValueError(f"expected 'A', 'B' or 'tie', got {label!r}")
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= scale:
        raise ValueError(f"expected an integer score in 1..{scale}, got {label!r}")
    return label


@dataclass(frozen=True)
class VerdictMap:
    """A validated, monotone map from ordinal verdict levels to rewards.

    ``levels`` are in ordinal order (worst first); ``values[i]`` is the reward of ``levels[i]``.
    Monotone: non-decreasing along the levels and not constant (best > worst).
    """

    kind: VerdictKind
    levels: tuple[Any, ...]
    values: tuple[float, ...]

    @property
    def scale(self) -> int:
        """K of a ``score`` map (its levels are 1..K); 0 for a pairwise map."""
        return len(self.levels) if self.kind == "score" else 0

    @property
    def neutral(self) -> float:
        """The midpoint of the best and worst rewards (what a position-biased judge earns)."""
        return (self.values[0] + self.values[-1]) / 2

    def __call__(self, verdict: Verdict) -> float | None:
        if verdict.value is None:
            return None
        return self.values[self.levels.index(verdict.value)]

    def as_dict(self) -> dict[str, float]:
        return {str(k): v for k, v in zip(self.levels, self.values, strict=True)}


def _score_key(key: Any) -> int:
    if isinstance(key, bool):
        raise ValueError(key)
    if isinstance(key, int):
        return key
    if isinstance(key, str) and key.strip().isdigit():
        return int(key.strip())
    raise ValueError(key)


def _levels(kind: VerdictKind, mapping: Mapping[Any, Any]) -> tuple[Any, ...]:
    if kind == "pairwise":
        for key in mapping:
            if key not in PAIRWISE_LEVELS:
                raise UserError(f"judge mapping: unknown pairwise verdict {key!r}; "
                                f"{did_you_mean(str(key), PAIRWISE_LEVELS)}")
        missing = [k for k in PAIRWISE_LEVELS if k not in mapping]
        if missing:
            raise UserError(f"judge mapping: no reward for verdict(s) {', '.join(missing)}; a "
                            "pairwise mapping gives a reward for each of A, tie and B")
        return PAIRWISE_LEVELS
    try:
        keys = sorted(_score_key(k) for k in mapping)
    except ValueError as exc:
        raise UserError(f"judge mapping: score key {exc.args[0]!r} is not an integer") from None
    if len(keys) < 2 or keys != list(range(1, len(keys) + 1)):
        raise UserError(f"judge mapping: score keys must be 1..K with K >= 2, got {keys}")
    return tuple(keys)


def build_mapping(kind: VerdictKind, mapping: Mapping[Any, Any] | None = None) -> VerdictMap:
    """Validate a recipe's mapping table (or take the default) for verdicts of ``kind``.

    Raises :class:`UserError` for unknown or missing levels, non-numeric rewards, or a table that
    is not monotone in the scale order (``B <= tie <= A``; ``1 <= 2 <= ... <= K``), or constant.
    """
    if mapping is None:
        mapping = DEFAULT_PAIRWISE_MAP if kind == "pairwise" else DEFAULT_SCORE_MAP
    levels = _levels(kind, mapping)
    by_level = {(k if kind == "pairwise" else _score_key(k)): v for k, v in mapping.items()}
    values = []
    for level in levels:
        value = by_level[level]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise UserError(f"judge mapping: reward of {level!r} must be a finite number, "
                            f"got {value!r}")
        values.append(float(value))
    for (lo, v_lo), (hi, v_hi) in zip(zip(levels, values), zip(levels[1:], values[1:])):
        if v_hi < v_lo:
            raise UserError(f"judge mapping is not monotone: {hi!r} ({v_hi:g}) ranks above "
                            f"{lo!r} ({v_lo:g}) but gets a lower reward (scale order: "
                            f"{' < '.join(str(x) for x in levels)})")
    if values[-1] <= values[0]:
        raise UserError("judge mapping gives the same reward to every verdict")
    return VerdictMap(kind, levels, tuple(values))
