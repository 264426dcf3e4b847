"""Stage ``judge``: train a generative reward model (an LLM judge) by SFT on judgment records.

Records (see :mod:`rewards.generative.data`) are rendered through the judge template into
prompt / completion pairs: the prompt is the filled template as one user turn of the chat
template, the completion the canonical verdict (``[[A]]``, ``Score: 4``). Pairwise records are
added in both orders with the label swapped, so the judge cannot learn a position prior. TRL's
``SFTTrainer`` trains with the loss on the completion only; the verdict tokens (those that differ
between verdicts: ``A``/``B``/``tie``, the digit of a score) weigh ``verdict_weight`` times the
fixed format tokens (``[[``, ``]]``, EOS), which a model learns in a few steps and which would
otherwise drown the one informative token (our choice; ``verdict_weight: 1`` is plain SFT).

Without data files, ``synthetic: {n_train, n_eval}`` writes pairwise judgments over the
quickstart lexicon task (:func:`rewards.generative.data.synthetic_judgments`) into the stage
directory. Held-out records give ``eval/accuracy`` (verdicts equal to the label, over both
orders), ``eval/consistency`` (both orders agree once un-swapped) and ``eval/parse_rate``.
The stage also writes ``rl_prompts_train.jsonl`` / ``rl_prompts_eval.jsonl`` (judge prompts as
chat messages with a ``label`` column), so a following ``grpo``/``dapo`` stage can optimise the
judge on the verifiable ``judge.match`` reward (recipe ``judge_grpo_tiny``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewards.generative.judge import (
    DEFAULT_TEMPLATES,
    Judge,
    Mode,
    check_template,
    contexts_of,
    judge_pairs,
    judge_points,
    verdict_kind,
)
from rewards.generative.templates import JudgeTemplate, load_template
from rewards.generative.verdict import PAIRWISE_LEVELS, verdict_text
from rlhf.algorithms import trl_common
from rlhf.errors import UserError
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec
from rlhf.stages.options import DataOptions, ModelOptions, trainer_block


class SyntheticJudgmentOptions(BaseModel):
    """Synthetic pairwise judgments over the quickstart lexicon task (written to the stage)."""

    model_config = ConfigDict(extra="forbid")

    n_train: int = Field(1024, ge=8)
    n_eval: int = Field(128, ge=8)
    min_margin: float = Field(0.0, ge=0.0, lt=2.0)
    """Keep pairs whose ground-truth score gap is at least this (large-margin data)."""
    min_words: int = Field(5, ge=1)
    max_words: int = Field(9, ge=1)


class JudgeStageOptions(StageOptions):
    model: ModelOptions
    data: DataOptions | None = None
    """Judgment records (train, optional eval); or leave out and give ``synthetic``."""
    synthetic: SyntheticJudgmentOptions | None = None
    mode: Mode = "pairwise"
    template: str | None = None
    """Shipped template name or a .txt path; default per mode (pairwise, vs_reference, ...)."""
    rubric: str | None = None
    """Fixed rubric text for templates with {rubric} (a record's ``rubric`` field wins)."""
    scale: int = Field(5, ge=2, le=100)
    """Pointwise labels are scores 1..scale."""
    swap_augment: bool = True
    """Add every pairwise record in the swapped order too (label swapped)."""
    verdict_weight: float = Field(10.0, gt=0)
    """Loss weight of verdict tokens relative to the fixed format tokens (1 = plain SFT)."""
    max_new_tokens: int = Field(8, ge=1)
    """Judgment length cap when evaluating."""
    eval_batch_size: int = Field(64, ge=1)
    trainer: dict[str, Any] = trainer_block()
    """Pass-through arguments of ``trl.SFTConfig`` (``max_steps``, ``learning_rate``, ...)."""

    @model_validator(mode="after")
    def _check(self) -> "JudgeStageOptions":
        if (self.data is None) == (self.synthetic is None):
            raise ValueError("give exactly one of `data` (judgment files) and `synthetic`")
        if self.synthetic is not None and self.mode == "pointwise":
            raise ValueError("synthetic judgments are pairwise; use mode pairwise")
        spec = self.template or DEFAULT_TEMPLATES[self.mode]
        if not spec.startswith("@"):
            try:
                template = load_template(spec)
                check_template(template, self.mode)
            except UserError as exc:
                raise ValueError(str(exc)) from None
            if self.rubric is not None and not template.uses("rubric"):
                raise ValueError(f"a rubric is given but template {spec!r} has no {{rubric}}")
        return self


def verdict_token_ids(tokenizer: Any, mode: str, scale: int = 5) -> list[int]:
    """Ids of the tokens that tell verdicts apart: in some verdict's tokens but not in all."""
    levels: Sequence[Any] = PAIRWISE_LEVELS if verdict_kind(mode) == "pairwise" \
        else range(1, scale + 1)
    tokenised = [set(tokenizer(verdict_text(verdict_kind(mode), lv),
                               add_special_tokens=False)["input_ids"]) for lv in levels]
    return sorted(set.union(*tokenised) - set.intersection(*tokenised))


def weighted_token_loss(logits: Any, labels: Any, verdict_ids: Any, weight: float) -> Any:
    """Next-token cross-entropy over labelled positions (labels != -100), verdict tokens
    weighted ``weight`` and others 1: ``sum(w_t * ce_t) / sum(w_t)``. logits [B, T, V],
    labels [B, T] (unshifted, as the model takes them); returns a scalar tensor."""
    import torch
    import torch.nn.functional as F

    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = labels != -100
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.clamp(min=0).reshape(-1),
                         reduction="none").view_as(labels)
    ids = torch.as_tensor(verdict_ids, device=labels.device)
    w = torch.where(torch.isin(labels, ids), weight, 1.0) * mask
    return (ce * w).sum() / w.sum().clamp(min=1e-8)


