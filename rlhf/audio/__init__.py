"""Audio utilities: speech synthesis, resampling and features, audio files.

- :mod:`rlhf.audio.espeak`: eSpeak NG text-to-speech through ``ctypes`` (deterministic);
- :mod:`rlhf.audio.features`: :func:`~rlhf.audio.features.resample` (windowed-sinc polyphase)
  and :func:`~rlhf.audio.features.log_mel` (HTK mel filterbank), in torch;
- :mod:`rlhf.audio.io`: WAV/FLAC through ``soundfile`` and inline ``{array, sample_rate}``.

Waveforms are float32 arrays in [-1, 1], shape ``[samples]``; rates are in Hz. Importing this
package imports nothing heavy: import the module you need.
"""
