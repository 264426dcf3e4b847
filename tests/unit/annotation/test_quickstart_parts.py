"""The quickstart's own parts: the ``prosody`` hidden taste (pitch estimate, formula), the
``annotate`` stage's ``simulate`` switch and ``annotators_per_pair: auto``, the self-contained
HTML page of players, and ``preference.model`` recognising a speech reward model."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
import soundfile as sf
from pydantic import ValidationError

from annotation.simulate import median_f0, preference_function, voiced_seconds
from annotation.stage import AnnotateOptions
from rlhf.policies.audio.report import samples_page, wav_data_uri

SR = 16_000


def tone(hz: float, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    # a buzz with harmonics, as voiced speech: the fundamental is the autocorrelation peak
    return (0.5 * np.sin(2 * np.pi * hz * t) + 0.3 * np.sin(4 * np.pi * hz * t)
            + 0.1 * np.sin(6 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("hz", [80.0, 120.0, 200.0])
def test_median_f0_finds_the_fundamental(hz):
    assert median_f0(tone(hz, 0.5), SR) == pytest.approx(hz, rel=0.02)


def test_median_f0_of_silence_is_zero():
    assert median_f0(np.zeros(SR, dtype=np.float32), SR) == 0.0
    assert median_f0(np.zeros(10, dtype=np.float32), SR) == 0.0


def test_prosody_quality_is_the_documented_formula():
    quality = preference_function("prosody", target_wpm=200, scale_wpm=60, target_hz=120,
                                  scale_octaves=0.25, pitch_weight=0.5)
    wave = np.concatenate([tone(150.0, 1.5), np.zeros(SR // 2, dtype=np.float32)])
    prompt = "Read aloud: one two three four five"
    wpm = 5 * 60.0 / voiced_seconds(wave, SR)  # 5 words in ~1.5 voiced seconds: ~200 wpm
    f0 = median_f0(wave, SR)
    expected = (0.5 * math.exp(-abs(wpm - 200) / 60)
                + 0.5 * math.exp(-abs(math.log2(f0 / 120)) / 0.25))
    assert quality(wave, SR, prompt) == pytest.approx(expected, rel=1e-9)
    assert f0 == pytest.approx(150, rel=0.01)  # integer lags: 16000 / 107 = 149.5 Hz
    assert expected == pytest.approx(0.5 * math.exp(-abs(wpm - 200) / 60)
                                     + 0.5 * math.exp(-math.log2(150 / 120) / 0.25), rel=0.01)
    assert quality(np.zeros(SR, dtype=np.float32), SR, prompt) == 0.0


def test_simulate_switch_and_auto_annotators_per_pair():
    people = AnnotateOptions(pairs="p.jsonl", simulate=False, annotators_per_pair="auto")
    assert people.simulate is None and people.votes_per_pair == 1
    scripted = AnnotateOptions(pairs="p.jsonl", simulate=True, annotators_per_pair="auto")
    assert scripted.simulate is not None and scripted.votes_per_pair == 3  # the default 3
    five = AnnotateOptions(pairs="p.jsonl", simulate={"annotators": 5},
                           annotators_per_pair="auto")
    assert five.votes_per_pair == 5
    assert AnnotateOptions(pairs="p.jsonl").votes_per_pair == 3
    with pytest.raises(ValidationError, match="at least 1"):
        AnnotateOptions(pairs="p.jsonl", annotators_per_pair=0)
    with pytest.raises(ValidationError, match="below annotators_per_pair"):
        AnnotateOptions(pairs="p.jsonl", simulate={"annotators": 2}, annotators_per_pair=3)


def test_samples_page_is_self_contained_and_escaped():
    clip = tone(120.0, 0.2)
    rows = [{"sentence": "a <script>alert(1)</script> b",
             "before": {"wave": clip, "sample_rate": SR, "controls": "<rate_1>",
                        "scores": {"preference": 0.25}},
             "after": {"wave": clip, "sample_rate": SR, "controls": "<pitch_3>",
                       "scores": {"preference": 0.75}}}]
    page = samples_page("t", ["before", "after"], rows, {"before": {"preference": 0.25}})
    assert page.count("<audio controls") == 2 and "<script>" not in page
    assert "&lt;rate_1&gt;" in page and "0.750" in page
    uri = wav_data_uri(clip, SR)
    assert uri in page
    wave, sr = sf.read(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])), dtype="float32")
    assert sr == SR and np.max(np.abs(wave - clip)) < 1e-4  # 16-bit PCM round trip


def test_preference_model_scores_audio_with_a_speech_reward_model(tmp_path):
    import torch

    from rewards.base import REWARDS
    from rewards.preference.audio_model import AudioRewardModel, AudioRMConfig

    torch.manual_seed(0)
    model = AudioRewardModel(AudioRMConfig(hidden=8, conv_layers=1, n_mels=16))
    model.save_pretrained(tmp_path / "rm")
    reward = REWARDS.get("preference.model")(path=str(tmp_path / "rm"))
    assert reward.is_audio()
    waves = [tone(100.0, 0.5), tone(180.0, 0.7)]
    scored = reward.score_batch(["p", "p", "p"], ["", "", ""], waveform=[*waves, None],
                                sample_rate=[SR, SR, SR])
    expected = model.score(waves, SR, ["p", "p"])
    assert [s.value for s in scored[:2]] == pytest.approx(expected, rel=1e-5)
    assert scored[2].value is None and "no audio" in scored[2].details["error"]
