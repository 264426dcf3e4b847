"""Stage ``sft``: supervised fine-tuning of a causal LM with TRL's ``SFTTrainer``.

Records: ``prompt`` + ``completion`` (loss on the completion only) or ``messages``/``text``
as TRL accepts them. Writes the model to ``<stage>/model``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rlhf.algorithms import trl_common
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec
from rlhf.stages.options import DataOptions, ModelOptions


class SFTOptions(StageOptions):
    policy: ModelOptions
    data: DataOptions
    trainer: dict[str, Any] = Field(default_factory=dict)
    """Pass-through arguments of ``trl.SFTConfig`` (``max_steps``, ``learning_rate``, ...)."""


def run(ctx: StageContext, opts: SFTOptions) -> StageResult:
    from trl import SFTConfig, SFTTrainer

    from rlhf.models import load_causal_lm, load_tokenizer

    train = trl_common.load_split(ctx, opts.data.train, "prompt", opts.data, "train")
    tokenizer = load_tokenizer(ctx.resolve(opts.policy.model), opts.policy.trust_remote_code)
    model = load_causal_lm(ctx.resolve(opts.policy.model), opts.policy.trust_remote_code)
    config = trl_common.trl_config(SFTConfig, ctx, opts.trainer, {"max_length": 128})
    trainer = SFTTrainer(model=model, args=config, train_dataset=train,
                         processing_class=tokenizer, callbacks=trl_common.callbacks(ctx),
                         peft_config=trl_common.peft_config(opts.policy, "CAUSAL_LM"))
    output = trl_common.train(trainer, ctx)
    trl_common.save(trainer, tokenizer, ctx, opts.policy)
    loss = float(output.training_loss)
    return StageResult(metrics={"train/final_loss": loss}, outputs={"model": "model"},
                       summary=[f"warm start: {output.global_step} steps, loss {loss:.3f}"])


STAGE = StageSpec(SFTOptions, run, "Supervised fine-tuning of a causal LM (TRL SFTTrainer)",
                  passthrough={"trainer": "trl:SFTConfig"})
