"""Reward ``judge.match``: does a judge's written judgment match the record's label?

The verifiable reward for optimising a judge with the RL engine (GRPO/DAPO) after SFT, as the
generative reward models of StepAudio 2.5 / Step-Audio-R1.5 are: the policy *is* the judge, each
prompt is a rendered judge template and the ``label`` column holds the right verdict
(``A``/``B``/``tie`` or an integer score). The completion is parsed with the same strict parser
as :mod:`rewards.generative.verdict`.

- a verdict equal to the label: ``1.0``;
- a different valid verdict: ``0.0``; in ``pointwise`` mode with ``partial: true`` the credit is
  ``1 - |score - label| / (scale - 1)`` instead (an ordinal near-miss earns something);
- no valid verdict: ``invalid`` (default ``0.0``; ``null`` leaves the row unscored).

Details: ``verdict`` (parsed value or ``None``), ``label`` and, for an unparsable text,
``problem``. A row whose label is missing or not a valid verdict is not scored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rewards.base import Reward, RewardParams, Scored, completion_text
from rewards.generative.verdict import check_label, parse_verdict


class MatchParams(RewardParams):
    mode: Literal["pairwise", "pointwise"] = Field(
        "pairwise", description="pairwise: [[A]]/[[B]]/[[tie]] labels; pointwise: Score: N.")
    scale: int = Field(5, ge=2, le=100, description="Pointwise scores are 1..scale.")
    partial: bool = Field(False, description="Pointwise: credit 1 - |score - label|/(scale-1) "
                          "for a near miss.")
    invalid: float | None = Field(0.0, description="Reward of a judgment with no valid verdict "
                                  "(null: not scored).")


class JudgmentMatch(Reward):
    """1 when the parsed verdict equals the ``label`` column; see the module docstring."""

    name = "judge.match"
    description = "Judge training: the written verdict ([[A]] / Score: N) equals the label"
    columns = ("label",)
    value_range = (0.0, 1.0)
    Params = MatchParams

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        p = self.params
        kind = "pairwise" if p.mode == "pairwise" else "score"
        try:
            label = check_label(kind, row.get("label"), p.scale)
        except ValueError as exc:
            return Scored(None, {"error": f"label: {exc}"})
        verdict = parse_verdict(completion_text(completion), kind, p.scale)
        details: dict[str, Any] = {"verdict": verdict.value, "label": label}
        if verdict.value is None:
            details["problem"] = verdict.problem
            return Scored(p.invalid, details)
        if verdict.value == label:
            return Scored(1.0, details)
        if kind == "score" and p.partial:
            return Scored(1.0 - abs(int(verdict.value) - int(label)) / (p.scale - 1), details)
        return Scored(0.0, details)
