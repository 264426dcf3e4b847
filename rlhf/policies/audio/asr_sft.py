"""Stage ``asr_finetune``: supervised warm start of an ASR model (own small loop): a Whisper
encoder-decoder or an audio-LLM (``tiny:audio-llm``, Qwen2-Audio; chosen by the checkpoint's
model type, :func:`.asr_policy.build_asr_policy`).

TRL's ``SFTTrainer`` is built for text-only causal LMs; models that read log-mel features get
this loop instead: teacher-forced cross-entropy (nats per transcript token, the end token
included) of ``transcript + end`` given the prompt (Whisper's decoder prompt, or the
audio-LLM's processor prompt) and the clip's features, AdamW at a constant learning rate,
``batch_size`` clips per step drawn from a seeded permutation per epoch. The loss uses the same
inputs and token distribution the ``asr_whisper`` / ``asr_audio_llm`` policy samples from
(special tokens suppressed). Per-step ``train/loss`` and ``train/token_accuracy`` go to the stage's
MLflow run; the model is saved to ``model/`` (with tokenizer and feature extractor).
"""

from __future__ import annotations

import time

from pydantic import Field

from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec


class AsrSFTOptions(StageOptions):
    model: str = "tiny:whisper"
    """Hub id, local path, ``tiny:whisper``, ``tiny:audio-llm`` or ``@stage/model`` of a Whisper
    model or an audio-LLM."""
    train: str
    """Rows with ``audio`` (path relative to the file) and ``text``; e.g. ``@data/train.jsonl``."""
    audio_column: str = "audio"
    text_column: str = "text"
    steps: int = Field(200, ge=1)
    """Optimiser steps."""
    batch_size: int = Field(16, ge=1)
    """Clips per step."""
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    language: str | None = "en"
    """Language token of a hub Whisper tokenizer (ignored by ``tiny:whisper``)."""
    task: str = "transcribe"
    prompt: str | None = None
    """Prompt text of an audio-LLM, holding its audio token once (None: the adapter's
    default); see ``asr_audio_llm``."""
    trust_remote_code: bool = False
    log_every: int = Field(10, ge=1)
    """Steps between metric points."""
    num_threads: int | None = Field(None, ge=1)
    """torch CPU threads for this stage (None: leave torch's setting; 1 suits tiny models)."""


def run(ctx: StageContext, opts: AsrSFTOptions) -> StageResult:
    """Entry point of the ``asr_finetune`` stage kind (see the module docstring)."""
    from rlhf.policies.audio.asr_model import torch_threads

    with torch_threads(opts.num_threads):
        return _run(ctx, opts)


def _run(ctx: StageContext, opts: AsrSFTOptions) -> StageResult:
    import torch
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    from rlhf.policies.audio.asr_data import read_asr_rows
    from rlhf.policies.audio.asr_policy import stage_asr_policy

    rows = read_asr_rows(ctx.path(opts.train), opts.audio_column, opts.text_column)
    policy = stage_asr_policy(ctx.resolve(opts.model), opts, len(rows))
    model = policy.model
    torch.manual_seed(ctx.seed)
    gen = torch.Generator().manual_seed(ctx.seed)
    optim = torch.optim.AdamW(model.parameters(), lr=opts.learning_rate,
                              weight_decay=opts.weight_decay)
    order: list[int] = []
    model.train()
    started = time.perf_counter()
    loss_value = acc = float("nan")
    progress = Progress(TextColumn(f"  {ctx.name}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                        console=Console(stderr=True))
    with progress:
        bar = progress.add_task(ctx.name, total=opts.steps, info="")
        for step in range(1, opts.steps + 1):
            batch = []
            while len(batch) < opts.batch_size:
                if not order:
                    order = torch.randperm(len(rows), generator=gen).tolist()
                batch.append(order.pop())
            paths = [rows[i][0] for i in batch]
            target = policy.reference_rollout(paths, {"audio": paths,
                                                      "text": [rows[i][1] for i in batch]})
            ids, mask = target.completion_ids, target.completion_mask
            logits = policy.teacher_forced_logits(target).float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids.to(logits.device),
                                                    reduction="none").cpu()
            loss = (nll * mask).sum() / mask.sum()
            optim.zero_grad(set_to_none=True)
            loss.backward()
            if opts.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), opts.max_grad_norm)
            optim.step()
            loss_value = loss.item()
            acc = float(((logits.detach().argmax(-1).cpu() == ids).float() * mask).sum()
                        / mask.sum())
            if step % opts.log_every == 0 or step == opts.steps:
                ctx.tracker.log_metrics({"train/loss": loss_value, "train/token_accuracy": acc},
                                        step)
            progress.update(bar, completed=step, info=f"loss {loss_value:.3f}")
    seconds = time.perf_counter() - started
    policy.save(ctx.stage_dir / "model")
    return StageResult(
        metrics={"train/loss": loss_value, "train/token_accuracy": acc, "time/train_s": seconds},
        outputs={"model": "model"},
        summary=[f"{opts.steps} steps in {seconds:.1f}s: loss {loss_value:.3f}, "
                 f"token accuracy {acc:.3f}"])


STAGE = StageSpec(AsrSFTOptions, run, "Supervised warm start of a Whisper or audio-LLM ASR "
                  "model (teacher-forced cross-entropy)")
