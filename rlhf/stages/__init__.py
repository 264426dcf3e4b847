"""Stage kinds of recipes, registered by short name.

Each name maps lazily to a :class:`rlhf.stages.base.StageSpec`; ``"module:attr"`` paths to users'
own stage specs work too.
"""

from rlhf.registry import Registry
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec

STAGES: Registry[StageSpec] = Registry("stage kind")

STAGES.register("synthetic_preferences", "rlhf.stages.synthetic:STAGE",
                "Generate a synthetic preference task with a known ground-truth reward")
STAGES.register("sft", "rlhf.algorithms.sft:STAGE",
                "Supervised fine-tuning of a causal LM (TRL SFTTrainer)")
STAGES.register("reward_model", "rewards.preference.trainer:STAGE",
                "Bradley-Terry reward model on preference pairs (TRL RewardTrainer)")
STAGES.register("audio_reward_model", "rewards.preference.audio_trainer:STAGE",
                "Bradley-Terry reward model over speech (own audio encoder and trainer)")
STAGES.register("judge", "rewards.generative.trainer:STAGE",
                "Generative reward model (LLM judge) trained on judgment data")
STAGES.register("dpo", "rlhf.algorithms.dpo:STAGE",
                "Direct preference optimisation of a policy (TRL DPOTrainer)")
STAGES.register("grpo", "rlhf.algorithms.grpo:STAGE",
                "Group-relative policy optimisation (own engine)")
STAGES.register("dapo", "rlhf.algorithms.dapo:STAGE",
                "DAPO: clip-higher, token-level loss, dynamic sampling, overlong shaping")
STAGES.register("ppo", "rlhf.algorithms.ppo:STAGE",
                "PPO with a critic, GAE and a KL penalty (own engine)")
STAGES.register("tts_prompts", "rlhf.policies.audio.data_stage:STAGE",
                "Sentences for the TTS recipes (rl_prompts.jsonl, eval_prompts.jsonl)")
STAGES.register("evaluate_policy", "rlhf.stages.evaluate:STAGE",
                "Sample from policies and score them with a reward (before/after)")
STAGES.register("annotate", "annotation.stage:STAGE",
                "Push speech pairs to Argilla, wait for annotators, pull preferences")
STAGES.register("emphasis_data", "rlhf.policies.emphasis.data_stage:STAGE",
                "Emphasis (HiLight) data: actor prompts, held-out QA, warm-start rows")
STAGES.register("emphasis_eval", "rlhf.policies.emphasis.eval_stage:STAGE",
                "Held-out solver QA with no / random / actor emphasis, and a transfer solver")
STAGES.register("rerank_data", "rlhf.policies.rerank.stages:DATA_STAGE",
                "GR2 data: catalogue, semantic IDs, SID tokenizer, teacher traces, prompts")
STAGES.register("rerank_eval", "rlhf.policies.rerank.stages:EVAL_STAGE",
                "GR2 evaluation: Recall@1/5, NDCG@5, order-copy rate on held-out users")
STAGES.register("persona_dialogue", "rlhf.policies.dialogue.data_stage:STAGE",
                "Persona dialogue data: warm-start turns, RL/held-out prompts, judgments")
STAGES.register("dialogue_eval", "rlhf.policies.dialogue.eval_stage:STAGE",
                "Persona consistency before/after (hidden score, judge), optional eSpeak turns")
STAGES.register("spoken_digits", "rlhf.policies.audio.asr_data:STAGE",
                "Spoken-digit ASR task rendered by eSpeak NG (train/eval WAV + JSONL)")
STAGES.register("asr_finetune", "rlhf.policies.audio.asr_sft:STAGE",
                "Supervised warm start of a Whisper ASR model (own loop)")
STAGES.register("asr_eval", "rlhf.policies.audio.asr_eval:STAGE",
                "Held-out WER/CER of Whisper ASR models (before/after RL)")
STAGES.register("speech_pairs", "annotation.policy_pairs:STAGE",
                "Sample speech pairs from a TTS policy (and held-out labelled pairs)")
STAGES.register("evaluate_speech", "rlhf.policies.audio.eval_stage:STAGE",
                "TTS policies before/after vs the hidden preference; reward-model accuracy")
STAGES.register("codec_pairs", "rlhf.policies.audio.codec_pairs:PAIRS_STAGE",
                "Speech pairs sampled from a codec-token TTS policy (WAV + token ids)")
STAGES.register("codec_preferences", "rlhf.policies.audio.codec_pairs:PREFERENCES_STAGE",
                "Annotated speech pairs -> token-id DPO pairs (codec_tts sidecars)")
STAGES.register("codec_eval", "rlhf.policies.audio.codec_eval:STAGE",
                "Sample codec-token TTS policies, score with the hidden preference")

__all__ = ["STAGES", "StageContext", "StageOptions", "StageResult", "StageSpec"]
