"""The ``tiny:audio-llm`` preset: a Qwen2-Audio-architecture audio-LLM for offline ASR tests.

A ``transformers.Qwen2AudioForConditionalGeneration`` (a Whisper-style audio encoder, a linear
projector and a Qwen2 decoder-only LM, about 170k parameters) initialised from a fixed seed,
saved with its processor (``Qwen2AudioProcessor`` = ``WhisperFeatureExtractor`` + tokenizer):

- the **tokenizer** is the spoken-digit word tokenizer of :mod:`rlhf.models.tiny_whisper` with
  the special tokens the processor needs: ``<|pad|>`` = 0, ``<|endoftext|>`` = 1 (end of
  transcript), ``<|unk|>`` = 2, ``<|audio_bos|>`` = 3, ``<|audio_eos|>`` = 4, ``<|AUDIO|>`` = 5
  (the audio placeholder), then the words; prompts are left-padded;
- the **feature extractor** (``PRESET_CONFIGS["audio-llm"]["features"]`` in
  :mod:`rlhf.models.tiny`): 40 log-mel bins at 16 kHz, hop 20 ms, every clip padded or cut to
  3 s (five digits at 140 words/min take about 2.5 s), so ``input_features`` are ``[40, 150]``
  with a ``feature_attention_mask`` [150] over the frames of the clip;
- the **audio encoder** reads exactly ``2 × max_source_positions`` frames (its stride-2
  convolution, then a stride-2 average pool): ``max_source_positions`` = 75, and a clip of
  ``L`` unpadded frames becomes ``((L - 1) // 2 + 1 - 2) // 2 + 1`` audio embeddings (37 for a
  full 3 s clip). The processor expands the one ``<|AUDIO|>`` of the prompt text into that
  many placeholders, which the model overwrites with the projected audio embeddings.

Real users pass a hub id or local path (e.g. ``Qwen/Qwen2-Audio-7B-Instruct``) instead; the
same loading code reads both (``AutoProcessor``, ``AutoModelForMultimodalLM``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlhf.models import tiny_whisper

PAD, END, UNK = "<|pad|>", "<|endoftext|>", "<|unk|>"
AUDIO_BOS, AUDIO_EOS, AUDIO = "<|audio_bos|>", "<|audio_eos|>", "<|AUDIO|>"
PROMPT = AUDIO_BOS + AUDIO + AUDIO_EOS
"""The default prompt text of the preset: the clip between its delimiters, no instruction."""


def build_tokenizer() -> Any:
    """The word-level tokenizer with the processor's audio tokens (deterministic)."""
    return tiny_whisper.build_tokenizer(
        (PAD, END, UNK, AUDIO_BOS, AUDIO_EOS, AUDIO), pad_token=PAD, eos_token=END,
        unk_token=UNK, padding_side="left",
        extra_special_tokens={"audio_token": AUDIO, "audio_bos_token": AUDIO_BOS,
                              "audio_eos_token": AUDIO_EOS})


def build(out_dir: Path, seed: int, encoder: dict[str, Any], text: dict[str, Any],
          features: dict[str, int]) -> None:
    """Write model, tokenizer and processor of the preset to ``out_dir``."""
    import torch
    from transformers import (Qwen2AudioConfig, Qwen2AudioForConditionalGeneration,
                              Qwen2AudioProcessor)

    tokenizer = build_tokenizer()
    processor = Qwen2AudioProcessor(
        feature_extractor=tiny_whisper.build_feature_extractor(features), tokenizer=tokenizer)
    frames = features["chunk_s"] * features["sample_rate"] // features["hop"]
    end = tokenizer.eos_token_id
    config = Qwen2AudioConfig(
        audio_config={"model_type": "qwen2_audio_encoder", "num_mel_bins": features["n_mels"],
                      "max_source_positions": frames // 2, **encoder},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer),
                     "pad_token_id": tokenizer.pad_token_id, "eos_token_id": end,
                     "bos_token_id": None, **text},
        audio_token_index=tokenizer.convert_tokens_to_ids(AUDIO),
        tie_word_embeddings=bool(text.get("tie_word_embeddings", False)))
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(seed)
        model = Qwen2AudioForConditionalGeneration(config).to(torch.float32).eval()
    gen = model.generation_config
    gen.eos_token_id, gen.pad_token_id, gen.bos_token_id = end, tokenizer.pad_token_id, None
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
