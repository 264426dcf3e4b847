"""HiLight's reward (arXiv 2604.22565): the frozen Solver's task metric on the emphasised input.

The completion is the Emphasis Actor's output, a list of unit indices (grammar:
:func:`rlhf.policies.emphasis.actor.parse_indices`). Per row, with columns ``context``,
``question`` and ``answers`` (gold strings; ``[]`` = unanswerable):

1. the context is split into units (``unit``: sentences or phrases); when the row has an
   ``n_units`` column it must equal the number of units (else the row is unscored: the data was
   built with another unit);
2. the indices are parsed strictly; an unparsable output is **invalid**;
3. the tags are inserted (the byte-exact round trip is checked for every row); a selection that
   marks more than ``budget`` (γ) of the context's words is **invalid**;
4. the solver answers the question on the tagged context (each distinct (question, tagged
   context) pair is asked once per batch), and the reward is its ``metric``: SQuAD exact match or
   token F1 against the golds (:mod:`rewards.verifiable.qa`).

An invalid row scores ``params.invalid``: ``0.0`` by default (the actor is penalised, as for a
wrong answer), or ``null`` to leave it unscored (``None``, excluded from means and losses). A
solver failure on a row (e.g. an HTTP error) leaves that row unscored (``None``).

``details``: ``valid``, ``invalid_reason``, ``indices``, ``marked_fraction``, ``prediction``,
``exact_match``, ``f1``. Range: [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from rewards.base import Reward, RewardParams, Scored, completion_text
from rewards.verifiable.qa import exact_match, f1
from rlhf.policies.emphasis.actor import IndexParseError, parse_indices
from rlhf.policies.emphasis.solvers import LexicalSolverSpec, Solver, SolverSpec, build_solver
from rlhf.policies.emphasis.spans import emphasize, segment, within_budget

METRICS = {"exact_match": exact_match, "f1": f1}


class EmphasisSolverParams(RewardParams):
    """Parameters of ``emphasis.solver``."""

    solver: SolverSpec = Field(default_factory=LexicalSolverSpec,
                               description="The frozen solver: {type: lexical|fuzzy|callable|hf|"
                                           "openai, ...} (rlhf.policies.emphasis.solvers).")
    budget: float = Field(0.4, gt=0, le=1, description="gamma: largest share of the context's "
                                                        "words that may be marked.")
    unit: Literal["sentence", "phrase"] = Field("sentence", description="What an index selects.")
    metric: Literal["exact_match", "f1"] = Field("exact_match", description="The reward.")
    invalid: float | None = Field(0.0, description="Score of an unparsable or over-budget output "
                                                   "(null: unscored).")
    allow_empty: bool = Field(False, description="Accept 'none' (no emphasis) as an output.")


def gold_answers(value: Any) -> list[str]:
    """The ``answers`` column as a list of strings (a string, a list of strings, or SQuAD's
    ``[{"text": ...}]``)."""
    if value is None:
        raise ValueError("column 'answers' is missing")
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v["text"] if isinstance(v, dict) else str(v) for v in value]
    raise ValueError(f"column 'answers' must be a list of strings, got {type(value).__name__}")


class EmphasisSolverReward(Reward):
    """The solver's QA metric on the actor's emphasis; invalid outputs score ``params.invalid``."""

    name = "emphasis.solver"
    description = ("HiLight: a frozen solver's exact match / F1 on the context emphasised by the "
                   "actor's unit indices; unparsable or over-budget outputs invalid")
    columns: ClassVar[tuple[str, ...]] = ("context", "question", "answers")
    optional_columns: ClassVar[tuple[str, ...]] = ("n_units",)
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    Params: ClassVar[type[RewardParams]] = EmphasisSolverParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._solver: Solver | None = None

    @property
    def solver(self) -> Solver:
        """Built on first use (a model is loaded only when scoring starts)."""
        if self._solver is None:
            self._solver = build_solver(self.params.solver)
        return self._solver

    def prepare(self, completion: Any, row: dict[str, Any]) -> tuple[Scored, str | None]:
        """Validity and the tagged context of one row (``None`` when invalid)."""
        p = self.params
        context, question = row.get("context"), row.get("question")
        if not isinstance(context, str) or not isinstance(question, str):
            raise ValueError("columns 'context' and 'question' must be strings")
        units = segment(context, p.unit)
        if row.get("n_units") is not None and int(row["n_units"]) != len(units):
            raise ValueError(f"the row has n_units={row['n_units']} but the context has "
                             f"{len(units)} {p.unit} units: build the data with unit={p.unit}")
        details: dict[str, Any] = {"valid": False, "invalid_reason": None, "indices": None,
                                   "marked_fraction": None, "prediction": None,
                                   "exact_match": None, "f1": None}
        try:
            indices = parse_indices(completion_text(completion), len(units), p.allow_empty)
        except IndexParseError as exc:
            details["invalid_reason"] = f"unparsable: {exc}"
            return Scored(p.invalid, details), None
        marked = emphasize(context, units, indices)  # raises if the round trip is not exact
        details.update(indices=list(marked.indices), marked_fraction=marked.marked_fraction)
        if not within_budget(marked.marked_fraction, p.budget):
            details["invalid_reason"] = (f"over budget: {marked.marked_fraction:.3f} of the words "
                                         f"marked > {p.budget}")
            return Scored(p.invalid, details), None
        details["valid"] = True
        return Scored(None, details), marked.tagged

    def score_batch(self, prompts: Sequence[Any], completions: Sequence[Any],
                    **columns: Any) -> list[Scored]:
        from rewards.base import row_columns
        from rlhf.policies.emphasis.solvers import solve_unique

        out: list[Scored] = []
        pending: list[tuple[int, str, str, list[str]]] = []
        for i, completion in enumerate(completions):
            row = row_columns(columns, i)
            try:
                golds = gold_answers(row.get("answers"))
                scored, tagged = self.prepare(completion, row)
            except Exception as exc:  # noqa: BLE001 - a bad row must not stop the batch
                out.append(Scored(None, {"error": f"{type(exc).__name__}: {exc}"}))
                continue
            out.append(scored)
            if tagged is not None:
                pending.append((i, row["question"], tagged, golds))
        if pending:
            try:
                answers = solve_unique(self.solver, [q for _, q, _, _ in pending],
                                       [t for _, _, t, _ in pending])
            except Exception as exc:  # noqa: BLE001 - the solver failed for the whole batch
                for i, *_ in pending:
                    out[i].details["error"] = f"solver: {type(exc).__name__}: {exc}"
                return out
            for (i, _, _, golds), prediction in zip(pending, answers, strict=True):
                details = out[i].details
                if prediction is None:
                    details["error"] = "solver gave no answer"
                    continue
                details.update(prediction=prediction, exact_match=exact_match(prediction, golds),
                               f1=f1(prediction, golds))
                out[i] = Scored(details[self.params.metric], details)
        return out
