"""Stage ``emphasis_data``: the actor's RL prompts, held-out records and format warm-start rows.

The records come from the synthetic distractor-QA generator (``synthetic:``) or from a SQuAD-2.0
/ HotpotQA-format file (``files:``); see :mod:`rlhf.policies.emphasis.data`. Writes

- ``train.jsonl`` / ``eval.jsonl``: ``{prompt, id, question, context, answers, n_units, ...}`` —
  the actor's prompt and the columns ``emphasis.solver`` reads (held-out rows never repeat a
  training (question, context) pair);
- ``sft.jsonl``: ``{prompt, completion}`` warm-start rows for the actor, by ``warm_start``:

  - ``format``: ONE random unit index that fits the budget — teaches the output format only,
    never which unit is right (a randomly initialised tiny actor cannot otherwise write an index
    list at all);
  - ``solver``: rejection sampling against the frozen solver (``warm_start_solver``) — every
    single unit that fits the budget is tried, and the row keeps one (at random) of those under
    which the solver's exact match is 1; records where none works are dropped. Only the
    solver's task metric is used (as the RL reward), never a gold unit label: it is best-of-n
    sampling with the reward as verifier, i.e. one round of rejection-sampling fine-tuning.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhf.policies.emphasis.solvers import LexicalSolverSpec, SolverSpec
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec


class SyntheticQAOptions(BaseModel):
    """The synthetic distractor-QA task."""

    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(2048, ge=1)
    n_eval: int = Field(256, ge=1)
    n_sentences: int = Field(4, ge=2, le=20)
    """Sentences per context: the fact, a distractor (``p_fool``), scenery fillers."""
    p_fool: float = Field(0.6, ge=0, le=1)
    """Share of examples whose distractor fools the plain lexical solver."""


class FileOptions(BaseModel):
    """Records from files of a public QA format."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["squad2", "hotpotqa"]
    train: str
    """Training file (a path or ``@stage/file``)."""
    eval: str | None = None
    """Held-out file; default: the last ``eval_fraction`` of the shuffled training records."""
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    max_rows: int | None = Field(None, ge=1)
    """Keep at most this many training records (after shuffling)."""


class EmphasisDataOptions(StageOptions):
    synthetic: SyntheticQAOptions | None = None
    files: FileOptions | None = None
    unit: Literal["sentence", "phrase"] = "sentence"
    """What the actor selects (the reward and evaluation must use the same)."""
    budget: float = Field(0.4, gt=0, le=1)
    """gamma, for the warm-start rows and the synthetic checks."""
    n_sft: int = Field(512, ge=0)
    """Warm-start rows (0: none)."""
    warm_start: Literal["format", "solver"] = "format"
    """``format``: a random fitting unit; ``solver``: a unit under which the solver is right."""
    warm_start_solver: SolverSpec = Field(default_factory=LexicalSolverSpec)
    """The solver that verifies ``solver`` warm-start rows (the RL reward's solver)."""
    max_units: int | None = Field(None, ge=1)
    """Drop records with more units (keeps prompts short enough for a small actor)."""

    @model_validator(mode="after")
    def _one_source(self) -> "EmphasisDataOptions":
        if (self.synthetic is None) == (self.files is None):
            raise ValueError("give exactly one of 'synthetic' and 'files'")
        return self


def _records(ctx: StageContext, opts: EmphasisDataOptions) -> tuple[list[dict], list[dict]]:
    from rlhf.policies.emphasis.data import LOADERS, synthetic_examples

    if opts.synthetic is not None:
        s = opts.synthetic
        make = dict(n_sentences=s.n_sentences, p_fool=s.p_fool, budget=opts.budget)
        train = synthetic_examples(s.n_train, ctx.seed, prefix="train", **make)
        seen = {(r["question"], r["context"]) for r in train}
        pool = synthetic_examples(s.n_eval * 2 + 16, ctx.seed + 7919, prefix="eval", **make)
        evals = [r for r in pool if (r["question"], r["context"]) not in seen][:s.n_eval]
        return train, evals
    f = opts.files
    rng = random.Random(ctx.seed)
    train = LOADERS[f.format](ctx.path(f.train))
    rng.shuffle(train)
    if f.eval:
        evals = LOADERS[f.format](ctx.path(f.eval))
    else:
        cut = max(1, int(len(train) * f.eval_fraction))
        train, evals = train[:-cut], train[-cut:]
    return train[:f.max_rows] if f.max_rows else train, evals


