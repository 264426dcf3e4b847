"""The ``tiny:whisper`` preset: a Whisper-architecture encoder-decoder for offline ASR tests.

A ``transformers.WhisperForConditionalGeneration`` a few hundred kilobytes in size, initialised
from a fixed seed, with

- a **word-level tokenizer** over the spoken-digit vocabulary (:data:`WORDS`): special tokens
  ``<|pad|>`` = 0, ``<|startoftranscript|>`` = 1 (the decoder start), ``<|endoftext|>`` = 2
  (end of transcript), ``<|unk|>`` = 3, then the words; text is lower-cased, punctuation
  becomes a space, words split on whitespace, and decoding joins words with single spaces;
- a ``WhisperFeatureExtractor`` (``PRESET_CONFIGS["whisper"]["features"]`` in
  :mod:`rlhf.models.tiny`, so the preset hash covers it) with 40 log-mel bins at 16 kHz, hop 20 ms,
  every clip padded or cut to 4 seconds (``[40, 200]`` features per clip); the
  encoder's ``max_source_positions`` is half the frame count (Whisper's stride-2 convolution).

Real users pass a hub id or local path of a Whisper checkpoint instead (the same loading code:
``AutoTokenizer``, ``WhisperFeatureExtractor``, ``WhisperForConditionalGeneration``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh")
"""The words of the tiny tokenizer (English digit names; "oh" is a spoken zero)."""
PAD, START, END, UNK = "<|pad|>", "<|startoftranscript|>", "<|endoftext|>", "<|unk|>"


def build_tokenizer(specials: tuple[str, ...] = (PAD, START, END, UNK),
                    **special_tokens: Any) -> Any:
    """The word-level tokenizer (a ``PreTrainedTokenizerFast``; deterministic): ids 0.. are
    ``specials``, then :data:`WORDS`. ``special_tokens`` are the tokenizer's keyword arguments
    naming them (default: Whisper's ``pad_token``, ``bos_token``, ``eos_token``, ``unk_token``,
    right padding); ``tiny:audio-llm`` passes its own set."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate((*specials, *WORDS))}
    core = Tokenizer(WordLevel(vocab, unk_token=UNK))
    core.normalizer = normalizers.Sequence([normalizers.Lowercase(),
                                            normalizers.Replace(Regex(r"[^\w\s]"), " ")])
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    kwargs = special_tokens or {"pad_token": PAD, "bos_token": START, "eos_token": END,
                                "unk_token": UNK, "padding_side": "right"}
    return PreTrainedTokenizerFast(tokenizer_object=core, **kwargs)


def build_feature_extractor(f: dict[str, int]) -> Any:
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=f["n_mels"], sampling_rate=f["sample_rate"],
                                   hop_length=f["hop"], chunk_length=f["chunk_s"],
                                   n_fft=f["n_fft"], padding_value=0.0)


def build(out_dir: Path, seed: int, whisper: dict[str, Any], features: dict[str, int]) -> None:
    """Write model, tokenizer and feature extractor of the preset to ``out_dir``."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    tokenizer = build_tokenizer()
    extractor = build_feature_extractor(features)
    frames = features["chunk_s"] * features["sample_rate"] // features["hop"]
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=features["n_mels"],
        max_source_positions=frames // 2,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.bos_token_id,
        begin_suppress_tokens=None, suppress_tokens=None, **whisper)
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(config).to(torch.float32).eval()
    gen = model.generation_config
    gen.decoder_start_token_id = tokenizer.bos_token_id
    gen.bos_token_id, gen.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    extractor.save_pretrained(out_dir)
