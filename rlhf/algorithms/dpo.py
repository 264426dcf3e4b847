"""Stage ``dpo``: direct preference optimisation with TRL's ``DPOTrainer``.

Records: ``prompt``, ``chosen``, ``rejected`` (text or chat messages), or token ids
``prompt_ids``, ``chosen_ids``, ``rejected_ids`` (pairs of generated sequences, e.g. codec-token
speech; :mod:`rlhf.algorithms.dpo_tokens`, detected from the first row of a JSONL file); when
the policy directory holds ``codec_tts.json`` (a saved ``codec_tts`` policy), their log-probs
are those of the policy's restricted sampling distribution. The reference model is the starting
policy unless ``ref_model`` names another. Writes the model to ``<stage>/model``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rlhf.algorithms import trl_common
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec
from rlhf.stages.options import DataOptions, ModelOptions


class DPOOptions(StageOptions):
    policy: ModelOptions
    ref_model: str | None = None
    """Reference model; default: a frozen copy of the starting policy."""
    data: DataOptions
    trainer: dict[str, Any] = Field(default_factory=dict)
    """Pass-through arguments of ``trl.DPOConfig`` (``beta``, ``loss_type``, ``max_steps``...)."""


def run(ctx: StageContext, opts: DPOOptions) -> StageResult:
    from trl import DPOConfig, DPOTrainer

    from rlhf.algorithms import dpo_tokens
    from rlhf.models import load_causal_lm, load_tokenizer

    policy_path = ctx.resolve(opts.policy.model)
    tokenizer = load_tokenizer(policy_path, opts.policy.trust_remote_code)
    model = load_causal_lm(policy_path, opts.policy.trust_remote_code)
    layout = None
    if dpo_tokens.is_token_file(ctx.path(opts.data.train)):
        vocab = model.get_input_embeddings().weight.shape[0]
        train = dpo_tokens.load_token_pairs(ctx.path(opts.data.train), vocab)
        layout = dpo_tokens.policy_layout(policy_path)
        DPOTrainer = dpo_tokens.token_dpo_trainer(DPOTrainer, layout)  # noqa: N806
    else:
        train = trl_common.load_split(ctx, opts.data.train, "preference", opts.data, "train")
    ref = (load_causal_lm(ctx.resolve(opts.ref_model), opts.policy.trust_remote_code)
           if opts.ref_model else None)
    config = trl_common.trl_config(DPOConfig, ctx, opts.trainer,
                                   {"max_length": 128, "beta": 0.1})
    trainer = DPOTrainer(model=model, ref_model=ref, args=config, train_dataset=train,
                         processing_class=tokenizer, callbacks=trl_common.callbacks(ctx),
                         peft_config=trl_common.peft_config(opts.policy, "CAUSAL_LM"))
    if layout is not None:
        dpo_tokens.restrict_to_layout(trainer, layout)
    output = trl_common.train(trainer, ctx)
    trl_common.save(trainer, tokenizer, ctx, opts.policy)
    if layout is not None:  # the DPO'd policy keeps its layout (a later dpo restricts the same)
        dpo_tokens.copy_layout(policy_path, ctx.stage_dir / "model")
    history = ctx.tracker.history if hasattr(ctx.tracker, "history") else {}
    acc = history.get("train/rewards/accuracies", [])
    metrics = {"train/final_loss": float(output.training_loss)}
    if acc:
        metrics["train/final_pair_accuracy"] = float(acc[-1][1])
    return StageResult(metrics=metrics, outputs={"model": "model"},
                       summary=[f"DPO: {output.global_step} steps, loss "
                                f"{output.training_loss:.3f}"])


STAGE = StageSpec(DPOOptions, run, "Direct preference optimisation of a policy (TRL DPOTrainer)",
                  passthrough={"trainer": "trl:DPOConfig"})
