"""``audio.intelligibility``: does the waveform say the intended ``text``?

**pocketsphinx** (default, offline; the pip package ships a US-English acoustic model and
CMUdict). Free decoding of synthetic speech with it is poor (a clear eSpeak sentence comes back
as unrelated words), so the score is a *goodness of pronunciation* of the intended sentence:

1. constrained decoding: forced alignment of the clip to the intended words
   (``Decoder.set_align_text``, optional silences between words, wide beam ``beam``). Audio that
   does not say the sentence (noise, time-reversed speech, another sentence) fails to align:
   value 0, ``details.aligned = false``;
2. a free phone loop (``allphone`` search, uniform: no phone language model) over the same audio:
   about the best the acoustic model can explain the clip with any phone sequence (with the
   shipped phone bigram instead, fast speech scored *above* its loop, gop > 0);
3. ``gop`` = (acoustic log-likelihood of the alignment − that of the phone loop) / frames, in
   nats per 10 ms frame (≤ 0 up to search noise; pocketsphinx keeps senone scores right-shifted
   by 10 bits, which we undo). Value ``exp(gop / tau)``, clipped to [0, 1]: 1 = the intended
   words explain the audio as well as anything can.

Measured on the committed fixtures (``tests/fixtures/speech``): clean eSpeak speech (three
voices, 140-320 words/min) gives gop -0.6 to -1.7, values 0.43-0.74 with ``tau = 2``; noise,
time-reversed speech and a wrong sentence do not align: 0.

Words must be in CMUdict (case-insensitive; punctuation is stripped). A sentence with a word
outside it (digits, rare names) is not scored (``None`` with the missing words in the error);
spell numbers out. Audio is resampled to 16 kHz.

**whisper** (``backend: whisper`` with ``model:`` a hub id or local path): transformers'
Whisper transcribes the clip and the value is ``max(0, 1 − WER)`` against ``text`` (basic
normaliser). Details: ``transcript``, ``wer``.

Decoders and models load lazily, once per process (a pool worker loads its own), and results are
cached per process by (waveform hash, text, parameters): re-scoring the same clip is free.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from rewards.audio.clip import AudioProblem, Clip
from rewards.audio.guards import AudioParams, AudioReward
from rewards.base import Scored

SAMPLE_RATE = 16_000
SENSCR_SHIFT = 10
"""pocketsphinx stores senone (acoustic) scores right-shifted by this many bits."""
_LOCK = threading.Lock()
_DECODERS: dict[tuple[Any, ...], Any] = {}
_WHISPER: dict[str, tuple[Any, Any, Any]] = {}
_CACHE: OrderedDict[str, dict[str, Any]] = OrderedDict()


class IntelligibilityParams(AudioParams):
    backend: Literal["pocketsphinx", "whisper"] = "pocketsphinx"
    """pocketsphinx: forced alignment vs a phone loop (offline); whisper: 1 - WER of a
    transcript (needs ``model``)."""
    model: str | None = None
    """Whisper model: hub id or local path (backend whisper)."""
    tau: float = Field(2.0, gt=0)
    """pocketsphinx: value = exp(gop / tau), gop in nats per frame."""
    beam: float = Field(1e-120, gt=0, lt=1)
    """pocketsphinx: beam of the forced alignment. Narrower beams prune the path of clean eSpeak
    speech too (1e-100 fails on a fixture), much wider ones (1e-180) align a wrong sentence."""
    cache_size: int = Field(4096, ge=0)
    """Results kept per process, keyed by waveform hash and text (0: no cache)."""

    @model_validator(mode="after")
    def _model_for_whisper(self) -> "IntelligibilityParams":
        if self.backend == "whisper" and not self.model:
            raise ValueError("backend whisper needs model: a hub id or a local path")
        return self


def align_words(text: str) -> list[str]:
    """The intended text as CMUdict lookup keys: lowercase, punctuation stripped."""
    return [w for w in (re.sub(r"[^a-z0-9']", "", t.lower()).strip("'")
                        for t in str(text).split()) if w]


def _decoders(beam: float) -> tuple[Any, Any]:
    """``(aligner, phone loop)``, built once per process and beam."""
    key = ("ps", beam)
    with _LOCK:
        if key not in _DECODERS:
            from pocketsphinx import Decoder

            aligner = Decoder(samprate=SAMPLE_RATE, lm=None, loglevel="FATAL", bestpath=False,
                              beam=beam, wbeam=beam * 1e20, pbeam=beam)
            phones = Decoder(samprate=SAMPLE_RATE, lm=None, loglevel="FATAL", bestpath=False)
            phones.add_allphone_file("loop", None)  # no phone LM: every phone sequence equal
            phones.activate_search("loop")
            _DECODERS[key] = (aligner, phones)
        return _DECODERS[key]


def _pcm(wave: np.ndarray) -> bytes:
    return (np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _decode(decoder: Any, pcm: bytes) -> tuple[float | None, int]:
    """Acoustic log-likelihood (nats) of the best path, or None when none was found; frames.

    The front end is reset first: its noise estimate (``remove_noise``) and cepstral mean carry
    over from one utterance to the next, which would make a clip's score depend on the clips
    scored before it in this process."""
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    if decoder.hyp() is None:
        return None, decoder.n_frames()
    # Segment.ascore is exp(score in log base 1.0001); ln() gives back the (shifted) score
    total = sum(math.log(max(s.ascore, 1e-300)) for s in decoder.seg())
    return total * (1 << SENSCR_SHIFT), decoder.n_frames()


def pocketsphinx_gop(wave: np.ndarray, words: list[str], beam: float) -> dict[str, Any]:
    """Goodness of pronunciation of ``words`` in a 16 kHz clip (module docstring)."""
    aligner, phones = _decoders(beam)
    with _LOCK:  # a decoder is not thread-safe
        missing = [w for w in dict.fromkeys(words) if aligner.lookup_word(w) is None]
        if missing:
            raise AudioProblem("oov", "words not in the pocketsphinx dictionary: "
                               + ", ".join(missing))
        pcm = _pcm(wave)
        aligner.set_align_text(" ".join(words))
        aligned, frames = _decode(aligner, pcm)
        if aligned is None:
            return {"aligned": False, "gop": None, "frames": frames}
        free, _ = _decode(phones, pcm)
    gop = (aligned - (free if free is not None else aligned)) / max(frames, 1)
    return {"aligned": True, "gop": gop, "frames": frames}


def _whisper(model_id: str) -> tuple[Any, Any, Any]:
    with _LOCK:
        if model_id not in _WHISPER:
            from transformers import (AutoTokenizer, WhisperFeatureExtractor,
                                      WhisperForConditionalGeneration)

            from rlhf.models import resolve_model_path

            path = resolve_model_path(model_id)
            model = WhisperForConditionalGeneration.from_pretrained(path).eval()
            _WHISPER[model_id] = (model, WhisperFeatureExtractor.from_pretrained(path),
                                  AutoTokenizer.from_pretrained(path))
        return _WHISPER[model_id]


def whisper_transcribe(wave: np.ndarray, model_id: str, max_new_tokens: int = 64) -> str:
    """Greedy Whisper transcript of a 16 kHz clip."""
    import torch

    model, features, tokenizer = _whisper(model_id)
    inputs = features(wave, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    limit = min(max_new_tokens, int(model.config.max_target_positions) // 2)
    with torch.no_grad():
        ids = model.generate(inputs.input_features, max_new_tokens=limit, do_sample=False)
    return tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip()


class Intelligibility(AudioReward):
    name = "audio.intelligibility"
    description = ("Intended text said? pocketsphinx forced alignment vs phone loop per frame "
                   "(offline), or 1 - WER of a Whisper transcript")
    columns = ("text",)
    Params = IntelligibilityParams
    target_rate: ClassVar[int | None] = SAMPLE_RATE

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        from rewards.audio.clip import unscored

        if not row.get("text"):
            return unscored(self.name, AudioProblem("no-text", "text: missing (the intended "
                                                    "words)"))
        return super().score_row(prompt, completion, **row)

    def score_clip(self, clip: Clip, prompt: Any, **row: Any) -> Scored:
        p: Any = self.params
        text = str(row["text"])
        key = clip.digest(text, p.backend, p.model, p.tau, p.beam)
        with _LOCK:
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
        if hit is None:
            hit = self._compute(clip, text)
            if p.cache_size:
                with _LOCK:
                    _CACHE[key] = hit
                    while len(_CACHE) > p.cache_size:
                        _CACHE.popitem(last=False)
        return Scored(hit["value"], {k: v for k, v in hit.items() if k != "value"})

    def _compute(self, clip: Clip, text: str) -> dict[str, Any]:
        p: Any = self.params
        if p.backend == "whisper":
            from rewards.verifiable.asr import WordErrorRate

            transcript = whisper_transcribe(clip.wave, p.model)
            wer = WordErrorRate().score_row(None, transcript, reference=text).details["wer"]
            return {"value": max(0.0, 1.0 - wer), "transcript": transcript, "wer": wer}
        words = align_words(text)
        if not words:
            raise AudioProblem("no-words", "text: no words to align")
        out = pocketsphinx_gop(clip.wave, words, p.beam)
        value = 0.0 if out["gop"] is None else min(1.0, math.exp(out["gop"] / p.tau))
        return {"value": value, **out}
