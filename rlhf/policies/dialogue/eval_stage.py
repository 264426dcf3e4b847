"""Stage ``dialogue_eval``: persona consistency of turn policies before/after, and spoken turns.

For each policy (label -> model), every held-out prompt gets ``samples_per_prompt`` sampled turns.
Metrics per label (``eval/<label>/...``):

- ``persona_score``: the mean hidden ground truth (0 / 0.25 / 1, see
  :func:`~rlhf.policies.dialogue.persona.persona_score`), and the rate of each class
  (``consistent_rate``, ``neutral_rate``, ``contradiction_rate``, ``incoherent_rate``);
- ``<reward name>``: the mean of each entry of ``rewards`` (e.g. ``judge.generative``, the
  judge's rubric reward, or ``dialogue.on_topic``), ``@stage/...`` values in params resolved;
- with ``tts.enabled``: the first ``tts.n_turns`` turns of each policy are rendered with eSpeak NG
  (StepAudio 2.5's realtime branch: text turn, then speech) to ``tts/<label>/turn-<i>.wav``,
  logged as MLflow artifacts, and scored with ``tts.rewards`` (audio rewards get the columns
  ``waveform``, ``sample_rate`` and ``text``): ``eval/<label>/tts/<reward name>``.

``eval/persona_gain`` = after - before when both labels exist. All turns go to ``samples.jsonl``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rewards.spec import RewardSpec
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec
from rlhf.stages.options import PolicyMap


class DialogueTTSOptions(BaseModel):
    """Render final turns to speech with eSpeak NG."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    voice: str = "en-us"
    """eSpeak NG voice name."""
    rate: int = Field(170, ge=80, le=450)
    """Speaking rate, words per minute."""
    n_turns: int = Field(4, ge=1)
    """Turns rendered per policy (the first sampled ones, prompt-major)."""
    policies: list[str] | None = None
    """Labels to render; default: every policy."""
    rewards: list[RewardSpec] = Field(default_factory=list)
    """Audio rewards scoring the rendered turns (``audio.duration``, ``audio.clipping``...)."""


class DialogueEvalOptions(StageOptions):
    policies: PolicyMap
    """Label -> model (``@stage/model``, a path or ``tiny:lm``); e.g. before / after."""
    prompts: str
    """Held-out prompt rows with ``prompt``, ``facts`` and ``slot``."""
    rewards: list[RewardSpec] = Field(default_factory=list)
    """Extra rewards, each reported as ``eval/<label>/<name>`` (e.g. the judge's rubric)."""
    samples_per_prompt: int = Field(4, ge=1)
    max_new_tokens: int = Field(8, ge=1)
    temperature: float = Field(1.0, gt=0)
    batch_size: int = Field(64, ge=1)
    tts: DialogueTTSOptions | None = None
    """Speech output of the final turns (leave out for text only)."""


def _resolved(ctx: StageContext, specs: list[RewardSpec]) -> list[RewardSpec]:
    return [s.model_copy(update={"params": {k: ctx.resolve(v) if isinstance(v, str) else v
                                            for k, v in s.params.items()}}) for s in specs]


def _mean(values: list[float | None]) -> float:
    scored = [v for v in values if v is not None]
    return sum(scored) / len(scored) if scored else float("nan")


def hidden_metrics(turns: list[str], rows: list[dict[str, Any]]) -> dict[str, float]:
    """``persona_score`` and the class rates of turns against their prompt rows (same order)."""
    from rlhf.policies.dialogue import persona as P

    kinds = [P.classify(t, P.parse_facts(r["facts"]), r["slot"]) for t, r in
             zip(turns, rows, strict=True)]
    n = len(kinds)
    out = {f"{k}_rate": kinds.count(k) / n for k in P.LABELS}
    out["persona_score"] = sum((P.LABELS[k] - 1) / 4 for k in kinds) / n
    return out


