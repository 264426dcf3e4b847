"""Stage ``asr_eval``: word and character error rates of ASR models (Whisper encoder-decoders or
audio-LLMs such as ``tiny:audio-llm``, chosen by each checkpoint's model type) on held-out clips.

Each model (label → spec, e.g. ``sft: "@sft/model"``, ``rl: "@rl/model"``) transcribes every
clip greedily; the stage reports **corpus** error rates, ``WER = Σ(S + D + I) / Σ N`` over all
utterances (N = reference words; CER likewise over characters, spaces included), after the
normaliser of the ``asr.wer`` reward (``basic`` by default), and the exact-match rate of whole
transcripts. Metrics ``eval/<label>/wer``, ``eval/<label>/cer``, ``eval/<label>/exact`` go to the
recipe's **parent** MLflow run (and the stage's result); with two or more models,
``eval/wer_drop`` = WER of the first − WER of the last. ``predictions.jsonl`` (one row per clip:
audio, reference, each model's transcript) is logged as an artifact.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec


class AsrEvalOptions(StageOptions):
    models: dict[str, str]
    """Label → model spec (``@stage/model``, path, hub id, ``tiny:whisper``,
    ``tiny:audio-llm``), in report order."""
    data: str
    """Held-out rows with ``audio`` and ``text`` (e.g. ``@data/eval.jsonl``)."""
    audio_column: str = "audio"
    text_column: str = "text"
    normalizer: Literal["none", "basic", "whisper_en"] = "basic"
    """Text normaliser applied to reference and transcript (as in ``asr.wer``)."""
    max_new_tokens: int = Field(16, ge=1)
    """Transcript length cap, tokens."""
    batch_size: int = Field(64, ge=1)
    language: str | None = "en"
    task: str = "transcribe"
    prompt: str | None = None
    """Prompt text of audio-LLMs, holding their audio token once (None: the adapter's
    default)."""
    trust_remote_code: bool = False
    num_threads: int | None = Field(None, ge=1)
    """torch CPU threads for this stage (None: leave torch's setting)."""

    @field_validator("models")
    @classmethod
    def _non_empty(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("name at least one model to evaluate")
        return value


def error_rates(references: list[str], hypotheses: list[str], normalizer: str
                ) -> dict[str, float]:
    """Corpus ``wer``, ``cer`` and ``exact`` (share of transcripts equal after normalising)."""
    from rewards.verifiable.asr import CharErrorRate, WordErrorRate, edit_counts

    words, chars = (WordErrorRate.unit_function(normalizer),
                    CharErrorRate.unit_function(normalizer))
    totals = {"w_err": 0, "w_n": 0, "c_err": 0, "c_n": 0, "exact": 0}
    for ref, hyp in zip(references, hypotheses, strict=True):
        rw, hw = list(words(ref)), list(words(hyp))
        rc, hc = chars(ref), chars(hyp)
        totals["w_err"] += sum(edit_counts(rw, hw))
        totals["w_n"] += len(rw)
        totals["c_err"] += sum(edit_counts(rc, hc))
        totals["c_n"] += len(rc)
        totals["exact"] += int(rw == hw)
    return {"wer": totals["w_err"] / max(totals["w_n"], 1),
            "cer": totals["c_err"] / max(totals["c_n"], 1),
            "exact": totals["exact"] / max(len(references), 1)}


def run(ctx: StageContext, opts: AsrEvalOptions) -> StageResult:
    """Entry point of the ``asr_eval`` stage kind (see the module docstring)."""
    from rlhf.policies.audio.asr_model import torch_threads

    with torch_threads(opts.num_threads):
        return _run(ctx, opts)


def _run(ctx: StageContext, opts: AsrEvalOptions) -> StageResult:
    from rlhf.data import write_jsonl
    from rlhf.policies.audio.asr_data import read_asr_rows
    from rlhf.policies.audio.asr_policy import stage_asr_policy

    rows = read_asr_rows(ctx.path(opts.data), opts.audio_column, opts.text_column)
    refs = [text for _, text in rows]
    metrics: dict[str, float] = {}
    predictions: dict[str, list[str]] = {}
    for label, spec in opts.models.items():
        policy = stage_asr_policy(ctx.resolve(spec), opts, 0)
        paths = [path for path, _ in rows]
        hyps = policy.transcribe(paths, {"audio": paths}, opts.batch_size)
        predictions[label] = hyps
        for key, value in error_rates(refs, hyps, opts.normalizer).items():
            metrics[f"eval/{label}/{key}"] = value
    labels = list(opts.models)
    if len(labels) > 1:
        metrics["eval/wer_drop"] = (metrics[f"eval/{labels[0]}/wer"]
                                    - metrics[f"eval/{labels[-1]}/wer"])
    ctx.tracker.log_parent_metrics(metrics)
    write_jsonl(ctx.stage_dir / "predictions.jsonl",
                [{"audio": path, "reference": ref, **{f"transcript/{k}": v[i]
                                                      for k, v in predictions.items()}}
                 for i, (path, ref) in enumerate(rows)])
    ctx.tracker.log_artifact(ctx.stage_dir / "predictions.jsonl")
    summary = [f"{label}: WER {metrics[f'eval/{label}/wer']:.3f}, CER "
               f"{metrics[f'eval/{label}/cer']:.3f}, exact {metrics[f'eval/{label}/exact']:.3f}"
               for label in labels]
    return StageResult(metrics=metrics, outputs={"predictions": "predictions.jsonl"},
                       summary=summary)


STAGE = StageSpec(AsrEvalOptions, run, "Held-out WER/CER of Whisper or audio-LLM ASR models "
                  "(parent-run eval/<label>/wer)")
