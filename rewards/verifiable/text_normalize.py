"""Text normalisers applied to reference and hypothesis before WER/CER (``asr.wer``, ``asr.cer``).

One table, :data:`NORMALIZERS`, of name -> ``str -> str`` function:

- ``none``: the text unchanged (WER still splits words on whitespace; CER counts every
  character, leading and trailing whitespace included).
- ``basic``: lowercase (``str.lower``), delete every character of a Unicode punctuation category
  (``Pc Pd Ps Pe Pi Pf Po``: ``. , ! ? ' " - ( ) « »`` ...; symbols such as ``$ + = %`` are
  categories ``S*`` and are kept), then fold whitespace (strip, and collapse each run of
  Unicode whitespace to one space). Punctuation is deleted, not replaced by a space, so
  ``"don't"`` becomes ``"dont"`` and ``"well-known"`` becomes ``"wellknown"`` (our choice).
- ``whisper_en``: Whisper's English normaliser from ``transformers``
  (``transformers.models.whisper.english_normalizer.EnglishTextNormalizer``), built with an
  **empty** British-to-American spelling mapping ``{}``: the mapping file (``english.json``)
  ships with the Whisper tokenizer, not with the library, and is not available offline. So
  ``"colour"`` stays ``"colour"``; numbers, contractions, titles and fillers are still
  standardised (``"Mr."`` -> ``"mister"``, ``"twenty-five"`` -> ``"25"``). Imported lazily, on
  first use; whitespace is folded after it.
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from collections.abc import Callable

PUNCTUATION_CATEGORIES = frozenset({"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"})


@functools.cache
def punctuation_table() -> dict[int, None]:
    """``str.translate`` table deleting every Unicode punctuation code point (built once, ~0.2 s;
    about 800 code points with this Python's Unicode database)."""
    return dict.fromkeys(c for c in range(sys.maxunicode + 1)
                         if unicodedata.category(chr(c)) in PUNCTUATION_CATEGORIES)


ASCII_PUNCTUATION = bytes(c for c in range(128)
                          if unicodedata.category(chr(c)) in PUNCTUATION_CATEGORIES)
"""The ASCII punctuation characters: ``!"#%&'()*,-./:;?@[\\]_{}`` (not ``$+<=>^`|~``)."""


def delete_punctuation(text: str) -> str:
    """``text`` without its Unicode punctuation; ASCII text takes a bytes fast path (~4x)."""
    if text.isascii():
        return text.encode("ascii").translate(None, ASCII_PUNCTUATION).decode("ascii")
    return text.translate(punctuation_table())


def basic_words(text: str) -> list[str]:
    """The words of :func:`normalize_basic` (``normalize_basic(text).split()``), without
    building the joined string."""
    return delete_punctuation(text.lower()).split()


def fold_whitespace(text: str) -> str:
    """Strip, and collapse each run of (Unicode) whitespace to one space."""
    return " ".join(text.split())


def normalize_none(text: str) -> str:
    """The text unchanged."""
    return text


def normalize_basic(text: str) -> str:
    """Lowercase, delete Unicode punctuation, fold whitespace."""
    return " ".join(delete_punctuation(text.lower()).split())


@functools.cache
def _whisper_english() -> Callable[[str], str]:
    try:
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer
    except ImportError as exc:  # pragma: no cover - transformers is a core dependency
        raise ImportError("normalizer 'whisper_en' needs the 'transformers' package") from exc
    return EnglishTextNormalizer({})  # empty spelling mapping: english.json is not shipped


def normalize_whisper_en(text: str) -> str:
    """Whisper's English normaliser (empty spelling mapping), then whitespace folded."""
    return fold_whitespace(_whisper_english()(text))


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "none": normalize_none,
    "basic": normalize_basic,
    "whisper_en": normalize_whisper_en,
}


def get_normalizer(name: str) -> Callable[[str], str]:
    """The normaliser called ``name`` (a key of :data:`NORMALIZERS`)."""
    try:
        return NORMALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown normalizer {name!r}; valid: {', '.join(NORMALIZERS)}") from None