def speak(ctx: StageContext, opts: DialogueTTSOptions, label: str,
          turns: list[str]) -> dict[str, float]:
    """Render ``turns`` to WAV (``tts/<label>/``), log them, score them with the audio rewards."""
    from rewards.compose import CompositeReward
    from rlhf.audio.espeak import synthesize
    from rlhf.audio.io import write_audio
    from rlhf.data import write_jsonl

    folder = ctx.stage_dir / "tts" / label
    waves, texts, rows = [], [], []
    for i, turn in enumerate(turns[:opts.n_turns]):
        text = turn.strip()
        if not text:
            rows.append({"turn": i, "text": text, "wav": None})
            continue
        wave, sr = synthesize(text, voice=opts.voice, rate=opts.rate)
        path = write_audio(folder / f"turn-{i}.wav", wave, sr)
        waves.append((wave, sr))
        texts.append(text)
        rows.append({"turn": i, "text": text, "wav": path.name,
                     "seconds": round(wave.size / sr, 3)})
    write_jsonl(folder / "turns.jsonl", rows)
    ctx.tracker.log_artifact(folder, f"tts/{label}")
    metrics = {f"eval/{label}/tts/rendered": float(len(waves))}
    if opts.rewards and waves:
        with CompositeReward(opts.rewards) as design:
            result = design.score(texts, texts, waveform=[w for w, _ in waves],
                                  sample_rate=[s for _, s in waves], text=texts)
        for name, values in result.components.items():
            metrics[f"eval/{label}/tts/{name}"] = _mean(values)
    return metrics


def run(ctx: StageContext, opts: DialogueEvalOptions) -> StageResult:
    from rewards.compose import CompositeReward
    from rlhf.data import load_records, write_jsonl
    from rlhf.models import load_causal_lm, load_tokenizer
    from rlhf.stages.evaluate import sample

    rows = load_records(ctx.path(opts.prompts), "prompt").rows
    n = opts.samples_per_prompt
    expanded = [r for r in rows for _ in range(n)]
    prompts = [r["prompt"] for r in expanded]
    columns = {k: [r.get(k) for r in expanded] for k in rows[0] if k != "prompt"}
    design = CompositeReward(_resolved(ctx, opts.rewards)) if opts.rewards else None
    metrics: dict[str, float] = {}
    samples: list[dict[str, Any]] = []
    try:
        for label, spec in opts.policies.items():
            path = ctx.resolve(spec)
            model, tokenizer = load_causal_lm(path), load_tokenizer(path)
            turns = sample(model, tokenizer, [r["prompt"] for r in rows], n, opts.max_new_tokens,
                           opts.temperature, opts.batch_size, ctx.seed)
            metrics.update({f"eval/{label}/{k}": v for k, v in
                            hidden_metrics(turns, expanded).items()})
            components: dict[str, list[float | None]] = {}
            if design is not None:
                components = design.score(prompts, turns, group_size=n, **columns).components
                metrics.update({f"eval/{label}/{k}": _mean(v) for k, v in components.items()})
            if opts.tts is not None and opts.tts.enabled and \
                    (opts.tts.policies is None or label in opts.tts.policies):
                metrics.update(speak(ctx, opts.tts, label, turns))
            samples += [{"policy": label, "prompt": p, "turn": t, "slot": r["slot"],
                         **{f"reward/{k}": v[i] for k, v in components.items()}}
                        for i, (p, t, r) in enumerate(zip(prompts, turns, expanded, strict=True))]
    finally:
        if design is not None:
            design.close()
    write_jsonl(ctx.stage_dir / "samples.jsonl", samples)
    ctx.tracker.log_artifact(ctx.stage_dir / "samples.jsonl")
    summary = [f"{label}: persona score {metrics[f'eval/{label}/persona_score']:.3f} "
               f"(consistent {metrics[f'eval/{label}/consistent_rate']:.0%}, contradiction "
               f"{metrics[f'eval/{label}/contradiction_rate']:.0%})" for label in opts.policies]
    if "before" in opts.policies and "after" in opts.policies:
        gain = metrics["eval/after/persona_score"] - metrics["eval/before/persona_score"]
        metrics["eval/persona_gain"] = gain
        summary.append(f"persona score gain {gain:+.3f}")
    outputs = {"samples": "samples.jsonl"}
    if (ctx.stage_dir / "tts").is_dir():
        outputs["tts"] = "tts"
    return StageResult(metrics=metrics, outputs=outputs, summary=summary)


STAGE = StageSpec(DialogueEvalOptions, run,
                  "Persona consistency before/after (hidden score, judge), optional eSpeak turns")
