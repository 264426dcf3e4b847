"""The quickstart's synthetic task: a sentiment lexicon with a known ground-truth preference.

Completions are short sequences of words; the ground-truth reward of a completion is
``(#positive words - #negative words) / #words`` in ``[-1, 1]`` (0 for an empty completion).
"""

from __future__ import annotations

import re
from typing import Any

from rewards.base import Reward, Scored, completion_text

POSITIVE = ("good", "great", "happy", "bright", "kind", "warm", "calm", "joy", "love", "nice",
            "gentle", "lovely")
NEGATIVE = ("bad", "sad", "dark", "cold", "angry", "pain", "fear", "ugly", "cruel", "dull",
            "awful", "grim")
NEUTRAL = ("the", "a", "cat", "dog", "river", "tree", "house", "day", "walk", "see", "sky", "road",
           "book", "city", "rain", "song", "garden", "window", "friend", "morning")
TOPICS = ("weather", "sea", "forest", "town", "music", "school", "food", "travel")

_WORD = re.compile(r"[a-z]+")
_POS, _NEG = frozenset(POSITIVE), frozenset(NEGATIVE)


def sentiment_counts(text: str) -> tuple[int, int, int]:
    """(positive, negative, total) counts of lowercase alphabetic words."""
    words = _WORD.findall(text.lower())
    return sum(w in _POS for w in words), sum(w in _NEG for w in words), len(words)


def sentiment_score(text: str) -> float:
    """(positive - negative) / words; 0.0 for no words."""
    pos, neg, n = sentiment_counts(text)
    return (pos - neg) / n if n else 0.0


class SentimentReward(Reward):
    """Ground truth of the quickstart task."""

    name = "synthetic.sentiment"
    description = "Quickstart ground truth: (positive - negative words) / words"
    value_range = (-1.0, 1.0)

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        pos, neg, n = sentiment_counts(completion_text(completion))
        return Scored((pos - neg) / n if n else 0.0, {"positive": pos, "negative": neg, "words": n})
