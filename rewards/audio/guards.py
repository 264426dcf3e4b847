"""Cheap audio guards: speaking rate (``audio.duration``), clipping, silence ratio.

All three read the clip at its own rate (no resampling), over 10 ms frames where frames matter.

- ``audio.duration``: speaking rate of the intended ``text`` in words per minute,
  ``wpm = words · 60 / seconds``, where ``seconds`` is the speech span (first to last frame whose
  RMS is within ``trim_db`` of the loudest frame; the whole clip with ``trim: false``). Reward 1
  inside ``[lo, hi]``; outside, ``exp(-d² / (2·width²))`` with ``d`` the distance in wpm to the
  window. Details: ``wpm``, ``seconds``, ``words``.
- ``audio.clipping``: ``clipped`` = fraction of samples with ``|x| ≥ level``; reward
  ``max(0, 1 − clipped / tolerance)``. Details: ``clipped_fraction``, ``peak``.
- ``audio.silence``: ``ratio`` = fraction of frames whose RMS is more than ``threshold_db`` below
  the loudest frame; reward 1 up to ``allowed``, then falling linearly to 0 at ratio 1:
  ``1 − max(0, ratio − allowed) / (1 − allowed)``. Details: ``silence_ratio``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from rewards.audio.clip import (AudioParams, AudioProblem, Clip, frame_rms, row_clip, unscored,
                                word_count)
from rewards.base import Reward, Scored


class AudioReward(Reward):
    """Base of the audio rewards: find and check the clip, then :meth:`score_clip`."""

    optional_columns: ClassVar[tuple[str, ...]] = ("waveform", "sample_rate", "audio")
    target_rate: ClassVar[int | None] = None
    """Resample to this rate before scoring (None: keep the clip's rate)."""

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        try:
            clip = row_clip(completion, row, self.params.max_seconds, self.target_rate)
            return self.score_clip(clip, prompt, **row)
        except AudioProblem as exc:
            return unscored(self.name, exc)

    def score_clip(self, clip: Clip, prompt: Any, **row: Any) -> Scored:
        raise NotImplementedError


def speech_span(clip: Clip, trim_db: float) -> float:
    """Seconds from the first to the last 10 ms frame within ``trim_db`` dB of the loudest."""
    rms = frame_rms(clip.wave, clip.sample_rate)
    loud = np.flatnonzero(rms >= rms.max() * 10.0 ** (-trim_db / 20.0))
    n = max(1, int(round(clip.sample_rate * 0.01)))
    first, last = int(loud[0]) * n, min(clip.wave.size, (int(loud[-1]) + 1) * n)
    return (last - first) / clip.sample_rate


class DurationParams(AudioParams):
    lo: float = Field(150.0, gt=0)
    """Lower end of the target speaking rate, words per minute."""
    hi: float = Field(190.0, gt=0)
    """Upper end of the target speaking rate, words per minute."""
    width: float = Field(40.0, gt=0)
    """Outside [lo, hi] the reward is exp(-d²/(2·width²)), d in words per minute."""
    trim: bool = True
    """Measure the speech span (leading and trailing silence left out), not the whole clip."""
    trim_db: float = Field(40.0, gt=0)
    """A frame is speech when its RMS is within this many dB of the loudest frame."""

    @model_validator(mode="after")
    def _window(self) -> "DurationParams":
        if self.hi < self.lo:
            raise ValueError(f"hi ({self.hi}) is below lo ({self.lo})")
        return self


class Duration(AudioReward):
    name = "audio.duration"
    description = "Speaking rate (words/min of the intended text) inside a window; smooth outside"
    columns = ("text",)
    Params = DurationParams

    def score_clip(self, clip: Clip, prompt: Any, **row: Any) -> Scored:
        p: Any = self.params
        words = word_count(row["text"])
        if words == 0:
            raise AudioProblem("no-words", "text: no words to time")
        if clip.truncated:  # the limit is for scoring cost; the rate needs the whole clip
            seconds = clip.seconds
        else:
            seconds = speech_span(clip, p.trim_db) if p.trim else clip.wave.size / clip.sample_rate
        wpm = words * 60.0 / seconds
        d = max(p.lo - wpm, 0.0, wpm - p.hi)
        value = math.exp(-0.5 * (d / p.width) ** 2)
        return Scored(value, {"wpm": wpm, "seconds": seconds, "words": words})

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        if not row.get("text"):
            return unscored(self.name, AudioProblem("no-text", "text: missing (the intended "
                                                    "words)"))
        return super().score_row(prompt, completion, **row)


class ClippingParams(AudioParams):
    level: float = Field(0.999, gt=0, le=1)
    """A sample with |x| at or above this counts as clipped (full scale is 1.0)."""
    tolerance: float = Field(0.01, gt=0, le=1)
    """Clipped fraction at which the reward reaches 0."""


class Clipping(AudioReward):
    name = "audio.clipping"
    description = "1 - clipped-sample fraction / tolerance (0 at or beyond the tolerance)"
    Params = ClippingParams

    def score_clip(self, clip: Clip, prompt: Any, **row: Any) -> Scored:
        p: Any = self.params
        frac = float(np.mean(np.abs(clip.wave) >= p.level))
        return Scored(max(0.0, 1.0 - frac / p.tolerance),
                      {"clipped_fraction": frac, "peak": float(np.max(np.abs(clip.wave)))})


class SilenceParams(AudioParams):
    threshold_db: float = Field(40.0, gt=0)
    """A 10 ms frame is silent when its RMS is more than this many dB below the loudest frame."""
    allowed: float = Field(0.3, ge=0, lt=1)
    """Silence ratio that costs nothing; above it the reward falls linearly to 0 at ratio 1."""


class Silence(AudioReward):
    name = "audio.silence"
    description = "Penalises a silence ratio (quiet 10 ms frames) above an allowed share"
    Params = SilenceParams

    def score_clip(self, clip: Clip, prompt: Any, **row: Any) -> Scored:
        p: Any = self.params
        rms = frame_rms(clip.wave, clip.sample_rate)
        ratio = float(np.mean(rms < rms.max() * 10.0 ** (-p.threshold_db / 20.0)))
        value = 1.0 - max(0.0, ratio - p.allowed) / (1.0 - p.allowed)
        return Scored(value, {"silence_ratio": ratio})
