"""Resampling and log-mel features on sines, with hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhf.audio.features import (
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    n_frames,
    resample,
)


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def peak_hz(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spectrum) * sr / len(wave))


@pytest.mark.parametrize("sr_in,sr_out", [(22050, 16000), (16000, 44100), (48000, 16000)])
def test_resample_keeps_frequency_and_exact_length(sr_in, sr_out):
    x = sine(440.0, sr_in, 2.0)
    y = resample(x, sr_in, sr_out)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    assert len(y) == 2 * sr_out  # 2 s in, 2 s out: the ratio is exact
    assert abs(peak_hz(y, sr_out) - 440.0) <= 0.5  # 0.5 Hz = the DFT bin width here
    expected = sine(440.0, sr_out, 2.0)
    inner = slice(sr_out // 100, -sr_out // 100)  # away from the zero-padded ends
    assert np.abs(y[inner] - expected[inner]).max() < 2e-3


def test_resample_length_is_ceil_of_the_ratio():
    assert len(resample(np.zeros(1001, np.float32), 22050, 16000)) == int(np.ceil(1001 * 320 / 441))


def test_downsampling_removes_content_above_the_new_nyquist():
    x = sine(7000.0, 22050, 1.0)  # above 4 kHz, the Nyquist frequency of 8 kHz
    y = resample(x, 22050, 8000)
    assert np.sqrt(np.mean(y[100:-100] ** 2)) < 0.01 * np.sqrt(np.mean(x ** 2))


def test_resample_tensor_batch_and_same_rate():
    x = torch.from_numpy(np.stack([sine(300.0, 16000, 0.5), sine(900.0, 16000, 0.5)]))
    y = resample(x, 16000, 22050)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 11025)
    assert torch.allclose(y[1], resample(x[1], 16000, 22050), atol=1e-6)
    same = resample(x, 16000, 16000)
    assert torch.equal(same, x) and same is not x


def test_htk_mel_scale_values():
    assert hz_to_mel(700.0) == pytest.approx(2595.0 * np.log10(2.0))
    assert hz_to_mel(0.0) == 0.0
    assert mel_to_hz(hz_to_mel(1234.5)) == pytest.approx(1234.5)


def test_mel_filterbank_shape_and_triangles():
    bank = mel_filterbank(40, 400, 16000).numpy()
    assert bank.shape == (201, 40)
    assert (bank >= 0).all() and bank.max() <= 1.0
    assert (np.diff(bank.argmax(axis=0)) >= 0).all()  # centres rise with the band index
    assert (bank.sum(axis=0) > 0).all()  # no empty band at 40 bands / 400-point FFT


def test_log_mel_of_a_sine_peaks_in_the_band_around_its_frequency():
    sr, freq = 16000, 1000.0
    x = sine(freq, sr, 1.0)
    feats = log_mel(x, sr, n_mels=40, win_ms=25, hop_ms=10)
    assert feats.shape == (n_frames(len(x), sr), 40) == (1 + (16000 - 400) // 160, 40)
    centres = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), 42))[1:-1]
    assert feats.mean(axis=0).argmax() == np.abs(centres - freq).argmin()
    # Silence sits at the floor ln(1e-6); the sine's band is far above it.
    assert log_mel(np.zeros(1600, np.float32), sr).max() == pytest.approx(np.log(1e-6))
    assert feats.max() > np.log(1e-6) + 10


def test_log_mel_batch_matches_single_and_short_input_gives_one_frame():
    x = torch.from_numpy(np.stack([sine(500.0, 16000, 0.3), sine(2500.0, 16000, 0.3)]))
    batch = log_mel(x, 16000)
    assert batch.shape == (2, n_frames(4800, 16000), 40)
    assert torch.allclose(batch[0], log_mel(x[0], 16000), atol=1e-5)
    assert log_mel(np.zeros(100, np.float32), 16000).shape == (1, 40)
