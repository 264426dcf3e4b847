"""Scripted annotators' answers (no server): hidden preference, displayed order, noise, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.argilla.records import record_payload, vote_from_answers
from annotation.pairs import make_pair
from annotation.simulate import (
    ScriptedAnnotator, loudness, preference_function, speaking_rate, voiced_seconds,
)
from rlhf.errors import UserError

from .conftest import write_tone


def _records(tmp_path, n=12):
    out = []
    for i in range(n):
        a = write_tone(tmp_path / f"{i}-a.wav", amp=0.1 + 0.02 * i)
        b = write_tone(tmp_path / f"{i}-b.wav", amp=0.5)
        pair = make_pair(f"Say {i}", a, b, id=f"p{i}")
        rec = record_payload(pair)
        out.append((pair, {"id": f"uuid-{i}", "external_id": rec["id"], "fields": rec["fields"],
                           "metadata": {}}, rec["metadata"]["order"]))
    return out


def test_answers_follow_the_hidden_preference_in_any_order(tmp_path):
    ann = ScriptedAnnotator("a1", "http://x", "key", loudness(0.5))
    orders = set()
    for pair, record, order in _records(tmp_path):
        orders.add(order)
        body = ann.answer(record)
        assert body["status"] == "submitted"
        values = {q: v["value"] for q, v in body["values"].items()}
        vote = vote_from_answers("a1", "submitted", order, values)
        assert vote.choice == "B"  # audio_b (amplitude 0.5) is nearer the target loudness
        assert 1 <= vote.rating_a <= vote.rating_b <= 5
    assert orders == {"AB", "BA"}


def test_noise_ties_discards_and_seeding(tmp_path):
    recs = _records(tmp_path, 8)
    noisy = ScriptedAnnotator("n", "http://x", "key", loudness(0.5), noise=5.0, seed=1)
    first = [noisy.answer(r)["values"]["preference"]["value"] for _, r, _ in recs]
    assert first == [noisy.answer(r)["values"]["preference"]["value"] for _, r, _ in reversed(recs)][::-1]
    other = ScriptedAnnotator("n", "http://x", "key", loudness(0.5), noise=5.0, seed=2)
    assert first != [other.answer(r)["values"]["preference"]["value"] for _, r, _ in recs]
    tie = ScriptedAnnotator("t", "http://x", "key", loudness(0.5), tie_band=10.0)
    body = tie.answer(recs[0][1])
    assert body["values"]["preference"]["value"] == "tie" and "comment" in body["values"]
    gone = ScriptedAnnotator("d", "http://x", "key", loudness(0.5), discard_rate=1.0)
    assert gone.answer(recs[0][1]) == {"status": "discarded"}


def test_speaking_rate_prefers_the_rate_near_the_target():
    sr = 8000
    prompt = "Read aloud: one two three four five six seven eight nine ten"
    def speech(seconds):  # ten "words" of tone spread over the given duration
        t = np.arange(int(seconds * sr)) / sr
        return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    q = speaking_rate(target_wpm=150)
    # 10 words in 4 s = 150 wpm (best); 2 s = 300 wpm; 8 s = 75 wpm
    assert q(speech(4.0), sr, prompt) == pytest.approx(1.0, abs=1e-3)
    assert q(speech(4.0), sr, prompt) > q(speech(2.0), sr, prompt)
    assert q(speech(4.0), sr, prompt) > q(speech(8.0), sr, prompt)
    silent = np.zeros(100, dtype=np.float32)
    assert voiced_seconds(silent, sr) == 0 and q(silent, sr, prompt) == 0.0


def test_preference_function_lookup():
    assert preference_function("loudness", target_rms=0.1)(np.full(10, 0.1), 8000, "") == \
        pytest.approx(1.0)
    with pytest.raises(UserError, match="unknown preference function"):
        preference_function("loudnes")
    with pytest.raises(UserError, match="unexpected keyword"):
        preference_function("speaking_rate", nope=1)
    assert callable(preference_function("annotation.simulate:loudness"))
