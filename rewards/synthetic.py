"""The quickstart's synthetic task: a sentiment lexicon with a known ground-truth preference.

Completions are short sequences of words; the ground-truth reward of a completion is
``(#positive words - #negative words) / #words`` in ``[-1, 1]`` (0 for an empty completion).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

POSITIVE = ("good", "great", "happy", "bright", "kind", "warm", "calm", "joy", "love", "nice",
            "gentle", "lovely")
NEGATIVE = ("bad", "sad", "dark", "cold", "angry", "pain", "fear", "ugly", "cruel", "dull",
            "awful", "grim")
NEUTRAL = ("the", "a", "cat", "dog", "river", "tree", "house", "day", "walk", "see", "sky", "road",
           "book", "city", "rain", "song", "garden", "window", "friend", "morning")
TOPICS = ("weather", "sea", "forest", "town", "music", "school", "food", "travel")

_WORD = re.compile(r"[a-z]+")
_POS, _NEG = frozenset(POSITIVE), frozenset(NEGATIVE)


def sentiment_score(text: str) -> float:
    """(positive - negative) / words over lowercase alphabetic words; 0.0 for no words."""
    words = _WORD.findall(text.lower())
    if not words:
        return 0.0
    pos = sum(w in _POS for w in words)
    neg = sum(w in _NEG for w in words)
    return (pos - neg) / len(words)


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):  # chat messages: score the assistant's text
        return " ".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def sentiment_reward(prompts: Sequence[Any], completions: Sequence[Any],
                     **columns: Any) -> list[float | None]:
    """Reward contract wrapper around :func:`sentiment_score`."""
    return [sentiment_score(_text(c)) for c in completions]