def solver_verified(rows: list[dict], opts: EmphasisDataOptions, rng: random.Random
                    ) -> list[tuple[int, ...]]:
    """Per row, one single-unit selection under which the solver's exact match is 1 (chosen at
    random among those), or ``()`` when no single unit works."""
    from rewards.emphasis import gold_answers
    from rewards.verifiable.qa import exact_match
    from rlhf.policies.emphasis.actor import fits
    from rlhf.policies.emphasis.solvers import build_solver, solve_unique
    from rlhf.policies.emphasis.spans import emphasize, segment

    tries: list[tuple[int, int, str]] = []
    for r, row in enumerate(rows):
        units = segment(row["context"], opts.unit)
        for i in range(len(units)):
            if fits(row["context"], units, [i], opts.budget):
                tries.append((r, i, emphasize(row["context"], units, [i]).tagged))
    answers = solve_unique(build_solver(opts.warm_start_solver),
                           [rows[r]["question"] for r, _, _ in tries], [t for _, _, t in tries])
    good: list[list[int]] = [[] for _ in rows]
    for (r, i, _), answer in zip(tries, answers, strict=True):
        if answer is not None and exact_match(answer, gold_answers(rows[r]["answers"])):
            good[r].append(i)
    return [(rng.choice(g),) if g else () for g in good]


def run(ctx: StageContext, opts: EmphasisDataOptions) -> StageResult:
    from rlhf.data import write_jsonl
    from rlhf.errors import DataError
    from rlhf.policies.emphasis.actor import format_indices, random_single
    from rlhf.policies.emphasis.data import to_rl_row
    from rlhf.policies.emphasis.spans import segment

    train, evals = _records(ctx, opts)
    train = [to_rl_row(r, opts.unit) for r in train]
    evals = [to_rl_row(r, opts.unit) for r in evals]
    if opts.max_units:
        train = [r for r in train if r["n_units"] <= opts.max_units]
        evals = [r for r in evals if r["n_units"] <= opts.max_units]
    if not train or not evals:
        raise DataError(f"emphasis_data: no records left ({len(train)} train, {len(evals)} "
                        "held-out); check the files and max_units")
    rng = random.Random(ctx.seed + 1)
    rows = [train[i % len(train)] for i in range(opts.n_sft)]
    if opts.warm_start == "format":
        picks = [random_single(r["context"], segment(r["context"], opts.unit), opts.budget, rng)
                 for r in rows]
    else:
        picks = solver_verified(rows, opts, rng)
    sft = [{"prompt": r["prompt"], "completion": format_indices(p)}
           for r, p in zip(rows, picks, strict=True) if p]
    files = {"train": train, "eval": evals, "sft": sft}
    for name, rows in files.items():
        if rows:
            write_jsonl(ctx.stage_dir / f"{name}.jsonl", rows)
    metrics = {"data/n_train": float(len(train)), "data/n_eval": float(len(evals)),
               "data/n_sft": float(len(sft)),
               "data/mean_units": sum(r["n_units"] for r in train) / len(train)}
    if opts.synthetic is not None:
        metrics["data/fooling_fraction"] = sum(r["fooling"] for r in evals) / len(evals)
    return StageResult(
        metrics=metrics, outputs={n: f"{n}.jsonl" for n, rows in files.items() if rows},
        summary=[f"{len(train)} train / {len(evals)} held-out QA records, {len(sft)} "
                 f"{opts.warm_start} warm-start rows, {metrics['data/mean_units']:.1f} "
                 f"{opts.unit}s per context"])


STAGE = StageSpec(EmphasisDataOptions, run,
                  "Emphasis (HiLight) data: actor prompts, held-out QA, warm-start rows")
