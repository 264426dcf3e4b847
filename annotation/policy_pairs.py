"""Stage ``speech_pairs``: speech pairs to annotate, sampled from a TTS policy.

For each pair a sentence (from ``prompts``, shuffled with the run's seed and cycled) is spoken
twice by the policy (``policy.adapter``: an audio adapter such as ``espeak_prosody``, whose
rollouts carry ``waveform`` and ``sample_rate``); a pair whose two renderings are the same
waveform (the same controls) is drawn again. Outputs, in the stage directory:

- ``pairs.jsonl``: ``{id, prompt, audio_a, audio_b, metadata}`` rows for the ``annotate``
  stage (``audio/<i>-a.wav`` ...; ``prompt`` is ``prompt_prefix + sentence``; metadata: the
  policy, the control text of each side, the sampling parameters);
- ``policy/``: the policy as sampled (with its grown tokenizer), the start of a later RL stage
  and the "before" of an evaluation, so that all three see the same model;
- with ``n_heldout`` > 0, ``heldout.jsonl``: pairs on the ``heldout_prompts`` sentences,
  labelled by the hidden preference function ``label_with`` (no noise; pairs whose two
  qualities differ by less than ``min_gap`` are drawn again): ``{prompt, chosen_audio,
  rejected_audio, margin}`` rows (``margin`` = quality difference, 0-1 scale), the held-out set
  on which a reward model trained from the annotations is scored.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhf.errors import UserError
from rlhf.policies.text import TextPolicyOptions
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec


class PreferenceSpec(BaseModel):
    """A hidden preference function of :mod:`annotation.simulate` and its parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = "prosody"
    """``speaking_rate``, ``loudness``, ``prosody`` or ``module:function``."""
    params: dict[str, Any] = Field(default_factory=dict)

    def function(self) -> Any:
        from annotation.simulate import preference_function

        return preference_function(self.name, **self.params)


class SpeechPairsOptions(StageOptions):
    policy: TextPolicyOptions
    """The TTS policy (``model``, ``adapter: espeak_prosody``, ``adapter_options``, sampling)."""
    prompts: str
    """Sentences to annotate (``prompt`` column): a path or ``@stage/file.jsonl``."""
    n_pairs: int = Field(64, ge=1)
    prompt_prefix: str = "Read aloud: "
    """Put before the sentence in the pairs' ``prompt`` (what annotators read)."""
    heldout_prompts: str | None = None
    """Sentences of the held-out labelled pairs (default: ``prompts``)."""
    n_heldout: int = Field(0, ge=0)
    label_with: PreferenceSpec = Field(default_factory=PreferenceSpec)
    """Hidden preference that labels the held-out pairs."""
    min_gap: float = Field(0.02, ge=0)
    """Held-out pairs: the two qualities differ by at least this."""
    batch_size: int = Field(16, ge=1)
    """Sentences per generation call (two renderings each)."""
    max_rounds: int = Field(20, ge=1)
    """Generation rounds before giving up on finding enough distinct pairs."""

    @model_validator(mode="after")
    def _audio_adapter(self) -> SpeechPairsOptions:
        if self.policy.adapter == "text":
            raise ValueError("policy.adapter: give an audio adapter (e.g. espeak_prosody); "
                             "text completions cannot be spoken")
        return self


def _sentences(ctx: StageContext, ref: str) -> list[str]:
    from rlhf.data import load_records

    rows = load_records(ctx.path(ref), "prompt").rows
    out = [str(r["prompt"]) for r in rows]
    if not out:
        raise UserError(f"{ctx.path(ref)}: no sentences")
    return out


def _digest(wave: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(wave, dtype=np.float32).tobytes()).hexdigest()


def sample_pairs(policy: Any, sentences: list[str], n: int, rng: random.Random,
                 batch_size: int, max_rounds: int, accept: Any = None) -> list[dict[str, Any]]:
    """``n`` pairs ``{sentence, a, b}`` (each side ``{wave, sample_rate, controls}``) of
    distinct renderings; ``accept(a, b)`` may refuse a pair (it is then drawn again)."""
    order: list[str] = []
    pairs: list[dict[str, Any]] = []
    for _ in range(max_rounds):
        want = n - len(pairs)
        if want <= 0:
            break
        batch = []
        for _ in range(min(batch_size, max(want, 1))):
            if not order:
                order = sentences[:]
                rng.shuffle(order)
            batch.append(order.pop())
        rollout = policy.generate(batch, 2)
        waves, rates = rollout.extras["waveform"], rollout.extras["sample_rate"]
        for i, sentence in enumerate(batch):
            sides = [{"wave": waves[2 * i + k], "sample_rate": int(rates[2 * i + k]),
                      "controls": rollout.completions[2 * i + k]} for k in (0, 1)]
            if _digest(sides[0]["wave"]) == _digest(sides[1]["wave"]):
                continue
            if accept is not None and not accept(sentence, *sides):
                continue
            pairs.append({"sentence": sentence, "a": sides[0], "b": sides[1]})
            if len(pairs) == n:
                break
    if len(pairs) < n:
        raise UserError(f"found {len(pairs)} of {n} distinct speech pairs in {max_rounds} "
                        "rounds: the policy speaks too uniformly (raise max_rounds or the "
                        "sampling temperature)")
    return pairs


