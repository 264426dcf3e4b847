"""Stages ``codec_pairs`` and ``codec_preferences``: speech pairs from a codec-token TTS policy
for annotation, and the annotators' choices back as token-id DPO pairs.

``codec_pairs`` samples two completions per prompt sentence from a ``codec_tts`` policy
(:mod:`rlhf.policies.audio.codec_tts`) and writes, per clip, ``audio/<i>-a.wav`` (16-bit PCM at
the codec's rate) and next to it ``audio/<i>-a.tokens.json``: the exact ``prompt_ids`` and
``completion_ids`` (end token included) the policy sampled, and the ``codes`` ``[n_q, frames]``.
``pairs.jsonl`` (:mod:`annotation.pairs` rows: ``prompt`` = ``"Read aloud: <sentence>"``,
``audio_a``, ``audio_b``, ``metadata`` with frames and seconds) goes to the ``annotate``
stage. The sampling policy (the LM grown with the codec tokens) is saved to ``model/``: DPO
starts there, so the sidecar ids are its ids.

``codec_preferences`` reads the annotate stage's ``preferences.jsonl`` (``chosen`` /
``rejected`` are the WAV paths), finds each clip's sidecar and writes ``dpo_pairs.jsonl``
(:mod:`rlhf.algorithms.dpo_tokens` rows: ``prompt_ids``, ``chosen_ids``, ``rejected_ids``, plus
``id``, ``prompt``, ``margin``, ``chosen_frames``, ``rejected_frames``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from rlhf.errors import DataError, UserError
from rlhf.policies.text import TextPolicyOptions
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec

TOKENS_SUFFIX = ".tokens.json"
"""Sidecar of a clip: ``<clip>.wav`` → ``<clip>.tokens.json``."""


def sidecar(wav: str | Path) -> Path:
    """The token sidecar of a clip."""
    return Path(wav).with_suffix(TOKENS_SUFFIX)


class CodecPairsOptions(StageOptions):
    policy: TextPolicyOptions
    """A ``codec_tts`` policy (``adapter: codec_tts``; model, adapter_options, sampling)."""
    prompts: str
    """Prompt rows (``{"prompt": sentence}``), a path or ``@stage/file``."""
    n_pairs: int | None = Field(None, ge=1)
    """Pairs to write, one per prompt in file order (default: one per prompt)."""
    prompt_prefix: str = "Read aloud: "
    """Put before the sentence in the annotators' prompt."""
    batch_size: int = Field(16, ge=1)
    """Prompts sampled together (2 completions each)."""

    @model_validator(mode="after")
    def _codec_policy(self) -> "CodecPairsOptions":
        if self.policy.adapter != "codec_tts":
            raise ValueError(f"policy.adapter must be codec_tts, got {self.policy.adapter!r}")
        if self.policy.lora is not None:
            raise ValueError("policy.lora: not supported here (the sampling model is saved whole)")
        return self


def run_pairs(ctx: StageContext, opts: CodecPairsOptions) -> StageResult:
    import torch

    from rlhf.audio.io import write_audio
    from rlhf.data import load_records, write_jsonl
    from rlhf.policies import build_policy

    rows = load_records(ctx.path(opts.prompts), "prompt").rows
    sentences = [str(r["prompt"]) for r in rows][:opts.n_pairs]
    torch.manual_seed(ctx.seed)
    policy = build_policy(ctx.resolve(opts.policy.model), opts.policy, need_reference=False)
    codec, n_q = policy.codec, policy.codec.n_q
    need = n_q * max(1, policy.codec_options.min_frames)
    if opts.policy.sampling.max_new_tokens < need:
        raise UserError(f"stage {ctx.name}: policy.sampling.max_new_tokens "
                        f"({opts.policy.sampling.max_new_tokens}) is below n_q × min_frames "
                        f"= {need}: no clip would hold a whole frame")
    out_rows: list[dict[str, Any]] = []
    frames: list[int] = []
    for start in range(0, len(sentences), opts.batch_size):
        batch = sentences[start:start + opts.batch_size]
        rollout = policy.generate(batch, 2)
        prompt_ids = [ids[m.bool()].tolist() for ids, m in
                      zip(rollout.prompt_ids, rollout.prompt_mask, strict=True)]
        completions = rollout.token_lists()
        for j, sentence in enumerate(batch):
            i = start + j
            meta: dict[str, Any] = {"codec": policy.codec_options.codec, "n_q": n_q}
            paths = {}
            for side, k in (("a", 2 * j), ("b", 2 * j + 1)):
                rel = f"audio/{i:05d}-{side}.wav"
                codes = rollout.extras["codes"][k]
                n_frames = len(codes[0]) if codes else 0
                write_audio(ctx.stage_dir / rel, rollout.extras["waveform"][k], codec.sample_rate)
                sidecar(ctx.stage_dir / rel).write_text(json.dumps({
                    "prompt": sentence, "prompt_ids": prompt_ids[k],
                    "completion_ids": completions[k], "codes": codes,
                    "sample_rate": codec.sample_rate, "frame_rate": codec.frame_rate}))
                meta[f"frames_{side}"] = n_frames
                meta[f"seconds_{side}"] = round(n_frames / codec.frame_rate, 4)
                frames.append(n_frames)
                paths[side] = rel
            out_rows.append({"id": f"pair-{i:05d}", "prompt": opts.prompt_prefix + sentence,
                             "audio_a": paths["a"], "audio_b": paths["b"], "metadata": meta})
    write_jsonl(ctx.stage_dir / "pairs.jsonl", out_rows)
    policy.save(ctx.stage_dir / "model")
    mean_frames = sum(frames) / len(frames)
    return StageResult(
        metrics={"data/pairs": float(len(out_rows)), "data/frames_mean": mean_frames,
                 "data/seconds_mean": mean_frames / codec.frame_rate},
        outputs={"pairs": "pairs.jsonl", "model": "model"},
        summary=[f"{len(out_rows)} speech pairs ({len(frames)} clips, mean "
                 f"{mean_frames / codec.frame_rate:.2f} s) from the codec-token policy"])


