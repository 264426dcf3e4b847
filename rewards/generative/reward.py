"""Reward ``judge.generative``: an LLM judge's verdict, mapped monotonically to a reward.

StepAudio 2.5 / Step-Audio-R1.5: a generative reward model judges a candidate either plainly
(pairwise against a reference answer) or conditioned on a rubric, and the reward is a monotone
map of its ordinal verdict. Modes and columns:

- ``pairwise_reference`` (default): candidate vs the ``reference`` column;
- ``pairwise``: candidate vs the ``other`` column (another candidate);
- ``pointwise``: the candidate alone, ``Score: N`` on ``1..K``; with a rubric (the ``rubric``
  parameter, or a ``rubric`` column per row) this is rubric-conditioned judging.

Position-swap debiasing (pairwise, ``swap: true``): every pair is judged twice, candidate in
slot A and in slot B; the reward is the mean of the two mapped verdicts, both taken from the
candidate's side. A judge that always answers ``[[A]]`` thus earns the neutral midpoint of the
map, and its position consistency (both orders agree once un-swapped) is 0. A row where either
order gives no valid verdict is not scored (``None``); the raw texts stay in the details.
The model (or the judge function) is loaded on first use, so the reward pickles cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from rewards.base import Reward, RewardParams, Scored
from rewards.generative.judge import (
    DEFAULT_TEMPLATES,
    CallableJudge,
    Judge,
    Mode,
    ModelJudge,
    PairJudgment,
    check_template,
    contexts_of,
    judge_pairs,
    judge_points,
    verdict_kind,
)
from rewards.generative.templates import load_template
from rewards.generative.verdict import Verdict, VerdictMap, build_mapping
from rlhf.errors import UserError

COMPARATOR = {"pairwise_reference": "reference", "pairwise": "other"}
"""The column holding the answer a candidate is compared with, per pairwise mode."""


class JudgeParams(RewardParams):
    """Parameters of ``judge.generative``."""

    model: str | None = Field(None, description="Judge model: tiny:lm, a local directory or a "
                              "hub id (give this or judge_fn).")
    judge_fn: str | None = Field(None, description="A callable judge 'module:function', "
                                 "fn(list[str]) -> list[str] (give this or model).")
    mode: Mode = Field("pairwise_reference", description="pairwise_reference (vs the "
                       "`reference` column), pairwise (vs the `other` column) or pointwise.")
    template: str | None = Field(None, description="Shipped template name (pairwise, "
                                 "vs_reference, pointwise_rubric) or a .txt path; default per "
                                 "mode.")
    rubric: str | None = Field(None, description="Rubric text for templates with {rubric} "
                               "(a `rubric` column overrides it per row).")
    swap: bool = Field(True, description="Judge pairs in both orders and average (position "
                       "debiasing).")
    mapping: dict[Any, Any] | None = Field(None, description="Verdict -> reward, monotone: "
                                           "{A: 1, tie: 0.5, B: 0} or {1: 0, ..., 5: 1} "
                                           "(default these).")
    max_new_tokens: int = Field(16, ge=1, description="Judgment length cap, in tokens.")
    batch_size: int = Field(16, ge=1, description="Judge prompts per generation batch.")
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _one_judge(self) -> "JudgeParams":
        if (self.model is None) == (self.judge_fn is None):
            raise ValueError("give exactly one of `model` (a judge model) and `judge_fn` "
                             "('module:function')")
        return self


class GenerativeJudgeReward(Reward):
    """An LLM judge as a reward; see the module docstring. Details per row: the verdicts and
    raw texts of both orders (``verdict_ab``: candidate in slot A, ``verdict_ba``: in slot B,
    as the judge wrote them), ``rewards`` (candidate's side) and ``consistent``."""

    name = "judge.generative"
    description = ("LLM judge (pairwise vs reference / other, or rubric-scored), verdict "
                   "mapped monotonically; pairs judged in both orders")
    optional_columns = ("reference", "other", "rubric")
    value_range = (-math.inf, math.inf)
    Params = JudgeParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        p = self.params
        try:
            self.template = load_template(p.template or DEFAULT_TEMPLATES[p.mode])
            check_template(self.template, p.mode)
            self.map: VerdictMap = build_mapping(verdict_kind(p.mode), p.mapping)
            if p.rubric is not None and not self.template.uses("rubric"):
                raise UserError(f"a rubric is given but template {self.template.name!r} has no "
                                "{rubric} placeholder")
            self.judge: Judge = self._make_judge()
        except UserError as exc:
            raise UserError(f"reward {self.name!r}: {exc}") from None
        self.columns = self._needed_columns()  # per instance: what this mode/template needs
        self.value_range = (self.map.values[0], self.map.values[-1])

    def _make_judge(self) -> Judge:
        p = self.params
        if p.judge_fn is not None:
            return CallableJudge(target=p.judge_fn)
        return ModelJudge(p.model, max_new_tokens=p.max_new_tokens, batch_size=p.batch_size,
                          trust_remote_code=p.trust_remote_code)

    def _needed_columns(self) -> tuple[str, ...]:
        need = [COMPARATOR[self.params.mode]] if self.params.mode in COMPARATOR else []
        if self.template.uses("reference") and "reference" not in need:
            need.append("reference")
        if self.template.uses("rubric") and self.params.rubric is None:
            need.append("rubric")
        return tuple(need)

    def score_batch(self, prompts: Sequence[Any], completions: Sequence[Any],
                    **columns: Any) -> list[Scored]:
        """Judge the whole batch in one call to the judge (a model judge batches inside)."""
        n = len(completions)
        missing = [c for c in self.columns if columns.get(c) is None]
        if missing:
            raise UserError(f"reward {self.name!r} (mode {self.params.mode}, template "
                            f"{self.template.name!r}) needs the column(s) {', '.join(missing)}")
        lists = {k: (list(v) if isinstance(v, (list, tuple)) else [v] * n)
                 for k, v in columns.items() if k in ("reference", "rubric", "other")}
        contexts = contexts_of(n, list(prompts), self.params.rubric,
                               reference=lists.get("reference"), rubric=lists.get("rubric"))
        try:
            if self.params.mode == "pointwise":
                verdicts = judge_points(self.judge, self.template, contexts, list(completions),
                                        self.map.scale)
                return [self._point(v) for v in verdicts]
            others = lists[COMPARATOR[self.params.mode]]
            pairs = judge_pairs(self.judge, self.template, contexts, list(completions), others,
                                swap=self.params.swap)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failing judge leaves its rows unscored
            return [Scored(None, {"error": f"{type(exc).__name__}: {exc}"}) for _ in range(n)]
        return [self._pair(j) for j in pairs]

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        return self.score_batch([prompt], [completion], **{k: [v] for k, v in row.items()})[0]

    def _point(self, verdict: Verdict) -> Scored:
        return Scored(self.map(verdict), verdict.to_json())

    def _pair(self, judgment: PairJudgment) -> Scored:
        values = [self.map(v) for v in judgment.verdicts]
        details: dict[str, Any] = {"verdict_ab": judgment.forward.value,
                                   "raw_ab": judgment.forward.raw, "rewards": values}
        problems = [v.problem for v in (judgment.forward, judgment.backward) if v and v.problem]
        if judgment.backward is not None:
            details.update(verdict_ba=judgment.backward.value, raw_ba=judgment.backward.raw,
                           consistent=judgment.consistent)
        if problems:
            details["problem"] = "; ".join(problems)
        if any(v is None for v in values):
            return Scored(None, details)
        return Scored(sum(values) / len(values), details)  # type: ignore[arg-type]


def position_consistency(scored: Sequence[Scored]) -> float | None:
    """Share of rows judged in both orders whose verdicts agree once un-swapped (a row with an
    unparsable order counts as inconsistent); ``None`` when no row was judged twice."""
    flags = [s.details["consistent"] for s in scored if "consistent" in s.details]
    return sum(bool(f) for f in flags) / len(flags) if flags else None
