"""Speech synthesis with eSpeak NG, driven through ``ctypes`` (no subprocess).

The shared library and its voice data come from the ``espeakng-loader`` wheel
(``espeakng_loader.get_library_path()`` / ``get_data_path()``). The library is initialised once
per process in *synchronous retrieval* mode (``AUDIO_OUTPUT_SYNCHRONOUS``): ``espeak_Synth``
returns after the whole utterance has been rendered, handing the int16 samples to our callback
chunk by chunk. eSpeak NG keeps global state (the current voice and parameters), so every call
into it holds a module-level lock (threads take turns; a forked child has its own copy of the
library state and a fresh lock).

Units: ``rate`` in words per minute (eSpeak accepts 80-450), ``pitch`` and ``pitch_range`` on
eSpeak's 0-100 scale (50 is the voice's default), ``volume`` in percent (0-200, 100 normal).
Output: a float32 waveform in [-1, 1], shape ``[samples]``, at the library's rate
(:data:`SAMPLE_RATE`, 22050 Hz).

Determinism (our choice): eSpeak NG's pitch *flutter* (a slow pitch wobble) and *roughness*
(every n-th glottal cycle made quieter) keep their phase in static variables of the library
that carry over from one utterance to the next, so the same call renders differently each time.
We switch both off: the library reads a process-private view of its data folder (symbolic links
to the real files, in a temporary folder removed at exit) whose voice variants are copies with
``flutter 0`` and ``roughness 0`` appended; a voice named without a variant gets the added
:data:`STEADY` variant, which holds only those two lines. The noise generator of breathy and
whispered voices is re-seeded before each utterance. The same text, voice and parameters then
give identical samples, in any order of calls and in any process. Nothing is cached on disk.

Typical use::

    wave, sr = synthesize("hello world", rate=175, pitch=50)
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050
"""Hz; what ``espeak_Initialize`` reports for eSpeak NG's built-in voices."""
MIN_RATE, MAX_RATE = 80, 450
"""Speaking-rate limits of eSpeak NG, words per minute."""

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}
_EE_OK = 0
STEADY = "steady"
"""The added voice variant that only switches flutter and roughness off (module docstring)."""
_STEADY_LINES = b"\nflutter 0\nroughness 0\n"


