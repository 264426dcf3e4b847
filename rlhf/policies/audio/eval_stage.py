"""Stage ``evaluate_speech``: TTS policies before / after training, against a hidden preference.

Each policy (label → model, e.g. ``before: "@pairs/policy"``, ``after: "@rl/model"``) speaks
every held-out sentence ``samples_per_prompt`` times (same seed for every policy). Each clip is
scored by

- the hidden ``preference`` (the scripted annotators' quality function, 0-1, no noise):
  ``eval/<label>/preference``, and ``eval/preference_gain`` = after − before;
- every reward of ``rewards`` (e.g. the reward model and ``audio.intelligibility``):
  ``eval/<label>/<reward>``;
- what the listener measures: words per voiced minute and median pitch (Hz),
  ``eval/<label>/wpm`` and ``eval/<label>/f0_hz``.

With ``reward_model`` and ``heldout_pairs`` (labelled by the hidden preference, e.g.
``@pairs/heldout.jsonl``), the reward model's pairwise accuracy on them is
``eval/reward_model/accuracy`` (ties count half). Every metric also goes to the recipe's parent
MLflow run. ``samples.jsonl`` holds each clip's controls and scores; ``samples.html`` plays the
first sample of each policy per sentence (``html_sentences`` of them; self-contained, base64 WAV).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from annotation.policy_pairs import PreferenceSpec
from rewards.spec import RewardSpec
from rlhf.policies.text import SamplingOptions
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec
from rlhf.stages.options import PolicyMap


class EvaluateSpeechOptions(StageOptions):
    policies: PolicyMap
    """Label → model (a saved policy, ``@stage/model``); e.g. before / after."""
    adapter: str = "espeak_prosody"
    adapter_options: dict[str, Any] = Field(default_factory=dict)
    """The adapter's options (as in the RL stage's ``policy.adapter_options``)."""
    sampling: SamplingOptions = SamplingOptions()
    prompts: str
    """Held-out sentences (``prompt`` column)."""
    samples_per_prompt: int = Field(4, ge=1)
    preference: PreferenceSpec = Field(default_factory=PreferenceSpec)
    """The hidden preference (the annotators' taste) to evaluate against."""
    prompt_prefix: str = "Read aloud: "
    """As in ``speech_pairs``: the prompt the listener reads is prefix + sentence."""
    rewards: list[RewardSpec] = Field(default_factory=list)
    """Further scores of each clip (e.g. ``preference.model``, ``audio.intelligibility``)."""
    reward_model: str | None = None
    """A speech reward model to score on ``heldout_pairs``."""
    heldout_pairs: str | None = None
    """Pairs labelled by the hidden preference (``chosen_audio`` / ``rejected_audio``)."""
    html_sentences: int = Field(8, ge=0)


def _mean(values: list[Any]) -> float:
    got = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(got) / len(got) if got else float("nan")


def reward_model_accuracy(model_dir: str, pairs_path: str) -> dict[str, float]:
    """Pairwise accuracy and mean reward gap of a speech reward model on labelled pairs."""
    from rewards.preference.audio_data import load_audio_pairs, load_wave
    from rewards.preference.audio_model import AudioRewardModel
    from rewards.preference.scoring import pairwise_accuracy

    model = AudioRewardModel.from_pretrained(model_dir)
    pairs = load_audio_pairs(pairs_path).pairs
    prompts = [p.prompt for p in pairs]
    # batches of 64, as the audio_reward_model stage's own evaluation: the same numbers
    chosen = model.score_features([model.featurize(*load_wave(p.chosen)) for p in pairs],
                                  prompts, 64)
    rejected = model.score_features([model.featurize(*load_wave(p.rejected)) for p in pairs],
                                    prompts, 64)
    stats = pairwise_accuracy(chosen, rejected)
    return {"eval/reward_model/accuracy": stats["accuracy"],
            "eval/reward_model/reward_gap": stats["reward_gap"],
            "eval/reward_model/n_pairs": float(len(pairs))}


def run(ctx: StageContext, opts: EvaluateSpeechOptions) -> StageResult:
    import torch

    from annotation.simulate import median_f0, spoken_text, voiced_seconds
    from rewards.compose import CompositeReward
    from rlhf.data import load_records, write_jsonl
    from rlhf.policies import build_policy
    from rlhf.policies.audio.report import samples_page
    from rlhf.policies.text import TextPolicyOptions

    sentences = [str(r["prompt"]) for r in load_records(ctx.path(opts.prompts), "prompt").rows]
    quality = opts.preference.function()
    specs = [r.model_copy(update={"params": {k: ctx.resolve(v) if isinstance(v, str) else v
                                             for k, v in r.params.items()}})
             for r in opts.rewards]
    design = CompositeReward(specs) if specs else None
    metrics: dict[str, float] = {}
    samples: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = [{"sentence": s} for s in sentences[:opts.html_sentences]]
    table: dict[str, dict[str, float]] = {}
    try:
        for label, spec in opts.policies.items():
            options = TextPolicyOptions(model=ctx.resolve(spec), adapter=opts.adapter,
                                        adapter_options=opts.adapter_options,
                                        sampling=opts.sampling)
            policy = build_policy(options.model, options, need_reference=False)
            torch.manual_seed(ctx.seed)
            rollout = policy.generate(sentences, opts.samples_per_prompt)
            waves, rates = rollout.extras["waveform"], rollout.extras["sample_rate"]
            n = len(waves)
            prompts = [opts.prompt_prefix + s for s in rollout.prompts]
            scores: dict[str, list[Any]] = {
                "preference": [float(quality(w, sr, p)) for w, sr, p in zip(waves, rates, prompts,
                                                                          strict=True)],
                "wpm": [len(spoken_text(p).split()) * 60.0 / max(voiced_seconds(w, sr), 1e-9)
                        for w, sr, p in zip(waves, rates, prompts, strict=True)],
                "f0_hz": [median_f0(w, sr) for w, sr in zip(waves, rates, strict=True)]}
            if design is not None:
                result = design.score(list(rollout.prompts), rollout.completions,
                                      **rollout.columns, **rollout.extras)
                scores.update(result.components)
            table[label] = {k: _mean(v) for k, v in scores.items()}
            metrics.update({f"eval/{label}/{k}": v for k, v in table[label].items()})
            for i in range(n):
                row = {k: v[i] for k, v in scores.items()}
                samples.append({"policy": label, "prompt": rollout.prompts[i],
                                "controls": rollout.completions[i], **row})
                j = i // opts.samples_per_prompt
                if i % opts.samples_per_prompt == 0 and j < len(shown):
                    shown[j][label] = {"wave": waves[i], "sample_rate": int(rates[i]),
                                       "controls": rollout.completions[i],
                                       "scores": {k: v for k, v in row.items()
                                                  if v is not None}}
            del policy
    finally:
        if design is not None:
            design.close()
    if "before" in opts.policies and "after" in opts.policies:
        metrics["eval/preference_gain"] = (metrics["eval/after/preference"]
                                           - metrics["eval/before/preference"])
    if opts.reward_model and opts.heldout_pairs:
        metrics.update(reward_model_accuracy(str(ctx.path(opts.reward_model)),
                                             str(ctx.path(opts.heldout_pairs))))
    write_jsonl(ctx.stage_dir / "samples.jsonl", samples)
    page = samples_page(f"{ctx.run_dir.name}: speech samples", list(opts.policies), shown, table)
    (ctx.stage_dir / "samples.html").write_text(page, encoding="utf-8")
    ctx.tracker.log_artifact(ctx.stage_dir / "samples.jsonl")
    ctx.tracker.log_artifact(ctx.stage_dir / "samples.html")
    ctx.tracker.log_parent_metrics(metrics)
    return StageResult(metrics=metrics, outputs={"samples": "samples.jsonl",
                                                 "html": "samples.html"},
                       summary=_summary(table, metrics))


def _summary(table: dict[str, dict[str, float]], metrics: dict[str, float]) -> list[str]:
    lines = []
    for label, values in table.items():
        parts = [f"hidden preference {values['preference']:.3f}"]
        parts += [f"{k} {v:.3f}" for k, v in values.items()
                  if k not in ("preference", "wpm", "f0_hz")]
        parts.append(f"{values['wpm']:.0f} wpm, {values['f0_hz']:.0f} Hz")
        lines.append(f"{label}: " + ", ".join(parts))
    if "eval/preference_gain" in metrics:
        lines.append(f"hidden-preference gain {metrics['eval/preference_gain']:+.3f}")
    if "eval/reward_model/accuracy" in metrics:
        lines.append(f"reward model: {metrics['eval/reward_model/accuracy']:.1%} accuracy on "
                     f"{metrics['eval/reward_model/n_pairs']:.0f} held-out scripted pairs")
    return lines


STAGE = StageSpec(EvaluateSpeechOptions, run,
                  "Speak held-out sentences with TTS policies; score them against the hidden "
                  "preference, the rewards and (held-out pairs) the reward model")
