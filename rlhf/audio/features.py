"""Resampling and log-mel features, in plain torch (no torchaudio).

- :func:`resample`: band-limited (windowed-sinc) polyphase resampling between any two integer
  rates, after J. O. Smith, "Digital Audio Resampling" (ccrma.stanford.edu/~jos/resample):
  each output sample is a Hann-windowed sinc interpolation of the input, the sinc's cut-off at
  ``rolloff`` x the lower Nyquist frequency. Output length is ``ceil(n * sr_out / sr_in)``.
- :func:`mel_filterbank`: triangular filters equally spaced on the HTK mel scale
  ``mel(f) = 2595 log10(1 + f / 700)`` (Young et al., *The HTK Book*), unnormalised (peak 1).
- :func:`log_mel`: natural log of the mel-filtered power spectrum of a Hann-windowed STFT,
  shape ``[frames, n_mels]`` (or ``[batch, frames, n_mels]``).

Waveforms are float arrays in [-1, 1], shape ``[samples]`` or ``[batch, samples]``; rates in Hz.
NumPy input gives NumPy output, a tensor gives a tensor.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

LOG_FLOOR = 1e-6
"""Added to the mel power before the log (power of a [-1, 1] waveform)."""


# ---------------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _sinc_kernels(down: int, up: int, zero_crossings: int, rolloff: float
                  ) -> tuple[torch.Tensor, int]:
    """Polyphase filters ``[up, 1, K]`` and the left padding, for reduced rates ``down → up``.

    Output phase ``p`` (0 ≤ p < up) sits at input time ``p·down/up`` (in input samples) past
    the frame start; its filter tap ``k`` multiplies padded input sample ``k`` and equals
    ``β·sinc(β·u)·hann(u)``, ``u = p·down/up + pad − k``, ``β = rolloff·min(1, up/down)`` (the
    cut-off in cycles per input sample x 2), Hann half-width ``zero_crossings / β`` samples.
    """
    beta = rolloff * min(1.0, up / down)
    pad = math.ceil(zero_crossings / beta)
    taps = torch.arange(2 * pad + down + 1, dtype=torch.float64)
    phase = torch.arange(up, dtype=torch.float64)[:, None] * down / up
    u = phase + pad - taps[None, :]
    half = zero_crossings / beta
    window = torch.where(u.abs() <= half, torch.cos(math.pi * u / (2 * half)) ** 2,
                         torch.zeros_like(u))
    kernels = beta * torch.special.sinc(beta * u) * window
    return kernels[:, None, :].float(), pad


def resample(wave: Any, sr_in: int, sr_out: int, zero_crossings: int = 6,
             rolloff: float = 0.99) -> Any:
    """Resample ``wave`` ``[samples]`` or ``[batch, samples]`` from ``sr_in`` to ``sr_out`` Hz.

    Band-limited to ``rolloff`` x min(sr_in, sr_out) / 2 (anti-aliasing when downsampling);
    ``zero_crossings`` sinc lobes on each side (quality vs cost). Output length
    ``ceil(samples · sr_out / sr_in)``, so the length ratio is exact whenever it is an integer.
    Same rate: returned as a copy.
    """
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"resample: rates must be positive, got {sr_in} → {sr_out}")
    is_numpy = not isinstance(wave, torch.Tensor)
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32) if is_numpy else wave)
    if sr_in == sr_out:
        out = x.clone()
        return out.numpy() if is_numpy else out
    squeeze = x.dim() == 1
    x = x.reshape(1, -1) if squeeze else x
    g = math.gcd(int(sr_in), int(sr_out))
    down, up = int(sr_in) // g, int(sr_out) // g
    kernels, pad = _sinc_kernels(down, up, zero_crossings, float(rolloff))
    n = x.shape[-1]
    target = math.ceil(n * up / down)
    padded = F.pad(x.to(kernels.dtype)[:, None, :], (pad, pad + down))
    y = F.conv1d(padded, kernels.to(x.device), stride=down)  # [B, up, ceil(n / down)]
    y = y.transpose(1, 2).reshape(x.shape[0], -1)[:, :target]
    y = y[0] if squeeze else y
    return y.numpy() if is_numpy else y


# ---------------------------------------------------------------------------------------------
# Mel features
# ---------------------------------------------------------------------------------------------


def hz_to_mel(f: Any) -> Any:
    """HTK mel scale: ``2595 · log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: Any) -> Any:
    """Inverse of :func:`hz_to_mel`: ``700 · (10^(m / 2595) − 1)``."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=32)
def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> torch.Tensor:
    """Triangular mel filters, shape ``[n_fft // 2 + 1, n_mels]`` (float32, peak 1 each).

    Filter ``i`` rises from ``f[i]`` to 1 at ``f[i+1]`` and falls to 0 at ``f[i+2]``, where
    ``f`` = ``n_mels + 2`` points equally spaced in HTK mel between ``f_min`` and ``f_max``
    (default: ``sample_rate / 2``).
    """
    f_max = sample_rate / 2.0 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2.0:
        raise ValueError(f"mel_filterbank: need 0 <= f_min < f_max <= {sample_rate / 2}")
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    points = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = points[:-2], points[1:-1], points[2:]
    rising = (freqs[:, None] - lower[None, :]) / (centre - lower)[None, :]
    falling = (upper[None, :] - freqs[:, None]) / (upper - centre)[None, :]
    bank = np.clip(np.minimum(rising, falling), 0.0, None)
    return torch.from_numpy(bank.astype(np.float32))


def frame_params(sample_rate: int, win_ms: float = 25.0, hop_ms: float = 10.0) -> tuple[int, int]:
    """``(window, hop)`` in samples for window/hop lengths in milliseconds."""
    win = int(round(sample_rate * win_ms / 1000.0))
    hop = int(round(sample_rate * hop_ms / 1000.0))
    if win < 2 or hop < 1:
        raise ValueError(f"window {win_ms} ms / hop {hop_ms} ms too short at {sample_rate} Hz")
    return win, hop


def n_frames(n_samples: int, sample_rate: int, win_ms: float = 25.0, hop_ms: float = 10.0
             ) -> int:
    """Frames :func:`log_mel` gives for ``n_samples``: ``1 + (max(n, win) − win) // hop``."""
    win, hop = frame_params(sample_rate, win_ms, hop_ms)
    return 1 + (max(n_samples, win) - win) // hop


def log_mel(wave: Any, sample_rate: int, n_mels: int = 40, win_ms: float = 25.0,
            hop_ms: float = 10.0, f_min: float = 0.0, f_max: float | None = None) -> Any:
    """Log-mel spectrogram: ``[samples]`` → ``[frames, n_mels]``, ``[B, samples]`` → ``[B, frames,
    n_mels]``.

    Frames of ``win_ms`` (Hann window, FFT size = window length, no centring) every ``hop_ms``;
    :func:`n_frames` frames (a wave shorter than one window is zero-padded to one). Values:
    ``ln(Σ_k |X_k|² · mel_k + 1e-6)``, with ``X`` the DFT of the windowed frame.
    """
    is_numpy = not isinstance(wave, torch.Tensor)
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32) if is_numpy else wave).float()
    squeeze = x.dim() == 1
    x = x.reshape(1, -1) if squeeze else x
    win, hop = frame_params(sample_rate, win_ms, hop_ms)
    if x.shape[-1] < win:
        x = F.pad(x, (0, win - x.shape[-1]))
    window = torch.hann_window(win, periodic=True, device=x.device)
    spec = torch.stft(x, n_fft=win, hop_length=hop, win_length=win, window=window,
                      center=False, return_complex=True)  # [B, win // 2 + 1, frames]
    power = spec.real ** 2 + spec.imag ** 2
    bank = mel_filterbank(n_mels, win, int(sample_rate), float(f_min),
                          None if f_max is None else float(f_max)).to(x.device)
    mel = torch.matmul(power.transpose(1, 2), bank)  # [B, frames, n_mels]
    out = torch.log(mel + LOG_FLOOR)
    out = out[0] if squeeze else out
    return out.numpy() if is_numpy else out
