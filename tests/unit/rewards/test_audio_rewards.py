"""Audio rewards: guards against hand-computed values, None on unusable audio, intelligibility
separating clean from corrupted speech, caching, the process pool, Whisper plumbing, and
``rlhf rewards score`` on audio rows. Speech comes from the committed fixtures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rewards.audio import intelligibility as intel
from rewards.audio.clip import WARNINGS
from rewards.audio.guards import Clipping, Duration, Silence
from rewards.audio.intelligibility import Intelligibility
from rewards.compose import CompositeReward
from rewards.spec import RewardSpec
from rlhf.audio.io import audio_duration, read_audio

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "speech"
SR = 16_000


def manifest() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "manifest.jsonl").read_text().splitlines()]


def fixture(name: str) -> tuple[np.ndarray, int, dict]:
    row = next(r for r in manifest() if r["audio"] == f"{name}.wav")
    wave, sr = read_audio(FIXTURES / row["audio"])
    return wave, sr, row


def tone(seconds: float, amp: float = 0.5, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def score(reward, wave, sr=SR, **row):
    return reward.score_row(None, None, waveform=wave, sample_rate=sr, **row)


# -- audio.duration ------------------------------------------------------------------------------
def test_duration_on_the_whole_fixture_is_words_per_minute_of_its_length():
    wave, sr, row = fixture("fox")
    seconds = audio_duration(FIXTURES / "fox.wav")
    wpm = 9 * 60.0 / seconds  # nine words
    got = score(Duration(trim=False, lo=100, hi=300), wave, sr, text=row["text"])
    assert got.details["wpm"] == pytest.approx(wpm) and got.value == 1.0
    d = wpm - 150.0
    got = score(Duration(trim=False, lo=100, hi=150, width=40), wave, sr, text=row["text"])
    assert got.value == pytest.approx(math.exp(-0.5 * (d / 40.0) ** 2))


def test_duration_trims_leading_and_trailing_silence():
    wave = np.concatenate([np.zeros(SR // 2), tone(2.0), np.zeros(SR // 2)]).astype(np.float32)
    text = "one two three four five"  # 5 words over 2.0 s of sound: 150 words/min
    got = score(Duration(lo=140, hi=170), wave, text=text)
    assert got.details["seconds"] == pytest.approx(2.0) and got.details["wpm"] == pytest.approx(150)
    assert got.value == 1.0
    below = score(Duration(lo=160, hi=200, width=40), wave, text=text)
    assert below.value == pytest.approx(math.exp(-0.5 * (10 / 40) ** 2))
    above = score(Duration(lo=100, hi=120, width=20), wave, text=text)
    assert above.value == pytest.approx(math.exp(-0.5 * (30 / 20) ** 2))
    whole = score(Duration(trim=False, lo=100, hi=120), wave, text=text)
    assert whole.details["wpm"] == pytest.approx(100.0)  # 5 words in 3.0 s


def test_duration_needs_text_and_a_valid_window():
    from rlhf.errors import UserError

    assert score(Duration(), tone(1.0)).value is None
    with pytest.raises(UserError, match="below lo"):
        Duration(lo=200, hi=100)


# -- audio.clipping / audio.silence ----------------------------------------------------------------
def test_clipping_fraction_against_tolerance():
    wave = np.full(1000, 0.5, dtype=np.float32)
    wave[:5] = 1.0
    wave[5:8] = -1.0  # 8 of 1000 samples at full scale
    got = score(Clipping(), wave)
    assert got.details["clipped_fraction"] == pytest.approx(0.008)
    assert got.value == pytest.approx(1 - 0.008 / 0.01)
    assert score(Clipping(tolerance=0.004), wave).value == 0.0
    clean, sr, _ = fixture("fox")
    got = score(Clipping(), clean, sr)
    assert got.value == 1.0 and got.details["peak"] == pytest.approx(np.abs(clean).max())


def test_silence_ratio_of_quiet_frames():
    wave = np.concatenate([tone(1.0), np.zeros(SR)]).astype(np.float32)  # 100 + 100 frames
    got = score(Silence(), wave)
    assert got.details["silence_ratio"] == pytest.approx(0.5)
    assert got.value == pytest.approx(1 - (0.5 - 0.3) / 0.7)
    assert score(Silence(allowed=0.5), wave).value == 1.0
    # -30 dB is inside a 40 dB threshold (speech), outside a 20 dB one (silence)
    quiet = np.concatenate([tone(1.0), tone(1.0, amp=0.5 * 10 ** (-30 / 20))]).astype(np.float32)
    assert score(Silence(), quiet).details["silence_ratio"] == pytest.approx(0.0)
    assert score(Silence(threshold_db=20), quiet).details["silence_ratio"] == pytest.approx(0.5)


# -- unusable audio ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["audio.duration", "audio.clipping", "audio.silence",
                                  "audio.intelligibility"])
def test_empty_nan_silent_and_missing_audio_get_none_with_a_counted_warning(name):
    bad = {"empty": np.zeros(0, np.float32), "non-finite": np.array([0.1, np.nan] * 800),
           "silent": np.zeros(SR, np.float32)}
    before = dict(WARNINGS)
    with CompositeReward([RewardSpec(name=name)]) as design:
        result = design.score(["p"] * 4, ["c"] * 4, waveform=[*bad.values(), None],
                              sample_rate=[SR] * 4, text=["hello world"] * 4)
    assert result.values == [None] * 4
    errors = result.errors[name]
    assert len(errors) == 4 and [e.split(":")[0] for e in errors] == [*bad, "missing"]
    for kind in bad:
        assert WARNINGS[kind] == before.get(kind, 0) + 1


def test_stereo_is_mono_mixed_and_long_audio_limited():
    mono = tone(2.0)
    stereo = np.stack([mono, mono], axis=1)
    assert score(Silence(), stereo).details == score(Silence(), mono).details
    cut = score(Clipping(max_seconds=0.5), np.concatenate([tone(0.5), np.ones(SR)]))
    assert cut.value == 1.0  # the clipped second is past the limit
    # duration still times the whole clip
    timed = score(Duration(max_seconds=0.5, trim=False, lo=1, hi=1000), tone(2.0), text="a b")
    assert timed.details["seconds"] == pytest.approx(2.0)


# -- audio.intelligibility -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def intelligibility_scores():
    rows = manifest()
    reward = Intelligibility(cache_size=0)
    out = {}
    for row in rows:
        wave, sr = read_audio(FIXTURES / row["audio"])
        out[row["audio"]] = (row["kind"], score(reward, wave, sr, text=row["text"]))
    return out


def test_intelligibility_separates_clean_from_corrupted_speech(intelligibility_scores):
    clean = {k: s for k, (kind, s) in intelligibility_scores.items() if kind == "clean"}
    corrupted = {k: s for k, (kind, s) in intelligibility_scores.items() if kind != "clean"}
    assert len(clean) == 5 and len(corrupted) == 3
    for name, s in clean.items():
        assert s.details["aligned"] and s.value >= 0.3, (name, s)
        assert s.details["gop"] < 0.1, (name, s)  # the phone loop explains audio at least as well
    for name, s in corrupted.items():  # noise, time-reversed, another sentence
        assert s.value == 0.0 and not s.details["aligned"], (name, s)
    assert min(s.value for s in clean.values()) - max(s.value for s in corrupted.values()) >= 0.3


def test_intelligibility_value_is_exp_of_gop_over_tau(intelligibility_scores):
    _, s = intelligibility_scores["fox.wav"]
    assert s.value == pytest.approx(min(1.0, math.exp(s.details["gop"] / 2.0)))
    wave, sr, row = fixture("fox")
    sharper = score(Intelligibility(tau=0.5, cache_size=0), wave, sr, text=row["text"])
    assert sharper.value == pytest.approx(math.exp(s.details["gop"] / 0.5))


def test_intelligibility_resamples_and_rejects_unknown_words():
    wave, sr, row = fixture("baker")
    from rlhf.audio.features import resample

    at_22k = score(Intelligibility(cache_size=0), resample(wave, sr, 22050), 22050,
                   text=row["text"])
    assert at_22k.details["aligned"] and at_22k.value > 0.3
    oov = score(Intelligibility(cache_size=0), wave, sr, text="the baker brings 42 zxqvw")
    assert oov.value is None and "42" in oov.details["error"] and "zxqvw" in oov.details["error"]


def test_intelligibility_caches_results_by_waveform_hash(monkeypatch):
    wave, sr, row = fixture("train_m3")
    reward = Intelligibility()
    first = score(reward, wave, sr, text=row["text"])
    calls = []

    def stub(*args):
        calls.append(args)
        return {"aligned": False, "gop": None, "frames": 1}

    monkeypatch.setattr(intel, "pocketsphinx_gop", stub)
    again = score(reward, wave.copy(), sr, text=row["text"])
    assert calls == [] and again.value == first.value and first.value > 0
    other = score(Intelligibility(tau=1.0), wave, sr, text=row["text"])  # another key
    assert len(calls) == 1 and other.value == 0.0


def test_audio_rewards_run_in_the_process_pool():
    rows = manifest()
    waves = [read_audio(FIXTURES / r["audio"])[0] for r in rows]
    cols = dict(waveform=waves, sample_rate=[SR] * len(rows), text=[r["text"] for r in rows])
    specs = [RewardSpec(name="audio.intelligibility", workers=2),
             RewardSpec(name="audio.duration", workers=2)]
    with CompositeReward(specs) as pooled, CompositeReward(
            [RewardSpec(name=s.name) for s in specs]) as local:
        a = pooled.score(["p"] * len(rows), ["c"] * len(rows), **cols)
        b = local.score(["p"] * len(rows), ["c"] * len(rows), **cols)
    assert a.components == b.components and not a.errors


def test_whisper_backend_plumbing_with_a_tiny_random_model(tmp_path):
    import torch
    from transformers import (WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration)

    from rlhf.models import load_tokenizer
    from rlhf.errors import UserError

    with pytest.raises(UserError, match="needs model"):
        Intelligibility(backend="whisper")
    tok = load_tokenizer("tiny:lm")
    cfg = WhisperConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2,
                        encoder_ffn_dim=16, decoder_ffn_dim=16, num_mel_bins=80,
                        max_source_positions=1500, max_target_positions=16,
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                        eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.bos_token_id)
    torch.manual_seed(0)
    WhisperForConditionalGeneration(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path)
    wave, sr, row = fixture("baker")
    got = score(Intelligibility(backend="whisper", model=str(tmp_path)), wave, sr,
                text=row["text"])
    assert isinstance(got.details["transcript"], str)
    assert got.value == pytest.approx(max(0.0, 1.0 - got.details["wer"]))


# -- rlhf rewards score on audio rows ------------------------------------------------------------
def test_rewards_score_cli_reads_audio_paths_relative_to_the_file(tmp_path, monkeypatch):
    import shutil

    from typer.testing import CliRunner

    from rlhf.cli.app import app

    data = tmp_path / "set"
    (data / "clips").mkdir(parents=True)
    shutil.copy(FIXTURES / "baker.wav", data / "clips" / "baker.wav")
    rows = [{"audio": "clips/baker.wav", "text": "the baker brings a warm blanket"},
            {"audio": "clips/missing.wav", "text": "the baker brings a warm blanket"}]
    (data / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.chdir(tmp_path)  # paths resolve against the file, not the working directory
    out = tmp_path / "scored.jsonl"
    result = CliRunner().invoke(app, ["rewards", "score", "audio.duration", "-i",
                                      str(data / "rows.jsonl"), "-o", str(out),
                                      "-p", "lo=100", "-p", "hi=200"])
    assert result.exit_code == 0, result.output
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert scored[0]["audio"] == "clips/baker.wav"  # written back as given
    assert scored[0]["reward"] == 1.0 and scored[0]["details"]["words"] == 6
    assert scored[1]["reward"] is None and "file not found" in scored[1]["details"]["error"]
    assert "scored 1/2 rows" in result.output
    missing_text = data / "no_text.jsonl"
    missing_text.write_text(json.dumps({"audio": "clips/baker.wav"}) + "\n")
    result = CliRunner().invoke(app, ["rewards", "score", "audio.intelligibility", "-i",
                                      str(missing_text), "-o", str(out)])
    assert result.exit_code != 0 and "text: missing" in result.output


def test_intelligibility_does_not_depend_on_what_was_scored_before():
    reward = Intelligibility(cache_size=0)
    fox, sr, row = fixture("fox")
    first = score(reward, fox, sr, text=row["text"])
    for other in ("baker", "fox_noise", "bird_f3"):
        wave, _, orow = fixture(other)
        score(reward, wave, sr, text=orow["text"])
    assert score(reward, fox, sr, text=row["text"]).value == first.value
