"""Audio rewards: cheap guards (``audio.duration``, ``audio.clipping``, ``audio.silence``) and
``audio.intelligibility`` (does the waveform say the intended words?).

Where the audio comes from, per row (first found): the columns ``waveform`` (a float array, or
``[samples, channels]``) and ``sample_rate`` (what the eSpeak prosody policy hands over); the
column ``audio`` (a WAV/FLAC path, or inline ``{array, sample_rate}``; ``rlhf rewards score``
resolves relative paths against the JSONL file); or a completion that is itself a waveform dict
``{array | waveform, sample_rate}``. Every reward mono-mixes, checks and length-limits the clip
(:mod:`rewards.audio.clip`); an empty, NaN/infinite or silent waveform is scored ``None`` with
``details.error`` (counted per reward as ``reward_errors/<name>`` by the RL engine) and a logged
warning, never an exception.
"""
