"""Stage ``audio_reward_model``: a Bradley–Terry reward model over speech, with its own loop.

Per step: a batch of pairs of similar length (``audio_data.bucket_batches``) → rewards of both
clips of every pair in one forward pass → loss ``-log σ(r_c − r_r − margin)`` (Bradley & Terry
1952; the margin term as in Llama 2, Touvron et al. 2023, with ``use_margin``), for ties
(``ties: half``) ``-½ log σ(d) − ½ log σ(−d)`` → AdamW step with gradient clipping. Metrics go
to the stage's MLflow run every ``log_every`` steps; a checkpoint (weights, optimiser, RNG
states, step; :mod:`rlhf.engine.checkpoint`) every
``save_every`` steps, from which ``rlhf run --resume`` continues exactly.

Data: ``data.train`` / ``data.eval`` record files (see :mod:`~rewards.preference.audio_data`),
or, when no file is given and ``synthetic`` is set, a speaking-rate task rendered with eSpeak NG
into ``<stage>/data`` first. ``ties`` and ``min_margin`` filter the training pairs; held-out
pairs are all scored except ties. Results: ``<stage>/model`` (``AudioRewardModel``'s
``save_pretrained``), ``eval/accuracy`` and ``eval/reward_gap`` on the held-out pairs, and their
scores in ``eval_scores.jsonl``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewards.preference.audio_data import SyntheticAudioOptions
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec


class AudioModelOptions(BaseModel):
    """The reward model to train (fields of ``audio_model.AudioRMConfig``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    encoder: str = "logmel_conv"
    """``logmel_conv``, ``tiny:whisper``, ``tiny:wav2vec2``, or a Whisper/wav2vec 2.0 hub id
    or local path (its encoder is fine-tuned)."""
    init: str | None = None
    """Start from a saved audio reward model (a path or ``@stage/model``); the architecture
    options below are then ignored (the saved ``config.json`` defines the model)."""
    hidden: int = Field(64, ge=4)
    conv_layers: int = Field(3, ge=1, le=8)
    kernel_size: int = Field(5, ge=1)
    n_mels: int = Field(40, ge=8)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    prompt_buckets: int = Field(0, ge=0)
    """Prompt conditioning: hashed bag-of-words buckets (0 = off)."""
    prompt_dim: int = Field(16, ge=1)
    max_seconds: float = Field(30.0, gt=0)
    """Clips are cut to this many seconds."""


class AudioDataOptions(BaseModel):
    """Record files of speech preference pairs (paths or ``@stage/file.jsonl``)."""

    model_config = ConfigDict(extra="forbid")

    train: str | None = None
    eval: str | None = None
    on_bad_rows: Literal["error", "skip"] = "error"


class AudioRewardModelOptions(StageOptions):
    model: AudioModelOptions = Field(default_factory=AudioModelOptions)
    data: AudioDataOptions = Field(default_factory=AudioDataOptions)
    synthetic: SyntheticAudioOptions | None = None
    """Render a synthetic speaking-rate task when ``data.train`` is not given."""
    ties: Literal["drop", "half"] = "drop"
    """Training pairs marked as ties: dropped, or kept with target ½."""
    min_margin: float | None = None
    """Keep only training pairs whose ``margin`` is at least this (large-margin filter)."""
    use_margin: bool = False
    """Subtract each pair's ``margin`` inside the loss."""
    steps: int = Field(300, ge=1)
    batch_size: int = Field(16, ge=1)
    """Pairs per step (2 x batch_size clips per forward pass)."""
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    log_every: int = Field(10, ge=1)
    save_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    num_threads: int | None = Field(None, ge=1)
    """torch CPU threads for this stage (None: leave torch's setting)."""

    @model_validator(mode="after")
    def _some_data(self) -> AudioRewardModelOptions:
        if self.data.train is None and self.synthetic is None:
            raise ValueError("give data.train (speech preference records) or a synthetic block")
        if self.data.eval is not None and self.data.train is None:
            raise ValueError("data.eval needs data.train")
        return self


# ---------------------------------------------------------------------------------------------
# Loss (pure)
# ---------------------------------------------------------------------------------------------


def bradley_terry_loss(chosen: Any, rejected: Any, margin: Any = None, tie: Any = None) -> Any:
    """Mean Bradley–Terry loss over pairs; every argument ``[B]``.

    ``-log σ(r_c − r_r − m)`` per pair (``m`` = ``margin`` or 0); where ``tie`` is true,
    ``-½ log σ(r_c − r_r) − ½ log σ(r_r − r_c)`` (target probability ½, no margin).
    """
    import torch.nn.functional as F

    diff = chosen - rejected
    loss = -F.logsigmoid(diff - margin if margin is not None else diff)
    if tie is not None:
        tie_loss = -0.5 * (F.logsigmoid(diff) + F.logsigmoid(-diff))
        loss = loss.where(~tie, tie_loss)
    return loss.mean()


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def _synthetic_files(ctx: StageContext, opts: SyntheticAudioOptions, progress: Any
                     ) -> tuple[Path, Path]:
    """Render the synthetic task into ``<stage>/data`` unless the same spec is already there."""
    from rewards.preference.audio_data import render_synthetic

    out = ctx.stage_dir / "data"
    spec = {"seed": ctx.seed, **opts.model_dump()}
    spec_file = out / "spec.json"
    train, evals = out / "train.jsonl", out / "eval.jsonl"
    if spec_file.is_file() and train.is_file() and evals.is_file() and \
            json.loads(spec_file.read_text(encoding="utf-8")) == spec:
        return train, evals
    task = progress.add_task("rendering speech (eSpeak NG)",
                             total=opts.n_train + opts.n_eval, info="")
    render_synthetic(out, opts, ctx.seed,
                     progress=lambda done, _total: progress.update(task, completed=done))
    spec_file.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return train, evals


class _Featurized:
    """The features of every clip of a set of pairs, computed once (in memory)."""

    def __init__(self, model: Any, pairs: list[Any], progress: Any, label: str) -> None:
        from rewards.preference.audio_data import load_wave

        self.pairs = pairs
        cache: dict[str, Any] = {}
        task = progress.add_task(f"features ({label})", total=len(pairs), info="")
        self.chosen, self.rejected = [], []
        for i, pair in enumerate(pairs):
            for side, out in (("chosen", self.chosen), ("rejected", self.rejected)):
                source = getattr(pair, side)
                key = source if isinstance(source, str) else f"{pair.location}:{side}"
                if key not in cache:
                    cache[key] = model.featurize(*load_wave(source))
                out.append(cache[key])
            progress.update(task, completed=i + 1)
        self.durations = [float(max(c.shape[0], r.shape[0]))
                          for c, r in zip(self.chosen, self.rejected, strict=True)]


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


class _Trainer:
    def __init__(self, ctx: StageContext, opts: AudioRewardModelOptions, model: Any,
                 train: _Featurized) -> None:
        import torch

        self.ctx, self.opts, self.model, self.train = ctx, opts, model, train
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=opts.learning_rate,
                                           weight_decay=opts.weight_decay)
        self.step = 0
        self._epoch: tuple[int, list[list[int]]] = (-1, [])
        self.window: list[tuple[float, float, float]] = []  # (loss, accuracy, gap) per step
        self.last: dict[str, float] = {}

    def _parts(self) -> Any:
        from rlhf.engine.checkpoint import Stateful

        return Stateful(self.model, {"model": self.optimizer}, {})

    def save(self) -> None:
        from rlhf.engine.checkpoint import save_checkpoint

        save_checkpoint(self.ctx.stage_dir / "checkpoints", self.step, self._parts(),
                        {"last": self.last, "window": self.window},
                        keep=self.opts.keep_checkpoints)

    def restore(self, path: Path) -> None:
        from rlhf.engine.checkpoint import load_checkpoint

        state = load_checkpoint(path, self._parts())
        self.step, self.last = int(state["step"]), dict(state.get("last", {}))
        self.window = [tuple(w) for w in state.get("window", [])]  # the unlogged steps

    def batch(self, step: int) -> list[int]:
        """The pairs of 0-based ``step``: a pure function of (seed, step), so resuming is exact."""
        from rewards.preference.audio_data import bucket_batches

        epoch = step // self._n_batches
        if self._epoch[0] != epoch:
            self._epoch = (epoch, bucket_batches(self.train.durations, self.opts.batch_size,
                                                 self.ctx.seed * 1_000_003 + epoch))
        return self._epoch[1][step % self._n_batches]

    @property
    def _n_batches(self) -> int:
        return math.ceil(len(self.train.pairs) / self.opts.batch_size)

    def train_step(self) -> None:
        import torch

        from rewards.preference.audio_model import pad_features

        idx = self.batch(self.step)
        pairs = [self.train.pairs[i] for i in idx]
        x, mask = pad_features([self.train.chosen[i] for i in idx] +
                               [self.train.rejected[i] for i in idx])
        prompts = [p.prompt for p in pairs] * 2
        self.model.train()
        rewards = self.model(x, mask, prompts)
        chosen, rejected = rewards[: len(idx)], rewards[len(idx):]
        margin = (torch.tensor([p.margin or 0.0 for p in pairs]) if self.opts.use_margin
                  else None)
        tie = torch.tensor([p.tie for p in pairs])
        loss = bradley_terry_loss(chosen, rejected, margin, tie if tie.any() else None)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                                   self.opts.max_grad_norm)
        self.optimizer.step()
        self.step += 1
        diff = (chosen - rejected).detach()
        decided = ~tie
        acc = float((diff[decided] > 0).float().mean()) if decided.any() else math.nan
        self.window.append((loss.item(), acc, float(diff.mean())))
        self.last["grad_norm"] = float(grad_norm)

    def log(self, started: float, steps_done: int) -> dict[str, float]:
        n = len(self.window)
        accs = [a for _, a, _ in self.window if not math.isnan(a)]
        metrics = {"train/loss": sum(w[0] for w in self.window) / n,
                   "train/accuracy": sum(accs) / len(accs) if accs else math.nan,
                   "train/reward_gap": sum(w[2] for w in self.window) / n,
                   "train/grad_norm": self.last.get("grad_norm", math.nan),
                   "train/lr": self.optimizer.param_groups[0]["lr"],
                   "time/steps_per_s": steps_done / max(time.perf_counter() - started, 1e-9)}
        self.ctx.tracker.log_metrics(metrics, step=self.step)
        self.window = []
        self.last.update({k: v for k, v in metrics.items() if k.startswith("train/")})
        return metrics


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                    console=Console(stderr=True))


