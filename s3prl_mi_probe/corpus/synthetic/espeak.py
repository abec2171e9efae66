"""A ctypes binding to the espeak-ng C library shipped by the ``espeakng-loader`` wheel.

Only what the synthetic corpus needs: synthesize one text with one voice and return the
audio with the synthesizer's own word and phoneme events (exact sample positions).
espeak-ng keeps global state, so a process should synthesize with one voice only.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_POSITION_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_PARAMETER_PITCH = 3


class EspeakUnavailable(RuntimeError):
    """The espeak-ng library or its data cannot be loaded."""


@dataclass(frozen=True)
class WordEvent:
    """Start of a word: its first sample and its 0-based character position in the text."""

    sample: int
    position: int


@dataclass(frozen=True)
class PhonemeEvent:
    """Start of a phoneme: its first sample, its IPA name ("" for a pause) and the index of
    the word event before it (-1 when none)."""

    sample: int
    name: str
    word: int


@dataclass(frozen=True)
class Synthesis:
    """Audio (int16 at ``sample_rate``) and the events of one synthesized text, in order."""

    samples: np.ndarray
    sample_rate: int
    words: list[WordEvent]
    phonemes: list[PhonemeEvent]


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position
        ("length", ctypes.c_int),  # characters, for word events
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # sample position in the synthesized audio
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Espeak:
    """The initialized library (synchronous output, IPA phoneme events) and the callback's buffers."""

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as error:
            raise EspeakUnavailable("espeak-ng is not installed: pip install espeakng-loader") from error
        library_path, self.data_path = espeakng_loader.get_library_path(), Path(espeakng_loader.get_data_path())
        try:
            self.library = ctypes.CDLL(library_path)
        except OSError as error:
            raise EspeakUnavailable(f"cannot load the espeak-ng library {library_path}: {error}") from error
        self._declare_signatures()
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_PHONEME_IPA
        data = str(self.data_path).encode()
        self.sample_rate = self.library.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, options)
        if self.sample_rate <= 0:
            raise EspeakUnavailable(f"espeak-ng failed to initialize with the data in {self.data_path}")
        self._callback = _SynthCallback(self._receive)  # kept referenced while the library may call it
        self.library.espeak_SetSynthCallback(self._callback)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, str]] = []  # type, sample, text position, phoneme

    def _declare_signatures(self):
        lib = self.library
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]

    def _receive(self, wav, num_samples, events) -> int:
        """The synth callback: keep the audio and the word and phoneme events; 0 continues synthesis."""
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type in (_EVENT_WORD, _EVENT_PHONEME):
                # an exception here would be swallowed by ctypes: a cut UTF-8 name shows as U+FFFD instead
                name = event.id.string.decode("utf-8", "replace") if event.type == _EVENT_PHONEME else ""
                self._events.append((event.type, event.sample, event.text_position, name))
            index += 1
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        return 0

    def set_voice(self, voice: str) -> None:
        """Select ``voice`` (``language[+variant]``, e.g. ``en-us+f3``); ValueError when espeak-ng lacks it."""
        language, _, variant = voice.partition("+")
        if variant and not (self.data_path / "voices" / "!v" / variant).is_file():
            raise ValueError(f"espeak-ng has no voice variant {variant!r} (in {voice!r})")
        if self.library.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {language!r}" + (f" (in {voice!r})" if variant else ""))

    def synthesize(self, text: str, rate: int, pitch: int, rand_seed: int) -> Synthesis:
        """Synthesize ``text`` with the selected voice and these settings."""
        self.library.espeak_SetParameter(_PARAMETER_RATE, rate, 0)
        self.library.espeak_SetParameter(_PARAMETER_PITCH, pitch, 0)
        self.library.espeak_ng_SetRandSeed(rand_seed)
        self._chunks, self._events = [], []
        encoded = text.encode("utf-8")
        status = self.library.espeak_Synth(
            encoded, len(encoded) + 1, 0, _POSITION_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != 0:
            raise RuntimeError(f"espeak-ng failed (status {status}) to synthesize {text!r}")
        words, phonemes = [], []
        for kind, sample, position, name in self._events:
            if kind == _EVENT_WORD:
                words.append(WordEvent(sample, position - 1))
            else:
                phonemes.append(PhonemeEvent(sample, name, len(words) - 1))
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        return Synthesis(samples, self.sample_rate, words, phonemes)


@cache
def _espeak() -> _Espeak:
    return _Espeak()


def check_voice(voice: str) -> None:
    """Raise ValueError when espeak-ng lacks ``voice``, EspeakUnavailable when it cannot be loaded."""
    _espeak().set_voice(voice)


def synthesize(text: str, voice: str, *, rate: int = 175, pitch: int = 50, rand_seed: int = 0) -> Synthesis:
    """Synthesize ``text`` (UTF-8, plain text) with ``voice`` at ``rate`` words/minute and ``pitch`` (0-100).

    ``rand_seed`` seeds espeak-ng's noise (breathy variants), so equal calls give equal audio
    in a process that uses one voice. Raises EspeakUnavailable when the library cannot be loaded.
    """
    espeak = _espeak()
    espeak.set_voice(voice)
    return espeak.synthesize(text, rate, pitch, rand_seed)
