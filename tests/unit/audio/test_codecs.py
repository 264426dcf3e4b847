"""Codec adapters over transformers' EnCodec, DAC and Mimi (tiny configs built offline, random
weights): code shapes and ranges, round-trip lengths and rates, codebook prefixes, resampled
input, local-path loading through the same code path, and errors."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.audio.codecs import TINY_CODECS, _tiny_model, load_codec
from rlhf.errors import UserError

SR = 16_000


def noise(seconds: float, sr: int = SR) -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.5, 0.5, int(seconds * sr)).astype(np.float32)


@pytest.mark.parametrize("spec, hop, model_type", [("tiny:encodec", 640, "encodec"),
                                                    ("tiny:dac", 320, "dac"),
                                                    ("tiny:mimi", 640, "mimi")])
def test_round_trip_shapes_and_rates(spec, hop, model_type):
    codec = load_codec(spec)
    assert (codec.model_type, codec.sample_rate, codec.hop_length, codec.n_q) == \
        (model_type, SR, hop, 2)
    assert codec.frame_rate == SR / hop
    codes = codec.encode(noise(1.0), SR)
    assert codes.dtype == np.int64 and codes.shape == (2, SR // hop)
    assert codes.min() >= 0 and codes.max() < codec.codebook_size == 32
    wave, sr = codec.decode(codes)
    assert sr == SR and wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.size - codes.shape[1] * hop) <= 8  # DAC's convolutions trim a few samples
    assert np.isfinite(wave).all() and np.abs(wave).max() <= 1.0 and np.abs(wave).max() > 0
    # a prefix of frames, a prefix of the residual codebooks
    part, _ = codec.decode(codes[:, :3])
    assert abs(part.size - 3 * hop) <= 8
    coarse, _ = codec.decode(codes[:1])
    assert coarse.size == wave.size
    # an empty code sequence is an empty clip
    assert codec.decode(np.zeros((2, 0), dtype=np.int64))[0].size == 0


@pytest.mark.parametrize("spec", sorted("tiny:" + k for k in TINY_CODECS))
def test_input_at_another_rate_is_resampled(spec):
    codec = load_codec(spec)
    assert codec.encode(noise(0.8, 8000), 8000).shape == codec.encode(noise(0.8), SR).shape


def test_n_q_takes_a_prefix_of_the_codebooks():
    full, one = load_codec("tiny:encodec"), load_codec("tiny:encodec", n_q=1)
    x = noise(0.4)
    np.testing.assert_array_equal(one.encode(x, SR), full.encode(x, SR)[:1])
    with pytest.raises(ValueError, match=r"n_q<=1"):
        one.decode(full.encode(x, SR))


def test_bad_codes_and_specs_are_refused():
    codec = load_codec("tiny:dac")
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        codec.decode(np.full((2, 3), 32))
    with pytest.raises(ValueError, match="frames"):
        codec.decode(np.zeros(5, dtype=np.int64))
    with pytest.raises(UserError, match="did you mean 'tiny:dac'"):
        load_codec("tiny:dacc")
    with pytest.raises(UserError, match="n_q must be 1-2"):
        load_codec("tiny:mimi", n_q=3)


def test_tiny_presets_are_deterministic():
    a, b = _tiny_model("encodec"), _tiny_model("encodec")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert np.array_equal(pa.numpy(), pb.numpy()), name


@pytest.mark.parametrize("model_type", ["encodec", "dac", "mimi"])
def test_a_saved_model_loads_by_path_like_a_hub_id(model_type, tmp_path):
    tiny = load_codec(f"tiny:{model_type}")
    tiny.model.save_pretrained(tmp_path / model_type)
    by_path = load_codec(str(tmp_path / model_type))
    assert (by_path.model_type, by_path.hop_length, by_path.n_q) == \
        (model_type, tiny.hop_length, tiny.n_q)
    x = noise(0.5)
    codes = tiny.encode(x, SR)
    np.testing.assert_array_equal(by_path.encode(x, SR), codes)
    np.testing.assert_allclose(by_path.decode(codes)[0], tiny.decode(codes)[0], atol=1e-5)


def test_a_path_that_is_not_a_codec_is_a_user_error(tmp_path):
    from rlhf.models.tiny import preset_path

    with pytest.raises(UserError, match="'llama' model; supported: encodec, dac, mimi"):
        load_codec(str(preset_path("tiny:lm")))
    with pytest.raises(UserError, match="cannot load its config"):
        load_codec(str(tmp_path / "missing"))
