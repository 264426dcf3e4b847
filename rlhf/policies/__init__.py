"""Policy adapters: what the RL engine generates with and trains. The engine knows nothing of
modality: it builds the adapter named by ``policy.adapter`` through :data:`POLICIES` and uses
only the :class:`rlhf.policies.base.PolicyAdapter` protocol (``generate`` → a
:class:`~rlhf.policies.base.Rollout`, ``log_probs``, ``entropy``, ``save``, plus ``model``,
``pad_token_id`` and ``options.sampling``).

Registered adapters (lazy ``module:attr`` targets, as in :mod:`rlhf.registry`):

- ``text`` (default): any causal LM; completions are text.
- ``espeak_prosody``: a causal LM emits prosody control tokens for an input sentence and eSpeak NG
  renders them; completions are the control text, ``extras`` carry ``waveform``,
  ``sample_rate`` and ``text`` for the audio rewards (:mod:`rlhf.policies.audio`).
- ``asr_whisper``: a Whisper encoder-decoder transcribes each prompt row's audio; completions are
  transcripts, ``reference`` comes from the rows' ``text`` (:mod:`rlhf.policies.audio.asr_whisper`).
- ``asr_audio_llm``: an audio-LLM (audio encoder + projector + causal LM, e.g. Qwen2-Audio)
  reads each row's clip through its processor and writes the transcript
  (:mod:`rlhf.policies.audio.asr_audio_llm`).
- ``codec_tts``: a causal LM whose vocabulary holds audio codec tokens after the text tokens
  writes codes that a codec (EnCodec, DAC, Mimi) decodes; ``extras`` carry ``waveform``,
  ``sample_rate``, ``codes`` and ``text`` (:mod:`rlhf.policies.audio.codec_tts`).

An adapter class takes ``(model_spec, policy_options, need_reference)``; its ``Options`` class
attribute (a pydantic model), if any, validates ``policy.adapter_options``. Registry meta
``critic=True`` marks adapters whose token ids a PPO critic (a copy of the starting model) can
read. A ``module:Class`` path works for users' own adapters (assumed to have a critic).
Other sub-packages (``emphasis``, ``rerank``) hold text-policy tasks, not adapters.
"""

from __future__ import annotations

from typing import Any

from rlhf.errors import RegistryError
from rlhf.registry import Registry

POLICIES: Registry[Any] = Registry("policy adapter")
POLICIES.register("text", "rlhf.policies.text:TextPolicy",
                  "Causal LM, text completions (LoRA optional)", critic=True)
POLICIES.register("espeak_prosody", "rlhf.policies.audio.espeak_prosody:EspeakProsodyPolicy",
                  "Causal LM emitting prosody control tokens, rendered as speech by eSpeak NG",
                  critic=False)
POLICIES.register("asr_whisper", "rlhf.policies.audio.asr_whisper:AsrWhisperPolicy",
                  "Whisper encoder-decoder ASR: audio prompt in, transcript out", critic=False)
POLICIES.register("asr_audio_llm", "rlhf.policies.audio.asr_audio_llm:AsrAudioLLMPolicy",
                  "Audio-LLM ASR (Qwen2-Audio architecture): audio through the processor, "
                  "transcript out", critic=False)
POLICIES.register("codec_tts", "rlhf.policies.audio.codec_tts:CodecTTSPolicy",
                  "Causal LM writing audio codec tokens (EnCodec/DAC/Mimi), decoded to speech",
                  critic=False)


def check_adapter(name: str, options: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``name`` is an adapter and ``options`` suit it."""
    if not POLICIES.is_known(name):
        raise ValueError(f"unknown policy adapter {name!r}; known: {', '.join(POLICIES.names())}")
    try:
        cls = POLICIES.get(name)
    except RegistryError as exc:
        raise ValueError(str(exc)) from None
    schema = getattr(cls, "Options", None)
    if schema is None:
        if options:
            raise ValueError(f"policy adapter {name!r} takes no adapter_options")
        return
    schema(**options)


def adapter_has_critic(name: str) -> bool:
    """Whether PPO's critic works with this adapter (unregistered paths: assumed yes)."""
    return name not in POLICIES or bool(POLICIES.entry(name).meta.get("critic", False))


def build_policy(spec: str, options: Any, need_reference: bool) -> Any:
    """The adapter named by ``options.adapter``, built for the model ``spec``."""
    return POLICIES.get(options.adapter)(spec, options, need_reference)
