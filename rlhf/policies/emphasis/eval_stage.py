"""Stage ``emphasis_eval``: the solver's held-out QA metrics with and without emphasis.

Settings (each gives ``eval/<setting>/exact_match`` and ``eval/<setting>/f1``, means over the
held-out records, logged on the recipe's PARENT MLflow run and in the stage result):

- ``none``: the plain context, ``solver``;
- ``random``: random emphasis of the same budget (units in random order, each added while the
  selection fits γ), averaged over ``random_draws`` seeded draws, ``solver``;
- ``actor``: the trained actor's emphasis (greedy decoding), ``solver`` — the one it was trained
  with;
- ``actor_transfer``: the same emphasis, ``transfer_solver`` — a solver it never saw;
- also ``none_transfer`` and ``random_transfer`` (the transfer solver's baselines) and, with
  ``reference_actor`` (e.g. the warm start), ``actor_before``.

An actor output that is unparsable or over budget counts as a wrong answer (0 exact match, 0 F1),
as the reward's default scores it; ``eval/actor/valid_rate`` is the share of valid outputs and
``eval/actor/marked_fraction`` the mean share of words marked. Where records carry
``gold_units`` (synthetic data), ``eval/<actor>/gold_unit_rate`` is the share of selections that
include a gold unit. Every record's outputs go to ``predictions.jsonl`` (an MLflow artifact).
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field

from rlhf.policies.emphasis.solvers import FuzzySolverSpec, LexicalSolverSpec, SolverSpec
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec


class EmphasisEvalOptions(StageOptions):
    actor: str
    """The trained actor: hub id, path or ``@stage/model``."""
    data: str
    """Held-out records (``emphasis_data``'s ``eval.jsonl``)."""
    solver: SolverSpec = Field(default_factory=LexicalSolverSpec)
    """The solver the actor was trained with."""
    transfer_solver: SolverSpec = Field(default_factory=FuzzySolverSpec)
    """A second solver the actor was not trained with."""
    reference_actor: str | None = None
    """Optional second actor (e.g. ``@warmup/model``), reported as ``actor_before``."""
    budget: float = Field(0.4, gt=0, le=1)
    unit: Literal["sentence", "phrase"] = "sentence"
    allow_empty: bool = False
    random_draws: int = Field(4, ge=1)
    max_new_tokens: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    max_rows: int | None = Field(None, ge=1)
    trust_remote_code: bool = False


def greedy_outputs(model_spec: str, prompts: list[str], max_new_tokens: int, batch_size: int,
                   trust_remote_code: bool = False) -> list[str]:
    """The actor's greedy completions (special tokens dropped), one per prompt."""
    import torch

    from rlhf.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(model_spec, trust_remote_code)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_causal_lm(model_spec, trust_remote_code).eval()
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=False)
            gen = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
            out += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:],
                                          skip_special_tokens=True)
    return out


def actor_selections(rows: list[dict[str, Any]], outputs: list[str], opts: EmphasisEvalOptions
                     ) -> list[tuple[str | None, tuple[int, ...] | None, float]]:
    """Per record: the tagged context (``None`` if invalid), the indices and the marked share."""
    from rlhf.policies.emphasis.actor import IndexParseError, parse_indices
    from rlhf.policies.emphasis.spans import emphasize, segment, within_budget

    out = []
    for row, text in zip(rows, outputs, strict=True):
        units = segment(row["context"], opts.unit)
        try:
            indices = parse_indices(text, len(units), opts.allow_empty)
        except IndexParseError:
            out.append((None, None, 0.0))
            continue
        marked = emphasize(row["context"], units, indices)
        valid = within_budget(marked.marked_fraction, opts.budget)
        out.append((marked.tagged if valid else None, marked.indices, marked.marked_fraction))
    return out


def score(solver: Any, rows: list[dict[str, Any]], tagged: list[str | None]
          ) -> tuple[dict[str, float], list[str | None]]:
    """Mean exact match and F1 of the solver on tagged contexts (``None``: invalid, scores 0)."""
    from rewards.emphasis import gold_answers
    from rewards.verifiable.qa import exact_match, f1
    from rlhf.policies.emphasis.solvers import solve_unique

    ask = [i for i, t in enumerate(tagged) if t is not None]
    answers = solve_unique(solver, [rows[i]["question"] for i in ask], [tagged[i] for i in ask])
    predictions: list[str | None] = [None] * len(rows)
    em = f = 0.0
    for i, answer in zip(ask, answers, strict=True):
        predictions[i] = answer
        if answer is not None:
            golds = gold_answers(rows[i]["answers"])
            em += exact_match(answer, golds)
            f += f1(answer, golds)
    return {"exact_match": em / len(rows), "f1": f / len(rows)}, predictions


