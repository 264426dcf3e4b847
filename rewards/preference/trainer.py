"""Stage ``reward_model``: a Bradley–Terry text reward model trained with TRL's RewardTrainer.

Loss per pair (Bradley & Terry 1952; the margin term as in Llama 2, Touvron et al. 2023):
``-log σ(r(x, y_chosen) − r(x, y_rejected) − margin)`` (margin optional, from the ``margin``
column with ``use_margin``). With ``ties: half`` tie pairs are kept with target ½ and the loss
of every pair becomes ``BCE-with-logits(d − margin, target)``, which equals the loss above for
target 1 and ``-½ log σ(d) − ½ log σ(−d)`` for a tie (TRL 1.16's ``RewardTrainer`` has no soft
targets, so :func:`soft_label_trainer` overrides ``compute_loss`` for batches with a ``target``).
``min_margin`` keeps only pairs with a large rating margin (Step-Audio-EditX); see
:mod:`rewards.preference.data`.

Held-out evaluation (:mod:`rewards.evaluate`): accuracy, ECE over both orientations of every
pair, reward gap, per-annotator accuracy; a reliability diagram ``reliability.png`` and
``eval.json`` go to the stage directory and to MLflow. Writes the model to ``<stage>/model``;
with LoRA the score head is trained and saved too.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

from pydantic import Field

from rlhf.algorithms import trl_common
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec
from rlhf.stages.options import DataOptions, ModelOptions


class RewardModelOptions(StageOptions):
    model: ModelOptions
    data: DataOptions
    use_margin: bool = True
    """Use the records' ``margin`` column in the loss when present."""
    ties: Literal["drop", "half"] = "drop"
    """Training rows that are ties (``tie: true``, ``margin: 0`` or equal ``score_chosen`` /
    ``score_rejected``): ``drop`` them, or keep them with Bradley–Terry target ½ (``half``)."""
    min_margin: float | None = Field(None, ge=0)
    """Large-margin filter: keep a non-tie training pair only when its rating margin (``margin``,
    else ``score_chosen − score_rejected``, in rating units) is at least this. ``null``: off."""
    trainer: dict[str, Any] = Field(default_factory=dict)
    """Pass-through arguments of ``trl.RewardConfig`` (``center_rewards_coefficient``...)."""


def preference_loss(chosen: Any, rejected: Any, margin: Any = None, target: Any = None) -> Any:
    """Mean pairwise loss over a batch; ``chosen``/``rejected``: rewards [B] (logits).

    ``d = chosen − rejected − margin``; without ``target`` the loss is ``-log σ(d)`` (TRL's);
    with ``target`` [B] in [0, 1] it is ``BCE-with-logits(d, target)``, i.e.
    ``-t log σ(d) − (1 − t) log σ(−d)`` (t = 1: the same as TRL's; t = ½: a tie).
    """
    import torch.nn.functional as F

    d = chosen - rejected
    if margin is not None:
        d = d - margin
    if target is None:
        return -F.logsigmoid(d).mean()
    return F.binary_cross_entropy_with_logits(d, target.to(d.dtype))


class TargetCollator:
    """Wraps TRL's preference collator and adds a ``target`` tensor [B] when rows have one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        out = self.inner(examples)
        if examples and "target" in examples[0]:
            out["target"] = torch.tensor([e["target"] for e in examples], dtype=torch.float)
        return out


@functools.cache
def soft_label_trainer() -> type:
    """``RewardTrainer`` that also takes a per-pair ``target`` (``ties: half``); without a
    ``target`` column it is TRL's trainer unchanged."""
    import torch
    from trl import RewardTrainer

    class SoftLabelRewardTrainer(RewardTrainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.data_collator = TargetCollator(self.data_collator)

        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            if "target" not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, "target"]

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            target = inputs.pop("target", None)
            if target is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            margin = inputs.pop("margin", None)
            # TRL's pass: forward, its metrics; its plain loss is replaced below.
            _, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
            chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            loss = preference_loss(chosen, rejected, margin, target)
            if self.args.center_rewards_coefficient is not None:
                loss = loss + self.args.center_rewards_coefficient * torch.mean(
                    (chosen + rejected) ** 2)
            return (loss, outputs) if return_outputs else loss

    return SoftLabelRewardTrainer


