"""Tiny overrides per stage kind, so that every recipe runs in seconds in tests."""

from __future__ import annotations

# Overrides that make each stage kind take seconds; applied as stages.<name>.<key>=<value>.
SMOKE = {
    "synthetic_preferences": {"n_train_pairs": 16, "n_eval_pairs": 8, "n_sft": 16,
                              "n_eval_prompts": 2},
    "sft": {"trainer.max_steps": 2, "trainer.per_device_train_batch_size": 4},
    "reward_model": {"trainer.max_steps": 2, "trainer.per_device_train_batch_size": 4},
    "dpo": {"trainer.max_steps": 2, "trainer.per_device_train_batch_size": 4},
    "tts_prompts": {"n_train": 8, "n_eval": 2},
    "evaluate_policy": {"samples_per_prompt": 2, "max_new_tokens": 4},
    "emphasis_data": {"synthetic.n_train": 16, "synthetic.n_eval": 8, "n_sft": 16},
    "emphasis_eval": {"max_rows": 8, "random_draws": 1, "max_new_tokens": 4},
    "rerank_data": {"synthetic.n_items": 60, "synthetic.n_train_users": 24,
                    "synthetic.n_heldout_users": 6, "semantic_ids.codebook_size": 8,
                    "semantic_ids.min_uniqueness": "null", "n_eval_prompts": 2},
    "rerank_eval": {"max_new_tokens": 4},
    "audio_reward_model": {"steps": 2, "synthetic.n_train": 4, "synthetic.n_eval": 4},
    "judge": {"trainer.max_steps": 2, "trainer.per_device_train_batch_size": 4,
              "synthetic.n_train": 8, "synthetic.n_eval": 8},
    "persona_dialogue": {"n_sft": 16, "n_rl_prompts": 8, "n_eval_prompts": 2, "n_judge_train": 8,
                         "n_judge_eval": 8},
    "dialogue_eval": {"samples_per_prompt": 1, "max_new_tokens": 4},
    # annotate: the test points ARGILLA_API_URL at its session server (tests/conftest.py)
    "speech_pairs": {"n_pairs": 2, "n_heldout": 2},
    "annotate": {"poll_seconds": 0.2},
    "evaluate_speech": {"samples_per_prompt": 1, "html_sentences": 2},
    "spoken_digits": {"n_train": 8, "n_eval": 4},
    "asr_finetune": {"steps": 2, "batch_size": 4},
    "asr_eval": {"max_new_tokens": 4},
    "codec_pairs": {"n_pairs": 2, "policy.sampling.max_new_tokens": 8},
    "codec_preferences": {},
    "codec_eval": {"samples_per_prompt": 1, "sampling.max_new_tokens": 8},
}
_RL = {"steps": 2, "prompts_per_step": 2, "group_size": 2, "policy.sampling.max_new_tokens": 4,
       "data.eval_samples": 1, "save_every": 1, "log_completions_every": 1}
SMOKE.update({"grpo": _RL, "dapo": _RL, "ppo": {**_RL, "minibatch_size": 2}})


def smoke_overrides(recipe, tracking_uri: str) -> list[str]:
    """Tiny overrides for every stage of a recipe; a stage kind without an entry fails loudly."""
    out = [f"tracking.uri={tracking_uri}"]
    for stage in recipe.stages:
        assert stage.kind in SMOKE, f"add smoke overrides for stage kind {stage.kind!r}"
        out += [f"stages.{stage.name}.{k}={v}" for k, v in SMOKE[stage.kind].items()
                if "." not in k or getattr(stage.options, k.split(".")[0], 0) is not None]
        # (a nested key of a block the recipe leaves out, e.g. a judge on data files rather
        # than ``synthetic:``, is skipped: setting it would add the block)
    return out
