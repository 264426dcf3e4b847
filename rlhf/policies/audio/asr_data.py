"""ASR data: the ``spoken_digits`` stage (a synthetic task spoken by eSpeak NG) and the reader of
audio/transcript rows shared by ``asr_finetune`` and ``asr_eval``.

``spoken_digits`` writes ``train.jsonl`` and ``eval.jsonl`` in its stage directory, rows::

    {"prompt": "clips/train/00000.wav", "audio": "clips/train/00000.wav",
     "text": "four one nine", "voice": "en-us", "rate": 170, "pitch": 50}

(audio paths relative to the JSONL file; 16-bit mono WAV at ``sample_rate`` Hz). Each utterance
is a string of ``min_digits``-``max_digits`` digits spoken as words, in a voice, speaking rate
(words/min) and pitch (eSpeak 0-100) drawn from the option lists with the stage seed. Held-out
digit strings never occur in the training file. eSpeak NG renders deterministically, so a clip
is keyed by ``(words, voice, rate, pitch, sample_rate)`` and cached on disk under
``$RLHF_CACHE_DIR/spoken_digits/``: a rerun hard-links (or copies) the cached files instead of
synthesising again.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from rlhf.errors import DataError
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CACHE_VERSION = 1
"""Bump when the rendering changes; older cached clips are then ignored."""


def read_asr_rows(path: Path, audio_column: str = "audio", text_column: str = "text"
                  ) -> list[tuple[str, str]]:
    """``(absolute audio path, transcript)`` per row of a JSONL/JSON/Parquet file; relative
    audio paths start at the file's folder. A missing field or file raises :class:`DataError`
    naming the file, line and field."""
    from rewards.score_file import resolve_audio
    from rlhf.data.readers import iter_rows

    out = []
    for location, row in iter_rows(path):
        audio, text = row.get(audio_column), row.get(text_column)
        if not isinstance(audio, str) or not audio:
            raise DataError(f"{location}: {audio_column}: missing (a WAV/FLAC path relative to "
                            "the file is needed)")
        if not isinstance(text, str):
            raise DataError(f"{location}: {text_column}: missing (the reference transcript)")
        resolved = resolve_audio(audio, Path(path).parent)
        if not Path(resolved).is_file():
            raise DataError(f"{location}: {audio_column}: audio file {resolved} not found")
        out.append((resolved, text))
    if not out:
        raise DataError(f"{path}: no rows")
    return out


class SpokenDigitsOptions(StageOptions):
    n_train: int = Field(400, ge=1)
    """Training utterances (``train.jsonl``)."""
    n_eval: int = Field(64, ge=1)
    """Held-out utterances (``eval.jsonl``), digit strings never seen in training."""
    min_digits: int = Field(3, ge=1, le=12)
    max_digits: int = Field(5, ge=1, le=12)
    voices: list[str] = Field(default_factory=lambda: ["en-us", "en", "en-us+f3", "en+m3"],
                              min_length=1)
    """eSpeak NG voices (``rlhf.audio.espeak.list_voices()``)."""
    rates: list[int] = Field(default_factory=lambda: [140, 170, 200, 230], min_length=1)
    """Speaking rates, words/min (80-450)."""
    pitches: list[int] = Field(default_factory=lambda: [40, 50, 60], min_length=1)
    """eSpeak pitches (0-100)."""
    sample_rate: int = Field(16_000, gt=0)
    """Hz of the written clips."""
    cache: bool = True
    """Reuse clips rendered before (``$RLHF_CACHE_DIR/spoken_digits``)."""

    @model_validator(mode="after")
    def _ranges(self) -> "SpokenDigitsOptions":
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits must be <= max_digits")
        if any(not 80 <= r <= 450 for r in self.rates):
            raise ValueError("rates: each 80-450 words/min")
        if any(not 0 <= p <= 100 for p in self.pitches):
            raise ValueError("pitches: each 0-100")
        n_strings = sum(10 ** k for k in range(self.min_digits, self.max_digits + 1))
        if self.n_train + self.n_eval > n_strings // 2:
            raise ValueError(f"n_train + n_eval exceed half of the {n_strings} digit strings")
        return self


def _digit_strings(opts: SpokenDigitsOptions, rng: random.Random, n: int,
                   taken: set[str]) -> list[str]:
    out = []
    while len(out) < n:
        length = rng.randint(opts.min_digits, opts.max_digits)
        digits = "".join(rng.choice("0123456789") for _ in range(length))
        if digits not in taken:
            taken.add(digits)
            out.append(digits)
    return out


def _cache_dir() -> Path:
    from rlhf.models.tiny import cache_root

    return cache_root() / "spoken_digits"


def _clip_key(words: str, voice: str, rate: int, pitch: int, sample_rate: int) -> str:
    text = f"v{CACHE_VERSION}|{words}|{voice}|{rate}|{pitch}|{sample_rate}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _render(words: str, voice: str, rate: int, pitch: int, sample_rate: int, target: Path
            ) -> None:
    from rlhf.audio.espeak import synthesize
    from rlhf.audio.features import resample
    from rlhf.audio.io import write_audio

    wave, sr = synthesize(words, voice=voice, rate=rate, pitch=pitch)
    if sr != sample_rate:
        wave = resample(wave, sr, sample_rate)
    write_audio(target, wave, sample_rate)


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def clip(words: str, voice: str, rate: int, pitch: int, sample_rate: int, target: Path,
         cache: bool) -> bool:
    """Write the clip to ``target``; True when it was rendered, False when it came from the
    cache."""
    if not cache:
        _render(words, voice, rate, pitch, sample_rate, target)
        return True
    key = _clip_key(words, voice, rate, pitch, sample_rate)
    cached = _cache_dir() / key[:2] / f"{key}.wav"
    if cached.is_file():
        _place(cached, target)
        return False
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".wav", dir=cached.parent)
    os.close(fd)
    try:
        _render(words, voice, rate, pitch, sample_rate, Path(tmp))
        os.replace(tmp, cached)  # atomic: concurrent renderers write identical bytes
    finally:
        Path(tmp).unlink(missing_ok=True)
    _place(cached, target)
    return True


def run(ctx: StageContext, opts: SpokenDigitsOptions) -> StageResult:
    from rich.progress import Progress

    from rlhf.audio.espeak import EspeakError, synthesize
    from rlhf.data import write_jsonl
    from rlhf.errors import UserError

    for voice in opts.voices:  # fail fast, before rendering hundreds of clips
        try:
            synthesize("one", voice=voice)
        except EspeakError as exc:
            raise UserError(f"stage {ctx.name!r}: voices: {exc}") from None
    rng = random.Random(ctx.seed)
    taken: set[str] = set()
    splits = {"eval": _digit_strings(opts, rng, opts.n_eval, taken),
              "train": _digit_strings(opts, rng, opts.n_train, taken)}
    rendered = reused = 0
    with Progress(transient=True) as bar:
        task = bar.add_task(f"  {ctx.name}: rendering", total=opts.n_train + opts.n_eval)
        for split, strings in splits.items():
            rows: list[dict[str, Any]] = []
            for i, digits in enumerate(strings):
                words = " ".join(DIGIT_WORDS[int(d)] for d in digits)
                voice, rate = rng.choice(opts.voices), rng.choice(opts.rates)
                pitch = rng.choice(opts.pitches)
                rel = f"clips/{split}/{i:05d}.wav"
                if clip(words, voice, rate, pitch, opts.sample_rate, ctx.stage_dir / rel,
                        opts.cache):
                    rendered += 1
                else:
                    reused += 1
                rows.append({"prompt": rel, "audio": rel, "text": words, "voice": voice,
                             "rate": rate, "pitch": pitch})
                bar.advance(task)
            write_jsonl(ctx.stage_dir / f"{split}.jsonl", rows)
    return StageResult(
        metrics={"data/n_train": opts.n_train, "data/n_eval": opts.n_eval,
                 "data/rendered": rendered, "data/cached": reused},
        outputs={"train": "train.jsonl", "eval": "eval.jsonl"},
        summary=[f"{opts.n_train} training / {opts.n_eval} held-out spoken digit strings "
                 f"({rendered} rendered, {reused} from the cache)"])


STAGE = StageSpec(SpokenDigitsOptions, run,
                  "Spoken-digit ASR task rendered by eSpeak NG (train/eval WAV + JSONL)")