def run(ctx: StageContext, opts: SpeechPairsOptions) -> StageResult:
    import torch

    from rlhf.audio.io import write_audio
    from rlhf.data import write_jsonl
    from rlhf.policies import build_policy

    torch.manual_seed(ctx.seed)
    rng = random.Random(ctx.seed)
    policy = build_policy(ctx.resolve(opts.policy.model), opts.policy, need_reference=False)
    policy.save(ctx.stage_dir / "policy")
    sampling = opts.policy.sampling.model_dump()

    def write(rel: str, side: dict[str, Any]) -> str:
        write_audio(ctx.stage_dir / rel, side["wave"], side["sample_rate"])
        return rel

    rows = []
    for i, pair in enumerate(sample_pairs(policy, _sentences(ctx, opts.prompts), opts.n_pairs,
                                          rng, opts.batch_size, opts.max_rounds)):
        rows.append({"id": f"pair-{i:05d}", "prompt": opts.prompt_prefix + pair["sentence"],
                     "audio_a": write(f"audio/{i:05d}-a.wav", pair["a"]),
                     "audio_b": write(f"audio/{i:05d}-b.wav", pair["b"]),
                     "metadata": {"policy": opts.policy.model, "controls_a": pair["a"]["controls"],
                                  "controls_b": pair["b"]["controls"], "sampling": sampling}})
    write_jsonl(ctx.stage_dir / "pairs.jsonl", rows)
    outputs = {"pairs": "pairs.jsonl", "policy": "policy"}
    metrics: dict[str, float] = {"pairs/n": float(len(rows))}
    summary = [f"{len(rows)} speech pairs sampled from {opts.policy.model} "
               f"({opts.policy.adapter})"]
    if opts.n_heldout:
        held = _heldout(ctx, opts, policy, rng, write)
        outputs["heldout"] = "heldout.jsonl"
        metrics.update({"pairs/heldout": float(len(held)),
                        "pairs/heldout_mean_gap": float(np.mean([r["margin"] for r in held]))})
        summary.append(f"{len(held)} held-out pairs labelled by the hidden preference "
                       f"{opts.label_with.name!r}")
    return StageResult(metrics=metrics, outputs=outputs, summary=summary)


def _heldout(ctx: StageContext, opts: SpeechPairsOptions, policy: Any, rng: random.Random,
             write: Any) -> list[dict[str, Any]]:
    from rlhf.data import write_jsonl

    quality = opts.label_with.function()

    def accept(sentence: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
        for side in (a, b):
            side["quality"] = float(quality(side["wave"], side["sample_rate"],
                                            opts.prompt_prefix + sentence))
        return abs(a["quality"] - b["quality"]) >= opts.min_gap

    sentences = _sentences(ctx, opts.heldout_prompts or opts.prompts)
    rows = []
    for i, pair in enumerate(sample_pairs(policy, sentences, opts.n_heldout, rng,
                                          opts.batch_size, opts.max_rounds, accept)):
        a, b = pair["a"], pair["b"]
        chosen, rejected = (a, b) if a["quality"] > b["quality"] else (b, a)
        rows.append({"id": f"heldout-{i:05d}", "prompt": opts.prompt_prefix + pair["sentence"],
                     "chosen_audio": write(f"heldout/{i:05d}-chosen.wav", chosen),
                     "rejected_audio": write(f"heldout/{i:05d}-rejected.wav", rejected),
                     "margin": chosen["quality"] - rejected["quality"],
                     "chosen_controls": chosen["controls"],
                     "rejected_controls": rejected["controls"]})
    write_jsonl(ctx.stage_dir / "heldout.jsonl", rows)
    return rows


STAGE = StageSpec(SpeechPairsOptions, run,
                  "Sample speech pairs from a TTS policy (and held-out labelled pairs)")
