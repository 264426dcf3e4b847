"""A tiny byte-level BPE tokenizer trained offline on the bundled English corpus.

The tiny presets (``tiny:lm``, ``tiny:reward``) need a tokenizer that exists without any download.
:func:`train_tokenizer` trains one with the ``tokenizers`` library from
``rlhf/models/corpus/english.txt`` and wraps it as a ``transformers.PreTrainedTokenizerFast``.

Properties callers can rely on:

- Byte-level: every string round-trips, ``decode(encode(text)) == text`` (no BOS/EOS are added by
  ``encode``; no clean-up of spaces on decode).
- Special tokens, in id order: ``<|pad|>`` = 0, ``<|bos|>`` = 1, ``<|eos|>`` = 2, ``<|unk|>`` = 3,
  then the chat role markers ``<|system|>``, ``<|user|>``, ``<|assistant|>``.
- ``padding_side`` is ``"right"``; set ``tokenizer.padding_side = "left"`` yourself for batched
  generation.
- Chat template (:data:`CHAT_TEMPLATE`): each message renders as ``<|role|>\\n{content}<|eos|>``;
  ``add_generation_prompt=True`` appends ``<|assistant|>\\n``. Assistant content is wrapped in
  ``{% generation %}`` so ``return_assistant_tokens_mask`` works.
- Training is deterministic: the same corpus and ``vocab_size`` give a byte-identical
  ``tokenizer.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

CORPUS_PATH = Path(__file__).parent / "corpus" / "english.txt"
"""The bundled plain-English training corpus (one sentence or dialogue line per line)."""

PAD, BOS, EOS, UNK = "<|pad|>", "<|bos|>", "<|eos|>", "<|unk|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, *ROLE_TOKENS)
"""All special tokens, in the order of their ids (0, 1, 2, ...)."""

DEFAULT_VOCAB_SIZE = 1024
MODEL_MAX_LENGTH = 256
"""Longest sequence (tokens) the tiny models accept; equals their ``max_position_embeddings``."""

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% else %}"
    "{{ message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
"""Jinja chat template; roles ``system``, ``user``, ``assistant``.

``[{"role": "user", "content": "Hi"}]`` with ``add_generation_prompt=True`` renders as
``"<|user|>\\nHi<|eos|><|assistant|>\\n"``.
"""


def corpus_bytes() -> bytes:
    """The raw bytes of the bundled corpus (hashed into the tiny-preset cache key)."""
    return CORPUS_PATH.read_bytes()


def corpus_lines() -> list[str]:
    """The non-empty lines of the bundled corpus, without their newlines."""
    return [line for line in corpus_bytes().decode("utf-8").splitlines() if line.strip()]


def train_tokenizer(vocab_size: int = DEFAULT_VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE tokenizer on the bundled corpus and wrap it for ``transformers``.

    Args:
        vocab_size: the target vocabulary size, special tokens and the 256 byte symbols included.
            The result can be smaller when the corpus runs out of pairs to merge; use
            ``len(tokenizer)`` for the embedding size.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``bos/eos/pad/unk`` set, right padding, the chat
        template, and ``model_max_length`` = :data:`MODEL_MAX_LENGTH`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)}, got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=list(ROLE_TOKENS),
        padding_side="right",
        truncation_side="right",
        model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )
