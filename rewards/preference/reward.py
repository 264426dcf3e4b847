"""Reward ``preference.model``: the score of a trained Bradley–Terry reward model.

The value of a row is the model's scalar logit for ``prompt + completion`` (see
:func:`rewards.preference.scoring.score_texts`), unbounded, in the reward model's own units
(differences are log-odds of preference). Details: ``{"score": value}``.

A speech reward model (a directory written by the ``audio_reward_model`` stage, its
``config.json`` saying ``"model_kind": "audio_reward_model"``) scores the row's audio instead:
the ``waveform`` and ``sample_rate`` columns (as the ``espeak_prosody`` policy hands them over) or
a ``{"array", "sample_rate"}`` completion, with the prompt as its text conditioning; a row
without audio scores ``None`` (see :func:`rewards.preference.audio_model.audio_reward`).

The model is loaded lazily, on the first batch, and once per process: instances with the same
``path`` and ``trust_remote_code`` share it (a cache keyed also on the weights' modification
time, so a retrained directory is reloaded). An instance pickles without the model, so it can
be sent to worker processes (``workers: N`` in a reward design), each loading its own copy.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from rewards.base import Reward, RewardParams, Scored

_CACHE: dict[tuple[str, bool, float], tuple[Any, Any]] = {}
_LOCK = threading.Lock()


class PreferenceModelParams(RewardParams):
    path: str
    """A trained reward model directory (``rlhf rewards train``), a ``tiny:`` preset or a hub id."""
    batch_size: int = Field(32, ge=1)
    """Texts per forward pass."""
    max_length: int = Field(512, ge=1)
    """Tokens per text; longer texts are truncated."""
    trust_remote_code: bool = False
    """Run code shipped with a hub model. Off unless you trust its author."""


def _weights_mtime(resolved: str) -> float:
    """Newest modification time of the directory's weight files (0.0 for a hub id)."""
    folder = Path(resolved)
    if not folder.is_dir():
        return 0.0
    times = [p.stat().st_mtime for p in folder.glob("*.safetensors")]
    times += [p.stat().st_mtime for p in folder.glob("*.bin")]
    return max(times, default=0.0)


def load_scorer(path: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a reward model, loaded once per process (see module docstring).

    The model is in eval mode, on the GPU when one is available."""
    from rlhf.models import load_reward_model, load_tokenizer, resolve_model_path

    resolved = resolve_model_path(path)
    key = (resolved, trust_remote_code, _weights_mtime(resolved))
    with _LOCK:
        if key not in _CACHE:
            import torch

            tokenizer = load_tokenizer(path, trust_remote_code)
            model = load_reward_model(path, trust_remote_code=trust_remote_code,
                                      tokenizer=tokenizer)
            if torch.cuda.is_available():
                model = model.to("cuda")
            _CACHE[key] = (model.eval(), tokenizer)
        return _CACHE[key]


class PreferenceModelReward(Reward):
    """Score completions with a trained text reward model (sequence classification, 1 label)."""

    name = "preference.model"
    description = "Score of a trained Bradley-Terry reward model (rlhf rewards train)"
    value_range = (-math.inf, math.inf)
    Params = PreferenceModelParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._scorer: tuple[Any, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_scorer"] = None  # never pickle the model: a worker loads its own
        return state

    def scorer(self) -> tuple[Any, Any]:
        """``(model, tokenizer)``, loaded on first use."""
        if self._scorer is None:
            p: Any = self.params
            self._scorer = load_scorer(p.path, p.trust_remote_code)
        return self._scorer

    def is_audio(self) -> bool:
        """Whether ``path`` is a speech reward model (see the module docstring)."""
        import json

        config = Path(self.params.path).expanduser() / "config.json"  # type: ignore[attr-defined]
        if not config.is_file():
            return False
        try:
            from rewards.preference.audio_model import MODEL_KIND

            return json.loads(config.read_text(encoding="utf-8")).get("model_kind") == MODEL_KIND
        except (OSError, ValueError, AttributeError):
            return False

    def score_batch(self, prompts: Sequence[Any], completions: Sequence[Any],
                    **columns: Any) -> list[Scored]:
        """One forward per ``batch_size`` rows; a missing prompt counts as empty."""
        from rewards.preference.scoring import score_texts

        if not completions:
            return []
        if self.is_audio():
            from rewards.preference.audio_model import audio_reward

            p: Any = self.params
            values = audio_reward(list(prompts), list(completions), model=p.path,
                                  batch_size=p.batch_size, **columns)
            return [Scored(v, {"score": v}) if v is not None else
                    Scored(None, {"error": "no audio in this row"}) for v in values]
        model, tokenizer = self.scorer()
        prompts = [prompts[i] if i < len(prompts) else None for i in range(len(completions))]
        p: Any = self.params
        scores = score_texts(model, tokenizer, prompts, list(completions),
                             batch_size=p.batch_size, max_length=p.max_length)
        return [Scored(s, {"score": s}) for s in scores]