def _build_model(ctx: StageContext, opts: AudioModelOptions) -> Any:
    from rewards.preference.audio_model import AudioRewardModel, AudioRMConfig

    if opts.init:
        return AudioRewardModel.from_pretrained(ctx.path(opts.init))
    fields = opts.model_dump(exclude={"init"})
    return AudioRewardModel(AudioRMConfig(**fields))


def _evaluate(ctx: StageContext, model: Any, held: _Featurized, batch_size: int
              ) -> dict[str, float]:
    from rewards.preference.scoring import pairwise_accuracy
    from rlhf.data import write_jsonl

    prompts = [p.prompt for p in held.pairs]
    chosen = model.score_features(held.chosen, prompts, batch_size)
    rejected = model.score_features(held.rejected, prompts, batch_size)
    stats = pairwise_accuracy(chosen, rejected)
    path = write_jsonl(ctx.stage_dir / "eval_scores.jsonl", [
        {"location": p.location, "chosen_reward": c, "rejected_reward": r, "correct": c > r}
        for p, c, r in zip(held.pairs, chosen, rejected, strict=True)])
    ctx.tracker.log_artifact(path)
    return {"eval/accuracy": stats["accuracy"], "eval/reward_gap": stats["reward_gap"],
            "eval/n_pairs": float(len(held.pairs))}


