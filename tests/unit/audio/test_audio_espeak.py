"""eSpeak NG synthesis through ctypes: plausible audio, rate and pitch take effect, determinism."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rlhf.audio import espeak
from rlhf.audio.espeak import EspeakError, synthesize


def mean_f0(wave: np.ndarray, sr: int, lo: float = 60.0, hi: float = 400.0) -> float:
    """Median autocorrelation pitch (Hz) of the loud 40 ms frames: an F0 proxy."""
    frame, hop = int(0.04 * sr), int(0.01 * sr)
    frames = [wave[s: s + frame] for s in range(0, len(wave) - frame, hop)]
    energy = np.array([np.sqrt(np.mean(f ** 2)) for f in frames])
    f0 = []
    for f in (f for f, e in zip(frames, energy) if e > 0.3 * energy.max()):
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[frame - 1:]
        lags = np.arange(int(sr / hi), int(sr / lo))
        f0.append(sr / lags[np.argmax(ac[lags])])
    return float(np.median(f0))


def test_hello_world_is_plausible_speech():
    wave, sr = synthesize("hello world")
    assert sr == espeak.SAMPLE_RATE == 22050
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert np.abs(wave).max() <= 1.0
    assert 0.4 < len(wave) / sr < 2.0  # two words at 175 words/min
    assert np.sqrt(np.mean(wave ** 2)) > 0.01  # not silent


def test_faster_rate_gives_shorter_audio():
    text = "the quick brown fox jumps over the lazy dog"
    slow, sr = synthesize(text, rate=120)
    fast, _ = synthesize(text, rate=300)
    assert len(fast) < 0.6 * len(slow)
    assert 2.0 < len(slow) / sr < 6.0  # 9 words at 120 wpm: about 4.5 s


def test_higher_pitch_raises_f0():
    low, sr = synthesize("a long vowel sound, aaah", pitch=10)
    high, _ = synthesize("a long vowel sound, aaah", pitch=90)
    f_low, f_high = mean_f0(low, sr), mean_f0(high, sr)
    assert f_high > 1.3 * f_low, (f_low, f_high)


def test_same_inputs_give_identical_samples_whatever_came_before():
    first, _ = synthesize("deterministic output", voice="en+f3", rate=160, pitch=40)
    synthesize("something else in between", voice="en-us", rate=300, pitch=90)
    again, _ = synthesize("deterministic output", voice="en+f3", rate=160, pitch=40)
    assert np.array_equal(first, again)


def test_threads_take_turns_and_get_their_own_audio():
    texts = ["one two three", "four five", "six seven eight nine"]
    expected = [synthesize(t)[0] for t in texts]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = synthesize(texts[i % 3])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], expected[i % 3]) for i in range(6))


def test_bad_requests_raise_clear_errors():
    with pytest.raises(EspeakError, match="unknown eSpeak NG voice 'no-such-voice'"):
        synthesize("hi", voice="no-such-voice")
    with pytest.raises(ValueError, match="rate must be 80-450"):
        synthesize("hi", rate=20)
    with pytest.raises(ValueError, match="text is empty"):
        synthesize("  ")


def test_english_voices_are_listed():
    names = {v.languages[0] for v in espeak.list_voices("en") if v.languages}
    assert "en-us" in names
