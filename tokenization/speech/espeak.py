"""Offline text-to-speech with ground-truth word times, from libespeak-ng.

espeak-ng's command line writes audio only; its library reports, through the synthesis callback, a WORD
event with each word's character range and start time (ms). That makes synthesized speech a corpus with
exact word alignments, for tests, demos and spoken benchmarks. Words are returned as espeak segmented them
(it sometimes reads two short words as one, "In the"), so words and times correspond one to one. A word ends
where the next begins, except for trailing low-energy frames, which are left to the pause between them.
PHONEME events give each phoneme's start (kept per word in `phonemes`: phone labels for unit-quality scores);
`character_times.letters_from_phonemes` turns them into the start time of each character of each word, which
BPE-aligned patching cuts words at.
Install the library with `apt-get install espeak-ng`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from dataclasses import dataclass

import numpy as np

from .character_times import letters_from_phonemes

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
_INITIALIZE_PHONEME_EVENTS = 0x0001
_MODIFIERS = (";", "'", ",", "#")  # PHONEME events that mark a property of a neighbour
_PARAMETER_RATE = 1
_POSITION_CHARACTER = 1
_CHARS_UTF8 = 1
_SILENCE_RMS = 0.01  # of full scale: quieter 10 ms frames at a word's end count as pause


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class SynthesizedSpeech:
    waveform: np.ndarray  # float32 in [-1, 1], mono
    sampling_rate: int
    words: list[str]
    word_times: np.ndarray  # (words, 2) start and end in seconds
    character_times: list[np.ndarray]  # per word, each character's start in seconds
    phonemes: list[list[tuple[float, str]]]  # per word, espeak's phonemes: (start in seconds, mnemonic)


class EspeakSynthesizer:
    """Synthesizes English (or any espeak voice) with word times. One library instance serves the process."""

    _library = None
    _sampling_rate = 0
    _lock = threading.Lock()

    def __init__(self, voice: str = "en-us", words_per_minute: int = 150):
        with self._lock:
            if EspeakSynthesizer._library is None:
                path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
                try:
                    library = ctypes.CDLL(path)
                except OSError as error:
                    raise RuntimeError(
                        "libespeak-ng is not installed; install it with `apt-get install espeak-ng`."
                    ) from error
                EspeakSynthesizer._sampling_rate = library.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                                                                 _INITIALIZE_PHONEME_EVENTS)
                if EspeakSynthesizer._sampling_rate <= 0:
                    raise RuntimeError("libespeak-ng failed to initialise (is espeak-ng-data installed?).")
                EspeakSynthesizer._library = library
        self.voice, self.words_per_minute = voice, words_per_minute
        self.sampling_rate = EspeakSynthesizer._sampling_rate

    def synthesize(self, text: str) -> SynthesizedSpeech:
        if not text or not re.search(r"\w", text):
            raise ValueError(f"Nothing to speak in {text!r}.")
        encoded = text.encode("utf-8")
        chunks: list[np.ndarray] = []
        starts: list[tuple[int, float]] = []  # (character position, seconds)
        phonemes: list[tuple[int, float, str]] = []  # (its word's character position, seconds, name)

        def on_audio(samples, count, events):
            if count > 0:
                chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
            index = 0
            while events[index].type != _EVENT_LIST_TERMINATED:
                event = events[index]
                if event.type == _EVENT_WORD:
                    starts.append((event.text_position - 1, event.audio_position / 1000.0))
                elif event.type == _EVENT_PHONEME:
                    name = event.id.string.decode("ascii", "replace")
                    if name and not name.startswith("_") and name not in _MODIFIERS:  # pauses and modifiers
                        phonemes.append((event.text_position - 1, event.audio_position / 1000.0, name))
                index += 1
            return 0

        callback = _Callback(on_audio)
        library = EspeakSynthesizer._library
        with self._lock:
            if library.espeak_SetVoiceByName(self.voice.encode()) != 0:
                raise ValueError(f"espeak has no voice {self.voice!r}; see `espeak-ng --voices`.")
            library.espeak_SetParameter(_PARAMETER_RATE, self.words_per_minute, 0)
            library.espeak_SetSynthCallback(callback)
            status = library.espeak_Synth(encoded, len(encoded) + 1, 0, _POSITION_CHARACTER, 0, _CHARS_UTF8, None, None)
            library.espeak_Synchronize()
        if status != 0 or not chunks:
            raise RuntimeError(f"espeak failed to synthesize {text[:40]!r} (status {status}).")
        waveform = np.concatenate(chunks).astype(np.float32) / 32768.0
        return self._with_word_times(text, waveform, starts, phonemes)

    def _with_word_times(self, text, waveform, starts, phonemes) -> SynthesizedSpeech:
        """One word per WORD event: the text from its start to the next event's, so words espeak reads
        together ("In the") stay together and no text is lost."""
        duration = waveform.size / self.sampling_rate
        # After a multi-sentence text, espeak-ng 1.51 sometimes repeats an earlier word's character position
        # in a later event ("Let", "there be", then "Let" again for "light"). Such events would duplicate
        # text, so only events that move forward in the text are kept; their words merge with the previous.
        # Positions can also land one character into a word ("s", "uch as"); they snap back to the word's start.
        monotonic = []
        for position, start in starts:
            while 0 < position < len(text) and not text[position - 1].isspace():
                position -= 1
            if not monotonic or (position > monotonic[-1][0] and start >= monotonic[-1][1]):
                monotonic.append((position, start))
        starts = monotonic
        words, times, word_phonemes = [], [], []
        for index, (position, start) in enumerate(starts):
            following = starts[index + 1][0] if index + 1 < len(starts) else len(text)
            word = " ".join(text[position:following].split()).strip(".,;:!?\"'()[]")
            if not word:
                continue
            end = starts[index + 1][1] if index + 1 < len(starts) else duration
            words.append(word)
            times.append([start, max(start, min(end, duration))])
            # by time, not by text position: a dropped event's phonemes carry an earlier word's position
            word_phonemes.append([(t, name) for _, t, name in phonemes if start <= t < end or (t == end == duration)])
        times = np.asarray(times, dtype=np.float64).reshape(-1, 2)
        times[:, 1] = [self._trim_pause(waveform, s, e) for s, e in times]
        character_times = []
        for word, (start, end), owned in zip(words, times, word_phonemes):
            phoneme_starts = np.clip([t for t, _ in owned], start, end)
            character_times.append(letters_from_phonemes(word, [n for _, n in owned], phoneme_starts, end))
        return SynthesizedSpeech(waveform, self.sampling_rate, words, times, character_times, word_phonemes)

    def _trim_pause(self, waveform: np.ndarray, start: float, end: float) -> float:
        """Move a word's end back over trailing quiet 10 ms frames (keeping at least one frame)."""
        frame = self.sampling_rate // 100
        first, last = int(start * self.sampling_rate), int(end * self.sampling_rate)
        while last - frame > first + frame:
            tail = waveform[last - frame : last]
            if np.sqrt(np.mean(tail**2)) >= _SILENCE_RMS:
                break
            last -= frame
        return max(start, last / self.sampling_rate)  # sample truncation must not end a word before it starts