def run(ctx: StageContext, opts: AudioRewardModelOptions) -> StageResult:
    """Entry point of the ``audio_reward_model`` stage kind (see the module docstring)."""
    import torch

    threads = torch.get_num_threads()
    if opts.num_threads:
        torch.set_num_threads(opts.num_threads)
    try:
        return _run(ctx, opts)
    finally:
        torch.set_num_threads(threads)


def _run(ctx: StageContext, opts: AudioRewardModelOptions) -> StageResult:
    import torch

    from rewards.preference.audio_data import load_audio_pairs

    torch.manual_seed(ctx.seed)
    outputs = {"model": "model"}
    with _progress() as progress:
        if opts.data.train:
            train_path = ctx.path(opts.data.train)
            eval_path = ctx.path(opts.data.eval) if opts.data.eval else None
        else:
            assert opts.synthetic is not None
            train_path, eval_path = _synthetic_files(ctx, opts.synthetic, progress)
            outputs.update({"train": "data/train.jsonl", "eval": "data/eval.jsonl"})
        skip = opts.data.on_bad_rows == "skip"
        train_pairs = load_audio_pairs(
            train_path, opts.data.on_bad_rows,
            ctx.stage_dir / "rejected_train.jsonl" if skip else None, opts.ties, opts.min_margin)
        eval_pairs = load_audio_pairs(
            eval_path, opts.data.on_bad_rows,
            ctx.stage_dir / "rejected_eval.jsonl" if skip else None) if eval_path else None
        ctx.tracker.log_metrics({**train_pairs.stats("train"),
                                 **(eval_pairs.stats("eval") if eval_pairs else {})}, step=0)
        model = _build_model(ctx, opts.model)
        train = _Featurized(model, train_pairs.pairs, progress, "train")
        held = _Featurized(model, eval_pairs.pairs, progress, "eval") if eval_pairs else None
        trainer = _Trainer(ctx, opts, model, train)
        if ctx.checkpoint is not None:
            trainer.restore(ctx.checkpoint)
        task = progress.add_task(ctx.name, total=opts.steps, completed=trainer.step, info="")
        started, first = time.perf_counter(), trainer.step
        while trainer.step < opts.steps:
            trainer.train_step()
            if trainer.step % opts.log_every == 0 or trainer.step == opts.steps:
                m = trainer.log(started, trainer.step - first)
                progress.update(task, info=f"loss {m['train/loss']:.3f} "
                                           f"acc {m['train/accuracy']:.2f}")
            if trainer.step % opts.save_every == 0 or trainer.step == opts.steps:
                trainer.save()
            progress.update(task, completed=trainer.step)
    model.save_pretrained(ctx.stage_dir / "model")
    metrics = {"train/final_loss": trainer.last.get("train/loss", math.nan),
               "train/final_accuracy": trainer.last.get("train/accuracy", math.nan)}
    summary = [f"audio reward model ({model.config.encoder}): {opts.steps} steps on "
               f"{len(train_pairs)} pairs"]
    if opts.data.train and opts.synthetic is not None:
        summary.append("synthetic block not used: data.train is given")
    if held is not None:
        metrics.update(_evaluate(ctx, model, held, opts.eval_batch_size))
        summary.append(f"held-out accuracy {metrics['eval/accuracy']:.1%} on "
                       f"{len(held.pairs)} pairs (reward gap {metrics['eval/reward_gap']:+.3f})")
    return StageResult(metrics=metrics, outputs=outputs, summary=summary)


STAGE = StageSpec(AudioRewardModelOptions, run,
                  "Bradley-Terry reward model over speech (own audio encoder and trainer)")
