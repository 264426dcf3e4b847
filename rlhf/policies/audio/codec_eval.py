"""Stage ``codec_eval``: sample codec-token TTS policies and score them with a hidden preference.

For each policy (label → model, e.g. ``before: "@sample/model"``, ``after: "@dpo/model"``),
every held-out sentence is spoken ``samples_per_prompt`` times through the ``codec_tts`` adapter,
and each clip is scored by the same noise-free quality function the scripted annotators used
(:func:`annotation.simulate.preference_function`, e.g. :func:`target_duration`). Metrics, also
logged to the parent run: ``eval/<label>/preference_mean`` (mean quality, 0-1),
``eval/<label>/seconds_mean`` (mean clip length, s) and ``eval/preference_gain`` (after −
before). Every clip's numbers go to ``samples.jsonl``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rlhf.policies.text import SamplingOptions
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec
from rlhf.stages.options import PolicyMap


def target_duration(target_seconds: float = 0.6, seconds_per_word: float = 0.0,
                    scale_seconds: float = 0.3) -> Callable[[np.ndarray, int, str], float]:
    """A hidden preference for scripted annotators: quality ``exp(-|s − target| / scale)`` of a
    clip of ``s`` seconds (its whole length), ``target = target_seconds + seconds_per_word ×
    words`` of the prompt's spoken text (after ``Read aloud:``). Use as
    ``rlhf.policies.audio.codec_eval:target_duration``."""
    if scale_seconds <= 0:
        raise ValueError("scale_seconds must be > 0")

    def quality(wave: np.ndarray, sample_rate: int, prompt: str) -> float:
        from annotation.simulate import spoken_text

        seconds = len(wave) / float(sample_rate)
        if seconds <= 0:
            return 0.0
        target = target_seconds + seconds_per_word * len(spoken_text(prompt).split())
        return math.exp(-abs(seconds - target) / scale_seconds)
    return quality


class HiddenPreference(BaseModel):
    """The annotators' quality function (without their noise)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "rlhf.policies.audio.codec_eval:target_duration"
    """``speaking_rate``, ``loudness`` or ``module:function`` (as ``annotate``'s simulate)."""
    params: dict[str, Any] = Field(default_factory=dict)


class CodecEvalOptions(StageOptions):
    policies: PolicyMap
    """Label → model (``@stage/model``), e.g. ``before`` and ``after``."""
    adapter_options: dict[str, Any] = Field(default_factory=dict)
    """``codec_tts`` adapter options (the codec the policies were trained with)."""
    sampling: SamplingOptions = SamplingOptions()
    prompts: str
    """Held-out prompt rows (``{"prompt": sentence}``)."""
    prompt_prefix: str = "Read aloud: "
    """Put before the sentence when the preference reads the prompt (as in ``codec_pairs``)."""
    samples_per_prompt: int = Field(4, ge=1)
    preference: HiddenPreference = HiddenPreference()

    @field_validator("adapter_options")
    @classmethod
    def _adapter(cls, value: dict[str, Any]) -> dict[str, Any]:
        from rlhf.policies.audio.codec_tts import CodecTTSOptions

        CodecTTSOptions(**value)
        return value


def run(ctx: StageContext, opts: CodecEvalOptions) -> StageResult:
    import torch

    from annotation.simulate import preference_function
    from rlhf.data import load_records, write_jsonl
    from rlhf.policies import build_policy
    from rlhf.policies.text import TextPolicyOptions

    quality = preference_function(opts.preference.name, **opts.preference.params)
    sentences = [str(r["prompt"]) for r in load_records(ctx.path(opts.prompts), "prompt").rows]
    metrics: dict[str, float] = {}
    samples: list[dict[str, Any]] = []
    for label, spec in opts.policies.items():
        path = ctx.resolve(spec)
        policy_opts = TextPolicyOptions(model=path, adapter="codec_tts",
                                        adapter_options=opts.adapter_options,
                                        sampling=opts.sampling)
        torch.manual_seed(ctx.seed)
        policy = build_policy(path, policy_opts, need_reference=False)
        rollout = policy.generate(sentences, opts.samples_per_prompt)
        scores, seconds = [], []
        for sentence, wave, sr in zip(rollout.prompts, rollout.extras["waveform"],
                                      rollout.extras["sample_rate"], strict=True):
            q = float(quality(wave, sr, opts.prompt_prefix + str(sentence)))
            scores.append(q)
            seconds.append(len(wave) / sr)
            samples.append({"policy": label, "prompt": sentence, "seconds": len(wave) / sr,
                            "preference": q})
        metrics[f"eval/{label}/preference_mean"] = float(np.mean(scores))
        metrics[f"eval/{label}/seconds_mean"] = float(np.mean(seconds))
    summary = [f"{label}: hidden preference {metrics[f'eval/{label}/preference_mean']:.3f}, "
               f"mean {metrics[f'eval/{label}/seconds_mean']:.2f} s" for label in opts.policies]
    if "before" in opts.policies and "after" in opts.policies:
        gain = metrics["eval/after/preference_mean"] - metrics["eval/before/preference_mean"]
        metrics["eval/preference_gain"] = gain
        summary.append(f"gain {gain:+.3f}")
    write_jsonl(ctx.stage_dir / "samples.jsonl", samples)
    ctx.tracker.log_artifact(ctx.stage_dir / "samples.jsonl")
    ctx.tracker.log_parent_metrics(metrics)
    return StageResult(metrics=metrics, outputs={"samples": "samples.jsonl"}, summary=summary)


STAGE = StageSpec(CodecEvalOptions, run,
                  "Sample codec-token TTS policies, score with the hidden preference")
