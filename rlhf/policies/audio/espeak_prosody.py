"""The eSpeak prosody TTS policy (``policy.adapter: espeak_prosody``).

A causal LM reads a sentence and writes a short sequence of **control tokens**; eSpeak NG renders
the sentence with that prosody (:func:`rlhf.audio.espeak.synthesize`, SSML). The tokens are
added to the LM's tokenizer (the embedding matrix grows to match) and sampling is restricted to
them and the end token, so even an untrained LM writes valid controls:

==================  ==========================================================================
``<rate_k>``        speaking rate ``rates[k]`` words/min (eSpeak's rate); the last one counts;
                    none: ``default_rate``
``<pitch_k>``       pitch ``pitches[k]`` (eSpeak 0-100); the last one counts; none:
                    ``default_pitch``
``<pause_i>``       a ``pause_ms`` break after word ``i`` (0-based; beyond the sentence: ignored)
``<emph_i>``        ``<emphasis>`` on word ``i`` (louder, stressed)
==================  ==========================================================================

The LM's input is ``"{sentence} <speak>"``. A rollout's ``completions`` are the control text
(``"<rate_5> <emph_2>"``); its ``extras`` hold, per completion, ``waveform`` (float32 mono at
``sample_rate`` Hz), ``sample_rate``, ``ssml`` (what eSpeak read) and ``text`` (the sentence,
the intended words for ``audio.*`` rewards; left out when the prompts' rows have a ``text``
column of their own). Log-probabilities are those of the restricted distribution (other logits
at -1e9), ``logits / temperature``, as sampled. Renders are cached per process (groups repeat
controls). ``save`` writes the LM with the grown tokenizer; a saved policy loads again with the
same adapter (tokens already present are not added twice).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhf.policies.base import Rollout
from rlhf.policies.text import TextPolicy

SPEAK = "<speak>"
"""Token that ends the LM's input (the sentence) and starts the controls."""


class ProsodyOptions(BaseModel):
    """``policy.adapter_options`` of ``espeak_prosody``."""

    model_config = ConfigDict(extra="forbid")

    voice: str = "en-us"
    """eSpeak NG voice (``rlhf.audio.espeak.list_voices()``), e.g. ``en-us``, ``en+f3``."""
    sample_rate: int = Field(16_000, gt=0)
    """Rate of the rendered waveforms, Hz (eSpeak renders 22050 Hz; resampled)."""
    rates: list[int] = Field(default_factory=lambda: [100, 130, 160, 190, 220, 250, 280, 310,
                                                        340])
    """eSpeak speaking rates (words/min, 80-450) of ``<rate_0>``, ``<rate_1>``, ..."""
    default_rate: int = Field(175, ge=80, le=450)
    pitches: list[int] = Field(default_factory=lambda: [20, 35, 50, 65, 80])
    """eSpeak pitches (0-100) of ``<pitch_0>``, ..."""
    default_pitch: int = Field(50, ge=0, le=100)
    max_words: int = Field(12, ge=0, le=64)
    """Word slots of ``<pause_i>`` and ``<emph_i>`` (0: no pause or emphasis tokens)."""
    pause_ms: int = Field(250, ge=0, le=5000)
    """Length of a ``<pause_i>`` break, milliseconds."""
    render_cache: int = Field(2048, ge=0)
    """Rendered waveforms kept per process (0: none)."""

    @model_validator(mode="after")
    def _ranges(self) -> "ProsodyOptions":
        if not self.rates or any(not 80 <= r <= 450 for r in self.rates):
            raise ValueError("rates: give at least one rate, each 80-450 words/min")
        if any(not 0 <= p <= 100 for p in self.pitches):
            raise ValueError("pitches: each 0-100")
        return self

    def control_tokens(self) -> list[str]:
        return ([f"<rate_{k}>" for k in range(len(self.rates))]
                + [f"<pitch_{k}>" for k in range(len(self.pitches))]
                + [f"<pause_{i}>" for i in range(self.max_words)]
                + [f"<emph_{i}>" for i in range(self.max_words)])


@dataclass
class Prosody:
    """Parsed controls: what eSpeak is asked for."""

    rate: int
    pitch: int
    pauses: set[int] = field(default_factory=set)
    emphasis: set[int] = field(default_factory=set)