class CodecPreferencesOptions(StageOptions):
    preferences: str
    """Preference rows of the ``annotate`` stage (``chosen`` / ``rejected`` WAV paths with
    ``.tokens.json`` sidecars), e.g. ``@annotate/preferences.jsonl``."""


def _read_sidecar(wav: Any, where: str, field: str) -> dict[str, Any]:
    if not isinstance(wav, str) or not wav:
        raise DataError(f"{where}: {field}: expected the path of a WAV file, got {wav!r}")
    path = sidecar(wav)
    if not path.is_file():
        raise DataError(f"{where}: {field}: {path}: token sidecar not found (clips must come "
                        "from a codec_pairs stage)")
    return json.loads(path.read_text())


def run_preferences(ctx: StageContext, opts: CodecPreferencesOptions) -> StageResult:
    from rlhf.data import read_jsonl, write_jsonl

    src = ctx.path(opts.preferences)
    rows = read_jsonl(src)
    out: list[dict[str, Any]] = []
    for line, row in enumerate(rows, start=1):
        where = f"{src}:{line}"
        chosen = _read_sidecar(row.get("chosen"), where, "chosen")
        rejected = _read_sidecar(row.get("rejected"), where, "rejected")
        if chosen["prompt_ids"] != rejected["prompt_ids"]:
            raise DataError(f"{where}: rejected: the two clips answer different prompts")
        out.append({"id": row.get("id"), "prompt": chosen["prompt"],
                    "prompt_ids": chosen["prompt_ids"], "chosen_ids": chosen["completion_ids"],
                    "rejected_ids": rejected["completion_ids"], "margin": row.get("margin"),
                    "chosen_frames": len(chosen["codes"][0]) if chosen["codes"] else 0,
                    "rejected_frames": len(rejected["codes"][0]) if rejected["codes"] else 0})
    if not out:
        raise DataError(f"{src}: no preference pairs to train on")
    write_jsonl(ctx.stage_dir / "dpo_pairs.jsonl", out)
    n = len(out)
    chosen_f = sum(r["chosen_frames"] for r in out) / n
    rejected_f = sum(r["rejected_frames"] for r in out) / n
    return StageResult(
        metrics={"data/pairs": float(n), "data/chosen_frames_mean": chosen_f,
                 "data/rejected_frames_mean": rejected_f},
        outputs={"dpo_pairs": "dpo_pairs.jsonl"},
        summary=[f"{n} token-id DPO pairs (mean frames: chosen {chosen_f:.1f}, "
                 f"rejected {rejected_f:.1f})"])


PAIRS_STAGE = StageSpec(CodecPairsOptions, run_pairs,
                        "Speech pairs sampled from a codec-token TTS policy (WAV + token ids)")
PREFERENCES_STAGE = StageSpec(CodecPreferencesOptions, run_preferences,
                              "Annotated speech pairs → token-id DPO pairs (codec_tts sidecars)")