def run(ctx: StageContext, opts: RewardModelOptions) -> StageResult:
    from trl import RewardConfig

    from rewards.preference.data import load_preference_split
    from rlhf.models import load_reward_model, load_tokenizer

    train, kept = load_preference_split(ctx, opts.data.train, opts.data, "train", opts.ties,
                                        opts.min_margin, opts.use_margin)
    path = ctx.resolve(opts.model.model)
    tokenizer = load_tokenizer(path, opts.model.trust_remote_code)
    model = load_reward_model(path, trust_remote_code=opts.model.trust_remote_code)
    config = trl_common.trl_config(RewardConfig, ctx, opts.trainer, {"max_length": 128})
    trainer = soft_label_trainer()(
        model=model, args=config, train_dataset=train, processing_class=tokenizer,
        callbacks=trl_common.callbacks(ctx),
        peft_config=trl_common.peft_config(opts.model, "SEQ_CLS"))
    output = trl_common.train(trainer, ctx)
    trl_common.save(trainer, tokenizer, ctx, opts.model)
    metrics: dict[str, float] = {"train/final_loss": float(output.training_loss),
                                 "data/train_pairs_kept": float(kept.n_kept),
                                 "data/train_pairs_dropped": float(kept.n_dropped)}
    summary = [f"reward model: {output.global_step} steps", kept.describe("train")]
    outputs = {"model": "model"}
    if opts.data.eval:
        tokenizer.padding_side = "right"
        held = _evaluate(ctx, opts, trainer.model, tokenizer, config)
        metrics.update(held["metrics"])
        summary += held["summary"]
        outputs.update(held["outputs"])
    return StageResult(metrics=metrics, outputs=outputs, summary=summary)


def _evaluate(ctx: StageContext, opts: RewardModelOptions, model: Any, tokenizer: Any,
              config: Any) -> dict[str, Any]:
    """Held-out metrics, ``eval.json`` and ``reliability.png`` (both also logged to MLflow)."""
    from rewards.evaluate import (
        evaluate_scores, pair_probabilities, reliability_diagram, score_pairs,
    )
    from rewards.preference.data import load_eval_rows

    assert opts.data.eval is not None
    held = load_eval_rows(ctx, opts.data.eval, opts.data)
    chosen, rejected = score_pairs(model, tokenizer, held.rows,
                                   batch_size=config.per_device_eval_batch_size,
                                   max_length=config.max_length or 512)
    result = evaluate_scores(chosen, rejected, held.rows)
    (ctx.stage_dir / "eval.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    diagram = reliability_diagram(*pair_probabilities(chosen, rejected),
                                  ctx.stage_dir / "reliability.png",
                                  title=f"{ctx.name}: held-out pairs")
    ctx.tracker.log_artifact(diagram)
    ctx.tracker.log_artifact(ctx.stage_dir / "eval.json")
    metrics = {"eval/accuracy": result["accuracy"], "eval/reward_gap": result["reward_gap"],
               "eval/ece": result["ece"], "eval/n_pairs": float(result["n"])}
    if result["per_annotator"]:
        metrics["eval/n_annotators"] = float(len(result["per_annotator"]))
    summary = [f"held-out accuracy {result['accuracy']:.1%} on {result['n']} pairs, "
               f"ECE {result['ece']:.3f}"]
    if held.n_ties_dropped:
        summary.append(f"held-out: {held.n_ties_dropped} tie pairs left out")
    return {"metrics": metrics, "summary": summary,
            "outputs": {"eval": "eval.json", "reliability": "reliability.png"}}


STAGE = StageSpec(RewardModelOptions, run,
                  "Bradley-Terry reward model on preference pairs (TRL RewardTrainer)",
                  passthrough={"trainer": "trl:RewardConfig"})