def parse_controls(tokens: list[str], o: ProsodyOptions) -> Prosody:
    """Control token strings → :class:`Prosody` (unknown strings are ignored)."""
    plan = Prosody(o.default_rate, o.default_pitch)
    for tok in tokens:
        kind, _, idx = tok.strip("<>").rpartition("_")
        if not idx.isdigit():
            continue
        i = int(idx)
        if kind == "rate" and i < len(o.rates):
            plan.rate = o.rates[i]
        elif kind == "pitch" and i < len(o.pitches):
            plan.pitch = o.pitches[i]
        elif kind == "pause":
            plan.pauses.add(i)
        elif kind == "emph":
            plan.emphasis.add(i)
    return plan


def to_ssml(sentence: str, plan: Prosody, pause_ms: int) -> str:
    """The sentence as SSML with the plan's emphasis and breaks (rate and pitch are set as
    eSpeak parameters, not tags)."""
    words = sentence.split()
    parts = []
    for i, word in enumerate(words):
        w = escape(word)
        parts.append(f"<emphasis>{w}</emphasis>" if i in plan.emphasis else w)
        if i in plan.pauses and i < len(words) - 1 and pause_ms:
            parts.append(f'<break time="{pause_ms}ms"/>')
    return "<speak>" + " ".join(parts) + "</speak>"


class EspeakProsodyPolicy(TextPolicy):
    """A causal LM that writes prosody controls, spoken by eSpeak NG (module docstring)."""

    Options = ProsodyOptions

    def __init__(self, spec: str, options: Any, need_reference: bool) -> None:
        self.prosody = ProsodyOptions(**options.adapter_options)
        self._renders: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        super().__init__(spec, options, need_reference)

    # -- hooks of TextPolicy ---------------------------------------------------------------------
    def _prepare(self, model: Any) -> Any:
        tok = self.tokenizer
        controls = self.prosody.control_tokens()
        tok.add_tokens([t for t in [SPEAK, *controls] if t not in tok.get_vocab()])
        if model.get_input_embeddings().weight.shape[0] < len(tok):
            model.resize_token_embeddings(len(tok), mean_resizing=False)
        vocab = tok.get_vocab()
        self.control_ids = [vocab[t] for t in controls]
        self.id_to_control = {vocab[t]: t for t in controls}
        size = model.get_output_embeddings().weight.shape[0]
        allowed = torch.zeros(size, dtype=torch.bool)
        allowed[self.control_ids] = True
        allowed[int(tok.eos_token_id)] = True
        self.allowed = allowed
        return model

    def _allowed(self, length: int, start: int = 0) -> torch.Tensor:
        return self.allowed.expand(length, -1)

    def prompt_text(self, prompt: Any) -> str:
        return f"{prompt} {SPEAK}"

    # -- sampling and rendering ------------------------------------------------------------------
    def controls_of(self, ids: list[int]) -> list[str]:
        return [self.id_to_control[i] for i in ids if i in self.id_to_control]

    def render(self, sentence: str, plan: Prosody) -> tuple[np.ndarray, str]:
        """``(waveform at sample_rate, ssml)`` of one sentence and plan (cached)."""
        from rlhf.audio.espeak import synthesize
        from rlhf.audio.features import resample

        o = self.prosody
        ssml = to_ssml(sentence, plan, o.pause_ms)
        key = (ssml, plan.rate, plan.pitch, o.voice, o.sample_rate)
        wave = self._renders.get(key)
        if wave is None:
            raw, sr = synthesize(ssml, voice=o.voice, rate=plan.rate, pitch=plan.pitch,
                                 ssml=True)
            wave = resample(raw, sr, o.sample_rate) if sr != o.sample_rate else raw
            if o.render_cache:
                self._renders[key] = wave
                while len(self._renders) > o.render_cache:
                    self._renders.popitem(last=False)
        return wave, ssml

    @torch.no_grad()
    def generate(self, prompts: list[Any], n: int, columns: dict[str, list[Any]] | None = None
                 ) -> Rollout:
        rollout = super().generate(prompts, n, columns)
        texts, waves, ssmls = [], [], []
        for prompt, ids in zip(rollout.prompts, rollout.token_lists(), strict=True):
            controls = self.controls_of(ids)
            wave, ssml = self.render(str(prompt), parse_controls(controls, self.prosody))
            texts.append(" ".join(controls))
            waves.append(wave)
            ssmls.append(ssml)
        rollout.completions = texts
        rate = self.prosody.sample_rate
        rollout.extras = {"waveform": waves, "sample_rate": [rate] * len(waves), "ssml": ssmls}
        if "text" not in rollout.columns:
            rollout.extras["text"] = [str(p) for p in rollout.prompts]
        return rollout
