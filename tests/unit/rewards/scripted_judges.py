"""Scripted judges for the judge tests: ``fn(list[str]) -> list[str]``, importable by name."""

from __future__ import annotations

import re


def always_a(texts):
    """A fully position-biased judge: slot A always wins."""
    return ["[[A]]" for _ in texts]


def _answers(text):
    a = re.search(r"^Answer A: (.*)$", text, re.M).group(1)
    b = re.search(r"^Answer B: (.*)$", text, re.M).group(1)
    return a, b


def longer_wins(texts):
    """Prefers the longer answer whatever its slot; equal lengths tie; '???' is unreadable."""
    out = []
    for text in texts:
        a, b = _answers(text)
        if "???" in a:
            out.append("I cannot tell")
        else:
            out.append("[[A]]" if len(a) > len(b) else "[[B]]" if len(b) > len(a) else "[[tie]]")
    return out


def words_score(texts):
    """Pointwise: Score = number of words of the answer, capped at 5."""
    return [f"Score: {min(5, len(re.search(r'^Answer: (.*)$', t, re.M).group(1).split()))}"
            for t in texts]


def wrong_count(texts):
    return ["[[A]]"]