def _trainer_class() -> type:
    from trl import SFTTrainer

    class VerdictWeightedSFTTrainer(SFTTrainer):
        """SFTTrainer whose loss weighs the verdict tokens (see :func:`weighted_token_loss`)."""

        verdict_ids: list[int] = []
        verdict_weight: float = 1.0

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if self.verdict_weight == 1.0:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"]
            outputs = model(**{k: v for k, v in inputs.items() if k != "labels"},
                            use_cache=False)
            loss = weighted_token_loss(outputs.logits, labels, self.verdict_ids,
                                       self.verdict_weight)
            return (loss, outputs) if return_outputs else loss

    return VerdictWeightedSFTTrainer


def evaluate_judge(judge: Judge, template: JudgeTemplate, rows: list[dict[str, Any]], mode: str,
                   rubric: str | None = None, scale: int = 5
                   ) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Verdict accuracy of a judge on labelled records, and per-record judgments.

    Pairwise: each record is judged in both orders; accuracy is over all 2n judgments (the
    swapped one un-swapped), consistency over records. Pointwise: exact score matches.
    """
    contexts = contexts_of(len(rows), [r.get("prompt") for r in rows], rubric,
                           reference=[r.get("reference") for r in rows],
                           rubric=[r.get("rubric") for r in rows])
    if verdict_kind(mode) == "score":
        verdicts = judge_points(judge, template, contexts, [r["response"] for r in rows], scale)
        out = [{"label": r["label"], "verdict": v.value, "raw": v.raw}
               for r, v in zip(rows, verdicts, strict=True)]
        hits = [v.value == r["label"] for r, v in zip(rows, verdicts, strict=True)]
        return {"eval/accuracy": _mean(hits), "eval/parse_rate": _mean([v.ok for v in verdicts]),
                "eval/n_records": float(len(rows))}, out
    pairs = judge_pairs(judge, template, contexts, [r["response_a"] for r in rows],
                        [r["response_b"] for r in rows], swap=True)
    hits, parsed, out = [], [], []
    for row, pair in zip(rows, pairs, strict=True):
        hits += [v.value == row["label"] for v in pair.verdicts]
        parsed += [v.ok for v in pair.verdicts]
        out.append({"label": row["label"], "verdict_ab": pair.forward.value,
                    "verdict_ba": pair.backward.value if pair.backward else None,
                    "consistent": pair.consistent, "raw_ab": pair.forward.raw,
                    "raw_ba": pair.backward.raw if pair.backward else None})
    return {"eval/accuracy": _mean(hits), "eval/consistency": _mean([o["consistent"] for o in out]),
            "eval/parse_rate": _mean(parsed), "eval/n_records": float(len(rows))}, out


def _mean(flags: Sequence[Any]) -> float:
    return sum(bool(f) for f in flags) / len(flags) if flags else float("nan")


def _records(ctx: StageContext, opts: JudgeStageOptions, template: JudgeTemplate
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """Training and held-out records, and the data files written to the stage directory."""
    from rewards.generative.data import load_judgments, record_fields, synthetic_judgments
    from rlhf.data import write_jsonl

    if opts.synthetic is not None:
        s = opts.synthetic
        rows = synthetic_judgments(s.n_train + s.n_eval, ctx.seed, s.min_margin, s.min_words,
                                   s.max_words)
        train, held = rows[:s.n_train], rows[s.n_train:]
        write_jsonl(ctx.stage_dir / "train.jsonl", train)
        write_jsonl(ctx.stage_dir / "eval.jsonl", held)
        return train, held, {"train": "train.jsonl", "eval": "eval.jsonl"}
    assert opts.data is not None
    fields = record_fields(template, opts.mode, opts.rubric)

    def load(path: str, split: str) -> list[dict[str, Any]]:
        return load_judgments(ctx.path(path), fields, opts.mode, opts.scale,
                              opts.data.on_bad_rows, ctx.stage_dir / f"rejected_{split}.jsonl")

    held = load(opts.data.eval, "eval") if opts.data.eval else []
    return load(opts.data.train, "train"), held, {}


def rl_prompts(rows: list[dict[str, Any]], template: JudgeTemplate, mode: str,
               rubric: str | None = None) -> list[dict[str, Any]]:
    """Prompt records for optimising the judge with the RL engine and ``judge.match``: the judge
    prompt as one user message (as the SFT examples are formatted) and the ``label`` column;
    pairwise records in both orders."""
    from rewards.generative.data import render_record, swapped

    out = []
    for row in rows:
        variants = [row, swapped(row)] if verdict_kind(mode) == "pairwise" else [row]
        for variant in variants:
            out.append({"prompt": [{"role": "user",
                                    "content": render_record(template, variant, rubric)}],
                        "label": variant["label"]})
    return out


def _rl_prompt_files(ctx: StageContext, opts: JudgeStageOptions, template: JudgeTemplate,
                     train: list[dict[str, Any]], held: list[dict[str, Any]]) -> dict[str, str]:
    from rlhf.data import write_jsonl

    files = {"rl_train": "rl_prompts_train.jsonl"}
    write_jsonl(ctx.stage_dir / files["rl_train"], rl_prompts(train, template, opts.mode,
                                                               opts.rubric))
    if held:
        files["rl_eval"] = "rl_prompts_eval.jsonl"
        write_jsonl(ctx.stage_dir / files["rl_eval"], rl_prompts(held, template, opts.mode,
                                                                 opts.rubric))
    return files


def run(ctx: StageContext, opts: JudgeStageOptions) -> StageResult:
    import datasets
    from trl import SFTConfig

    from rewards.generative.data import sft_examples
    from rewards.generative.judge import ModelJudge, format_for_model
    from rlhf.data import write_jsonl
    from rlhf.models import load_causal_lm, load_tokenizer

    template = load_template(ctx.resolve(opts.template or DEFAULT_TEMPLATES[opts.mode]))
    check_template(template, opts.mode)
    train_rows, held_rows, files = _records(ctx, opts, template)
    path = ctx.resolve(opts.model.model)
    tokenizer = load_tokenizer(path, opts.model.trust_remote_code)
    model = load_causal_lm(path, opts.model.trust_remote_code)
    examples = [{"prompt": format_for_model(tokenizer, e["prompt"]), "completion": e["completion"]}
                for e in sft_examples(train_rows, template, opts.mode, opts.rubric,
                                      opts.swap_augment)]
    config = trl_common.trl_config(SFTConfig, ctx, opts.trainer,
                                   {"max_length": 256})
    trainer_cls = _trainer_class()
    trainer = trainer_cls(model=model, args=config, train_dataset=datasets.Dataset.from_list(examples),
                          processing_class=tokenizer, callbacks=trl_common.callbacks(ctx),
                          peft_config=trl_common.peft_config(opts.model, "CAUSAL_LM"))
    trainer.verdict_ids = verdict_token_ids(tokenizer, opts.mode, opts.scale)
    trainer.verdict_weight = opts.verdict_weight
    output = trl_common.train(trainer, ctx)
    trl_common.save(trainer, tokenizer, ctx, opts.model)
    loss = float(output.training_loss)
    metrics: dict[str, float] = {"train/final_loss": loss,
                                 "data/n_train_examples": float(len(examples))}
    summary = [f"judge: {output.global_step} steps on {len(examples)} examples, loss {loss:.3f}"]
    outputs = {"model": "model", **files, **_rl_prompt_files(ctx, opts, template, train_rows,
                                                            held_rows)}
    if held_rows:
        judge = ModelJudge(model=trainer.model, tokenizer=tokenizer,
                           max_new_tokens=opts.max_new_tokens, batch_size=opts.eval_batch_size)
        scores, judged = evaluate_judge(judge, template, held_rows, opts.mode, opts.rubric,
                                        opts.scale)
        metrics.update(scores)
        write_jsonl(ctx.stage_dir / "eval_judgments.jsonl", judged)
        ctx.tracker.log_artifact(ctx.stage_dir / "eval_judgments.jsonl")
        outputs["judgments"] = "eval_judgments.jsonl"
        line = f"held-out verdict accuracy {scores['eval/accuracy']:.1%} on {len(held_rows)} records"
        if "eval/consistency" in scores:
            line += f", position consistency {scores['eval/consistency']:.1%}"
        summary.append(line)
    return StageResult(metrics=metrics, outputs=outputs, summary=summary)


STAGE = StageSpec(JudgeStageOptions, run,
                  "Generative reward model (LLM judge) trained on judgment data",
                  passthrough={"trainer": "trl:SFTConfig"})
