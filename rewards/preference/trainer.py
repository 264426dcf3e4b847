"""Stage ``reward_model``: a Bradley–Terry text reward model trained with TRL's RewardTrainer.

Loss per pair: ``-log sigmoid(r(x, y_chosen) - r(x, y_rejected) - margin)`` (margin optional,
from the ``margin`` column). Held-out accuracy = share of pairs where the chosen response scores
higher. Writes the model to ``<stage>/model``; with LoRA the score head is trained and saved too.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rlhf.algorithms import trl_common
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec
from rlhf.stages.options import DataOptions, ModelOptions


class RewardModelOptions(StageOptions):
    model: ModelOptions
    data: DataOptions
    use_margin: bool = True
    """Use the records' ``margin`` column in the loss when present."""
    trainer: dict[str, Any] = Field(default_factory=dict)
    """Pass-through arguments of ``trl.RewardConfig`` (``center_rewards_coefficient``...)."""


def run(ctx: StageContext, opts: RewardModelOptions) -> StageResult:
    from trl import RewardConfig, RewardTrainer

    from rewards.preference.scoring import pairwise_accuracy, score_texts
    from rlhf.models import load_reward_model, load_tokenizer

    train = trl_common.load_split(ctx, opts.data.train, "preference", opts.data, "train")
    if not opts.use_margin and "margin" in train.column_names:
        train = train.remove_columns("margin")
    path = ctx.resolve(opts.model.model)
    tokenizer = load_tokenizer(path, opts.model.trust_remote_code)
    model = load_reward_model(path, trust_remote_code=opts.model.trust_remote_code)
    config = trl_common.trl_config(RewardConfig, ctx, opts.trainer, {"max_length": 128})
    trainer = RewardTrainer(model=model, args=config, train_dataset=train,
                            processing_class=tokenizer, callbacks=trl_common.callbacks(ctx),
                            peft_config=trl_common.peft_config(opts.model, "SEQ_CLS"))
    output = trl_common.train(trainer, ctx)
    trl_common.save(trainer, tokenizer, ctx, opts.model)
    metrics: dict[str, float] = {"train/final_loss": float(output.training_loss)}
    summary = [f"reward model: {output.global_step} steps"]
    if opts.data.eval:
        held = trl_common.load_split(ctx, opts.data.eval, "preference", opts.data, "eval")
        tokenizer.padding_side = "right"
        chosen = score_texts(trainer.model, tokenizer, held["prompt"], held["chosen"])
        rejected = score_texts(trainer.model, tokenizer, held["prompt"], held["rejected"])
        stats = pairwise_accuracy(chosen, rejected)
        metrics.update({"eval/accuracy": stats["accuracy"], "eval/reward_gap": stats["reward_gap"],
                        "eval/n_pairs": float(len(held))})
        summary.append(f"held-out accuracy {stats['accuracy']:.1%} on {len(held)} pairs")
    return StageResult(metrics=metrics, outputs={"model": "model"}, summary=summary)


STAGE = StageSpec(RewardModelOptions, run,
                  "Bradley-Terry reward model on preference pairs (TRL RewardTrainer)",
                  passthrough={"trainer": "trl:RewardConfig"})