def _mean(parts: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}


def run(ctx: StageContext, opts: EmphasisEvalOptions) -> StageResult:
    from rlhf.data import load_records, write_jsonl
    from rlhf.policies.emphasis.actor import random_selection
    from rlhf.policies.emphasis.solvers import build_solver
    from rlhf.policies.emphasis.spans import emphasize, segment

    rows = load_records(ctx.path(opts.data), "prompt").rows[:opts.max_rows]
    solvers = {"": build_solver(opts.solver), "_transfer": build_solver(opts.transfer_solver)}
    metrics: dict[str, float] = {}
    table: list[dict[str, Any]] = [{"id": r.get("id"), "question": r["question"],
                                    "answers": r["answers"]} for r in rows]

    def record(setting: str, solver_key: str, tagged: list[str | None]) -> None:
        values, predictions = score(solvers[solver_key], rows, tagged)
        metrics.update({f"eval/{setting}/{k}": v for k, v in values.items()})
        for entry, prediction in zip(table, predictions, strict=True):
            entry[f"prediction/{setting}"] = prediction

    plain = [r["context"] for r in rows]
    draws = []
    for d in range(opts.random_draws):
        rng = random.Random(ctx.seed * 1000 + d)
        draws.append([emphasize(r["context"], units, random_selection(
            r["context"], units, opts.budget, rng)).tagged
            for r in rows for units in [segment(r["context"], opts.unit)]])
    for suffix in solvers:
        record(f"none{suffix}", suffix, plain)
        parts = [score(solvers[suffix], rows, tagged)[0] for tagged in draws]
        metrics.update({f"eval/random{suffix}/{k}": v for k, v in _mean(parts).items()})

    actors = {"actor": opts.actor}
    if opts.reference_actor:
        actors["actor_before"] = opts.reference_actor
    for label, spec in actors.items():
        outputs = greedy_outputs(ctx.resolve(spec), [r["prompt"] for r in rows],
                                 opts.max_new_tokens, opts.batch_size, opts.trust_remote_code)
        chosen = actor_selections(rows, outputs, opts)
        tagged = [t for t, _, _ in chosen]
        record(label, "", tagged)
        if label == "actor":
            record("actor_transfer", "_transfer", tagged)
        valid = [c for c in chosen if c[0] is not None]
        metrics[f"eval/{label}/valid_rate"] = len(valid) / len(rows)
        metrics[f"eval/{label}/marked_fraction"] = (sum(c[2] for c in valid) / len(valid)
                                                    if valid else 0.0)
        if all("gold_units" in r for r in rows):
            hits = sum(bool(c[1]) and bool(set(c[1]) & set(r["gold_units"]))
                       for r, c in zip(rows, chosen, strict=True) if c[0] is not None)
            metrics[f"eval/{label}/gold_unit_rate"] = hits / len(rows)
        for entry, text, (tagged_text, indices, _) in zip(table, outputs, chosen, strict=True):
            entry[f"output/{label}"] = text
            entry[f"indices/{label}"] = list(indices) if indices is not None else None
            entry[f"tagged/{label}"] = tagged_text

    ctx.tracker.log_parent_metrics(metrics)
    write_jsonl(ctx.stage_dir / "predictions.jsonl", table)
    ctx.tracker.log_artifact(ctx.stage_dir / "predictions.jsonl")
    line = lambda s: f"{s}: EM {metrics[f'eval/{s}/exact_match']:.3f}, F1 {metrics[f'eval/{s}/f1']:.3f}"  # noqa: E731
    summary = [line(s) for s in ("none", "random", "actor", "none_transfer", "actor_transfer")]
    return StageResult(metrics=metrics, outputs={"predictions": "predictions.jsonl"},
                       summary=summary)


STAGE = StageSpec(EmphasisEvalOptions, run,
                  "Held-out solver QA with no / random / actor emphasis, and a transfer solver")