class EspeakError(RuntimeError):
    """The eSpeak NG library could not be loaded, initialised, or refused a request."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` (only passed through; we never read its fields)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


class _Voice(ctypes.Structure):
    """``espeak_VOICE``, as returned by ``espeak_ListVoices``."""

    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    """A voice eSpeak NG knows: ``name`` (what :func:`synthesize` takes), its ``identifier``
    (file under ``espeak-ng-data/voices``) and its languages."""

    name: str
    identifier: str
    languages: tuple[str, ...]


class _Engine:
    """Process-wide handle on libespeak-ng; all use goes through :data:`_LOCK`."""

    def __init__(self) -> None:
        self.lib: ctypes.CDLL | None = None
        self.sample_rate = SAMPLE_RATE
        self.chunks: list[np.ndarray] = []
        self.callback = _CALLBACK(self._collect)  # kept alive for the life of the process

    def _collect(self, wav, n, _events) -> int:  # noqa: ANN001 - ctypes signature
        if n > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    def ready(self) -> ctypes.CDLL:
        """The initialised library (initialising it in this process if needed)."""
        if self.lib is not None:
            return self.lib
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise EspeakError("espeakng-loader is not installed (pip install espeakng-loader)"
                              ) from exc
        lib = _load_library(espeakng_loader.get_library_path())
        root = _steady_data_root(Path(espeakng_loader.get_data_path()))
        # The path handed to eSpeak NG is the folder *containing* espeak-ng-data.
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(root).encode(),
                                     _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (data path {root})")
        lib.espeak_SetSynthCallback(self.callback)
        self.lib, self.sample_rate = lib, int(rate)
        return lib


def _steady_data_root(real: Path) -> Path:
    """A temporary folder holding ``espeak-ng-data`` = ``real`` with flutter-free variants.

    Every entry is a symbolic link to ``real`` except ``voices/!v``, whose variant files are
    copies with ``flutter 0`` and ``roughness 0`` appended (roughness lowers the amplitude of
    every n-th glottal cycle, counting cycles across utterances), plus the variant
    :data:`STEADY`. Removed at exit.
    """
    root = Path(tempfile.mkdtemp(prefix="rlhf-espeak-"))
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(root, ignore_errors=True))
    data = root / "espeak-ng-data"
    data.mkdir()
    for entry in real.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    (data / "voices").mkdir()
    for entry in (real / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    variants = data / "voices" / "!v"
    variants.mkdir()
    source = real / "voices" / "!v"
    for entry in source.iterdir() if source.is_dir() else ():
        if entry.is_file():
            (variants / entry.name).write_bytes(entry.read_bytes() + _STEADY_LINES)
    (variants / STEADY).write_bytes(b"language variant\nname steady" + _STEADY_LINES)
    return root


def _voice_name(voice: str) -> str:
    """``voice``, with the :data:`STEADY` variant when it names none (``en`` → ``en+steady``)."""
    return voice if "+" in voice else f"{voice}+{STEADY}"


def _load_library(path: str) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise EspeakError(f"cannot load libespeak-ng from {path}: {exc}") from exc
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
                                 ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    if hasattr(lib, "espeak_ng_SetRandSeed"):  # eSpeak NG >= 1.52
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    return lib


_ENGINE = _Engine()
_LOCK = threading.Lock()


def _fresh_lock_in_child() -> None:
    """A forked child gets a copy of the library state, and a lock no thread of it holds."""
    global _LOCK
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_in_child)


def sample_rate() -> int:
    """The synthesis sample rate in Hz (initialises the library)."""
    with _LOCK:
        _ENGINE.ready()
        return _ENGINE.sample_rate


def list_voices(language: str | None = None) -> list[Voice]:
    """Voices installed with the library, optionally only those for ``language`` (e.g. ``en``)."""
    with _LOCK:
        lib = _ENGINE.ready()
        array = lib.espeak_ListVoices(None)
        out: list[Voice] = []
        i = 0
        while array and array[i]:
            v = array[i].contents
            out.append(Voice(v.name.decode(), (v.identifier or b"").decode(),
                             _languages(v.languages)))
            i += 1
    if language:
        out = [v for v in out if any(lang.split("-")[0] == language for lang in v.languages)]
    return out


def _languages(raw: bytes | None) -> tuple[str, ...]:
    """Decode ``espeak_VOICE.languages``: (priority byte, NUL-terminated name)* then a NUL."""
    if not raw:
        return ()
    # c_char_p stops at the first NUL; the first entry is what matters for filtering.
    return (raw[1:].decode(errors="replace"),) if len(raw) > 1 else ()


def _check(code: int, what: str) -> None:
    if code != _EE_OK:
        raise EspeakError(f"{what} failed (eSpeak NG error code {code})")


def synthesize(text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50,
               pitch_range: int = 50, volume: int = 100, word_gap: int = 0,
               ssml: bool = False) -> tuple[np.ndarray, int]:
    """Render ``text`` as speech; return ``(wave, sample_rate)``.

    ``voice``: an eSpeak NG voice name, optionally with a variant (``"en-us"``, ``"en+f3"``).
    ``rate``: words per minute (80-450); ``pitch``/``pitch_range``: 0-100; ``volume``: 0-200
    percent; ``word_gap``: extra pause between words in units of 10 ms.
    ``ssml``: ``text`` is SSML (``<speak>...</speak>``; eSpeak NG honours ``<break time="300ms"/>``,
    ``<emphasis>``, ``<prosody>`` and ``<say-as>``); the parameters above are the base that SSML
    tags modify. Escape ``&``, ``<`` and ``>`` in the words (:func:`xml.sax.saxutils.escape`).
    Returns a float32 array ``[samples]`` in [-1, 1] and the rate in Hz (22050).
    """
    if not text or not text.strip():
        raise ValueError("synthesize: text is empty")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"synthesize: rate must be {MIN_RATE}-{MAX_RATE} words/min, got {rate}")
    for name, value, top in (("pitch", pitch, 100), ("pitch_range", pitch_range, 100),
                             ("volume", volume, 200), ("word_gap", word_gap, 1000)):
        if not 0 <= value <= top:
            raise ValueError(f"synthesize: {name} must be 0-{top}, got {value}")
    data = text.encode("utf-8") + b"\0"
    with _LOCK:
        lib = _ENGINE.ready()
        code = lib.espeak_SetVoiceByName(_voice_name(voice).encode())
        if code != _EE_OK:
            raise EspeakError(f"unknown eSpeak NG voice {voice!r} (error code {code}); "
                              "see rlhf.audio.espeak.list_voices()")
        # Every parameter on every call, so one call's settings never leak into the next.
        for key, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range),
                           ("volume", volume), ("wordgap", word_gap)):
            _check(lib.espeak_SetParameter(_PARAM[key], int(value), 0), f"set {key}")
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed(0)  # the noise source of breathy and whispered voices
        _ENGINE.chunks = []
        try:
            flags = _CHARS_UTF8 | (_SSML if ssml else 0)
            _check(lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, flags, None, None),
                   "espeak_Synth")
            _check(lib.espeak_Synchronize(), "espeak_Synchronize")
            chunks, sr = _ENGINE.chunks, _ENGINE.sample_rate
        finally:
            _ENGINE.chunks = []
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return (pcm.astype(np.float32) / 32768.0), sr


def synthesize_many(texts: Sequence[str], **params) -> list[tuple[np.ndarray, int]]:
    """:func:`synthesize` for each text with the same parameters (a convenience for batches)."""
    return [synthesize(t, **params) for t in texts]
