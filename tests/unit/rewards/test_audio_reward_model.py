"""The audio reward model, its data and its stage: shapes, masking, save/load, loss, resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rewards.preference.audio_data import bucket_batches, load_audio_pairs, load_wave
from rewards.preference.audio_model import (
    AudioRewardModel,
    AudioRMConfig,
    pad_features,
    prompt_buckets,
)
from rewards.preference.audio_trainer import AudioRewardModelOptions, bradley_terry_loss, run
from rlhf.audio.io import read_audio, write_audio
from rlhf.data import write_jsonl
from rlhf.data.validate import BadRowError
from rlhf.errors import DataError
from rlhf.stages.base import StageContext
from rlhf.tracking.tracker import StageTracker


def tone(freq: float, seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


# -- model -------------------------------------------------------------------------------------


def test_conv_model_scores_are_padding_invariant_and_resampled():
    torch.manual_seed(0)
    model = AudioRewardModel(AudioRMConfig(hidden=16))
    short, long = tone(300, 0.5), tone(600, 1.5, seed=1)
    together = model.score([short, long], 16000)
    alone = model.score([short], 16000)
    assert together[0] == pytest.approx(alone[0], abs=1e-5)  # padding frames are masked out
    feats = model.featurize(tone(300, 1.0, sr=22050), 22050)
    assert feats.shape == (98, 40)  # resampled to 16 kHz first: 1 + (16000 - 400) // 160 frames
    x, mask = pad_features([feats, feats[:10]])
    assert x.shape == (2, 98, 40) and mask.sum(1).tolist() == [98, 10]
    assert model(x, mask).shape == (2,)


def test_prompt_conditioning_changes_the_reward():
    torch.manual_seed(0)
    model = AudioRewardModel(AudioRMConfig(hidden=16, prompt_buckets=64, prompt_dim=8))
    wave = tone(300, 0.5)
    a, b, none = (model.score([wave], 16000, prompts=[p])[0]
                  for p in ("read slowly", "shout it", None))
    assert a != b and none != a
    assert prompt_buckets("Read SLOWLY!", 64) == prompt_buckets("read slowly", 64)


def test_save_and_load_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = AudioRewardModel(AudioRMConfig(hidden=16, prompt_buckets=32))
    waves = [tone(200, 0.4), tone(700, 0.9, seed=2)]
    model.save_pretrained(tmp_path / "m")
    loaded = AudioRewardModel.from_pretrained(tmp_path / "m")
    assert_same_weights(model, loaded)
    assert loaded.config == model.config
    assert loaded.score(waves, 16000, ["hi", None]) == model.score(waves, 16000, ["hi", None])
    (tmp_path / "m" / "config.json").write_text(json.dumps({"model_kind": "other"}))
    with pytest.raises(ValueError, match="model_kind"):
        AudioRewardModel.from_pretrained(tmp_path / "m")


def test_transformers_encoders_tiny_presets_and_local_checkpoint(tmp_path):
    from safetensors.torch import save_model
    from transformers import WhisperFeatureExtractor, WhisperModel

    waves = [tone(250, 0.6), tone(800, 1.2, seed=3)]
    torch.manual_seed(0)
    tiny = AudioRewardModel(AudioRMConfig(encoder="tiny:whisper", hidden=16))
    assert tiny.config.encoder_type == "whisper"
    scores = tiny.score(waves, 16000)
    assert len(scores) == 2 and all(math.isfinite(s) for s in scores)
    tiny.save_pretrained(tmp_path / "tiny")
    assert AudioRewardModel.from_pretrained(tmp_path / "tiny").score(waves, 16000) == scores

    # A Whisper checkpoint directory (as from the hub): only its encoder is kept, and the saved
    # reward model carries the encoder config and feature-extractor settings with it.
    hf = WhisperModel(tiny.encoder.encoder.config)
    hf.config.save_pretrained(tmp_path / "whisper")  # written by hand: saving through
    save_model(hf, str(tmp_path / "whisper" / "model.safetensors"))  # transformers is slow
    WhisperFeatureExtractor(feature_size=40).save_pretrained(tmp_path / "whisper")
    model = AudioRewardModel(AudioRMConfig(encoder=str(tmp_path / "whisper"), hidden=16))
    assert model.config.feature_extractor["feature_size"] == 40
    assert torch.equal(model.encoder.encoder.conv1.weight, hf.encoder.conv1.weight)
    model.save_pretrained(tmp_path / "rm")
    again = AudioRewardModel.from_pretrained(tmp_path / "rm")
    assert_same_weights(model, again)
    assert again.score(waves, 16000) == model.score(waves, 16000)

    w2v = AudioRewardModel(AudioRMConfig(encoder="tiny:wav2vec2", hidden=16))
    assert w2v.config.encoder_type == "wav2vec2" and len(w2v.score(waves, 16000)) == 2


def test_saved_model_scores_spoken_completions_as_a_reward_function(tmp_path):
    from rewards.spec import RewardSpec, build_reward

    torch.manual_seed(0)
    model = AudioRewardModel(AudioRMConfig(hidden=16))
    model.save_pretrained(tmp_path / "m")
    a, b = tone(300, 0.5), tone(900, 0.7, sr=8000)
    reward = build_reward(RewardSpec(name="rewards.preference.audio_model:audio_reward",
                                     params={"model": str(tmp_path / "m")}))
    values = reward(["p"] * 3, [{"array": a, "sample_rate": 16000}, "no audio", "text"],
                    waveform=[None, None, b], sample_rate=[None, None, 8000])
    assert values[1] is None
    assert values[0] == pytest.approx(model.score([a], 16000)[0], abs=1e-6)
    assert values[2] == pytest.approx(model.score([b], 8000)[0], abs=1e-6)


# -- loss ----------------------------------------------------------------------------------------


def test_bradley_terry_loss_hand_computed():
    chosen, rejected = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 0.0])
    # -log σ(1) = 0.313262, -log σ(0) = 0.693147, -log σ(2) = 0.126928
    assert float(bradley_terry_loss(chosen, rejected)) == pytest.approx(
        (0.313262 + 0.693147 + 0.126928) / 3, abs=1e-6)
    margin = torch.tensor([0.5, 0.0, 0.0])  # -log σ(1 - 0.5) = 0.474077
    assert float(bradley_terry_loss(chosen, rejected, margin)) == pytest.approx(
        (0.474077 + 0.693147 + 0.126928) / 3, abs=1e-6)
    tie = torch.tensor([False, False, True])  # -(log σ(2) + log σ(-2)) / 2 = 1.126928
    assert float(bradley_terry_loss(chosen, rejected, margin, tie)) == pytest.approx(
        (0.474077 + 0.693147 + 1.126928) / 3, abs=1e-6)


# -- data ----------------------------------------------------------------------------------------


@pytest.fixture
def clips(tmp_path):
    folder = tmp_path / "data"
    write_audio(folder / "a.wav", tone(300, 0.5), 16000)
    write_audio(folder / "b.flac", tone(500, 0.8, seed=1), 16000)
    return folder


def test_wav_and_flac_round_trip_at_16_bits(clips, tmp_path):
    wave, sr = read_audio(clips / "b.flac")
    assert sr == 16000 and wave.dtype == np.float32
    assert np.abs(wave - tone(500, 0.8, seed=1)).max() <= 1 / 32768 + 1e-7
    stereo = np.stack([tone(300, 0.1), np.zeros(1600, np.float32)], axis=1)
    import soundfile as sf

    sf.write(tmp_path / "stereo.wav", stereo, 8000)
    mono, sr = read_audio(tmp_path / "stereo.wav")
    assert sr == 8000 and mono.shape == (1600,)


def test_pairs_load_with_paths_inline_audio_ties_and_margins(clips):
    inline = {"array": tone(400, 0.25, sr=8000).tolist(), "sample_rate": 8000}
    rows = [{"prompt": "say it", "chosen_audio": "a.wav", "rejected_audio": "b.flac",
             "margin": 0.5},
            {"chosen_audio": inline, "rejected_audio": "a.wav", "tie": True},
            {"chosen_audio": "b.flac", "rejected_audio": "a.wav", "margin": 0.1},
            {"chosen_audio": "b.flac", "rejected_audio": inline, "margin": 0}]
    path = write_jsonl(clips / "pairs.jsonl", rows)
    dropped = load_audio_pairs(path)
    assert len(dropped) == 2 and dropped.n_ties_dropped == 2
    first = dropped.pairs[0]
    assert first.chosen == str(clips / "a.wav") and first.prompt == "say it"
    assert first.duration == pytest.approx(0.8) and first.location == f"{path}:1"
    half = load_audio_pairs(path, ties="half", min_margin=0.3)
    assert [p.tie for p in half.pairs] == [False, True, True] and half.n_below_margin == 1
    assert load_wave(half.pairs[1].chosen)[1] == 8000


@pytest.mark.parametrize("row,message", [
    ({"chosen_audio": "missing.wav", "rejected_audio": "a.wav"},
     "pairs.jsonl:2: chosen_audio: file not found: {folder}/missing.wav"),
    ({"chosen_audio": "a.wav"}, "pairs.jsonl:2: rejected_audio: missing"),
    ({"chosen_audio": "a.mp3", "rejected_audio": "a.wav"},
     "pairs.jsonl:2: chosen_audio: unsupported audio type '.mp3'"),
    ({"chosen_audio": "a.wav", "rejected_audio": {"array": [0.1]}},
     "pairs.jsonl:2: rejected_audio: inline audio without sample_rate"),
    ({"chosen_audio": "a.wav", "rejected_audio": "./a.wav"},
     "pairs.jsonl:2: chosen_audio and rejected_audio are the same clip"),
    ({"chosen_audio": "a.wav", "rejected_audio": "b.flac", "margin": "big"},
     "pairs.jsonl:2: margin: expected a finite number, got str"),
])
def test_bad_rows_are_reported_by_file_line_and_field(clips, row, message):
    good = {"chosen_audio": "a.wav", "rejected_audio": "b.flac", "margin": 1.0}
    path = write_jsonl(clips / "pairs.jsonl", [good, row])
    with pytest.raises(BadRowError) as err:
        load_audio_pairs(path)
    assert str(err.value).startswith(f"{clips}/" + message.format(folder=clips))


def test_skip_mode_sets_bad_rows_aside_and_min_margin_needs_margins(clips):
    good = {"chosen_audio": "a.wav", "rejected_audio": "b.flac", "margin": 1.0}
    bad = {"chosen_audio": "nope.wav", "rejected_audio": "b.flac"}
    path = write_jsonl(clips / "pairs.jsonl", [good, bad])
    loaded = load_audio_pairs(path, "skip", clips / "rejected.jsonl")
    assert len(loaded) == 1 and loaded.n_bad == 1
    kept = [json.loads(line) for line in (clips / "rejected.jsonl").read_text().splitlines()]
    assert kept[0]["_location"] == f"{path}:2" and "file not found" in kept[0]["_errors"][0]
    no_margin = write_jsonl(clips / "m.jsonl", [{"chosen_audio": "a.wav",
                                                "rejected_audio": "b.flac"}])
    with pytest.raises(BadRowError, match="m.jsonl:1: margin: missing; min_margin is set"):
        load_audio_pairs(no_margin, min_margin=0.5)
    with pytest.raises(DataError, match="no usable pairs"):
        load_audio_pairs(write_jsonl(clips / "t.jsonl", [{**good, "tie": True}]))


def test_bucket_batches_cover_every_pair_once_and_group_lengths():
    durations = [float(d) for d in np.random.default_rng(0).uniform(0.5, 3.0, 100)]
    batches = bucket_batches(durations, batch_size=8, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(100))
    assert bucket_batches(durations, 8, seed=3) == batches != bucket_batches(durations, 8, 4)
    spread = np.mean([np.ptp([durations[i] for i in b]) for b in batches])
    assert spread < 0.5  # random batches of 8 would spread about 2 s


# -- stage ---------------------------------------------------------------------------------------


def _ctx(run_dir, checkpoint=None) -> StageContext:
    stage = run_dir / "arm"
    stage.mkdir(parents=True, exist_ok=True)
    return StageContext("arm", "audio_reward_model", run_dir, stage, 0,
                        StageTracker(None, None, "arm", "audio_reward_model"), checkpoint)


def test_stage_trains_logs_and_resumes_exactly(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "d"
    for i in range(6):  # the chosen clip is the higher tone
        write_audio(folder / f"hi{i}.wav", tone(600 + 50 * i, 0.3 + 0.05 * i, seed=i), 16000)
        write_audio(folder / f"lo{i}.wav", tone(150 + 20 * i, 0.3 + 0.04 * i, seed=9), 16000)
    rows = [{"chosen_audio": f"hi{i}.wav", "rejected_audio": f"lo{i}.wav",
             "margin": float(rng.uniform(0.1, 1))} for i in range(6)]
    train = write_jsonl(folder / "train.jsonl", rows)
    opts = AudioRewardModelOptions(
        data={"train": str(train), "eval": str(train)}, steps=4, batch_size=2, save_every=2,
        log_every=1, use_margin=True, model={"hidden": 8, "conv_layers": 2})

    full = run(_ctx(tmp_path / "full"), opts)
    assert set(full.metrics) >= {"eval/accuracy", "eval/reward_gap", "train/final_loss"}
    assert (tmp_path / "full" / "arm" / "eval_scores.jsonl").is_file()

    first = _ctx(tmp_path / "resumed")
    run(first, opts.model_copy(update={"steps": 2}))
    assert sorted(p.name for p in (first.stage_dir / "checkpoints").iterdir()) == \
        ["checkpoint-2"]
    resumed = run(_ctx(tmp_path / "resumed", first.stage_dir / "checkpoints" / "checkpoint-2"),
                  opts)
    assert resumed.metrics == full.metrics
    assert_same_weights(AudioRewardModel.from_pretrained(tmp_path / "full" / "arm" / "model"),
                        AudioRewardModel.from_pretrained(first.stage_dir / "model"))


def test_options_need_data_or_synthetic():
    with pytest.raises(ValueError, match="give data.train"):
        AudioRewardModelOptions()
    with pytest.raises(ValueError, match="min_rate must be below max_rate"):
        AudioRewardModelOptions(synthetic={"min_rate": 200, "max_rate": 100})
    with pytest.raises(ValueError, match="extra"):
        AudioRewardModelOptions(synthetic={}, model={"layers": 3})
