"""Forced word alignment in any language espeak-ng speaks: synthesize the transcript, warp it onto the recording.

The approach of the aeneas tool (TTS + DTW): espeak-ng reads the transcript and reports its own word times
(`EspeakSynthesizer`); MFCCs of both voices (13 + deltas, every 10 ms, mean/variance normalised per utterance so
that the speakers' differences in level and timbre weigh less; compared by cosine distance) are matched by
dynamic time warping (dtaidistance's C implementation, in a band around the diagonal: memory stays near 300 MB
for the longest, 85 s, Asterisk prompt), and each espeak word boundary is carried along the warping path onto
the recording's time axis. No acoustic model of the language is needed, only espeak's voice for it.

The synthesized speech is padded with 0.2 s of faint noise at both ends, so the recording's leading and trailing
pauses have pause frames to warp onto instead of being charged to the first and last words. dtaidistance's
step pattern favours diagonal steps, so a pause much shorter or longer than the pad pulls the first or last
word's edge: on the Asterisk prompts (pauses of 20-60 ms) first words start a median 10 ms late and last words
end a median 70 ms early, against where the audio's level rises and falls. (Pads fitted to each recording's
measured pauses did better there but moved mary.wav's words by 300 ms when the level threshold changed by 5 dB.)
A start maps to the first recording frame warped to or after it, an end to the last frame warped before it, so a
pause that the recording holds longer than espeak falls between words. Transcript tokens with no letter or
digit (a lone dash, `[@]`) are not spoken: they are not synthesized and get no time.

DTW always finds a path: a transcript that is not what was said gives wrong times, not an error. Only a gross
mismatch of lengths is refused (the recording and the padded synthesis more than 4 times apart: the Italian list's
unbracketed "un suono di beep ascendente" is one).
"""

from __future__ import annotations

import numpy as np
from dtaidistance import dtw_ndim

from ..speech.audio import duration_seconds, prepare_waveform
from ..speech.espeak import EspeakSynthesizer
from ..speech.mfcc_units import mfcc_features
from .word_alignment import WordAlignment, normalise_words

_HOP_SECONDS = 0.01  # not the units' 20 ms: a coarser grid would add its rounding to every boundary
_PAD_SECONDS = 0.2  # see above: one pad for every recording, not fitted to it
_PAD_NOISE = 1e-4  # of full scale: espeak's digital silence would otherwise sit at the log floor
_MAX_LENGTH_RATIO = 4.0
_BAND_SECONDS = 1.5  # the warping band beyond the length difference, plus a fifth of the longer input


class EspeakDtwAligner:
    """`EspeakDtwAligner("fr")`: `language` is an espeak-ng voice name ("en-us", "es-419", "fr", "it", "ru")."""

    sampling_rate = 16000

    def __init__(self, language: str, words_per_minute: int = 150):
        self.language = language
        self._synthesizer = EspeakSynthesizer(language, words_per_minute)
        try:
            self._synthesizer.synthesize("1")
        except ValueError as error:
            raise ValueError(f"espeak-ng has no voice {language!r} for the espeak-dtw aligner; `espeak-ng --voices` "
                             "lists the languages it speaks.") from error

    def _mfcc(self, audio: np.ndarray) -> np.ndarray:
        """Frames scaled to unit length: DTW's squared distance between them is then the cosine distance, which
        put word boundaries closer than the plain distance did on mary.wav / bobby.wav
        (`benchmarks/human_alignment_error.py`) and at the Asterisk prompts' edges, and as close on espeak's voices."""
        features = mfcc_features(audio, self.sampling_rate, int(_HOP_SECONDS * self.sampling_rate)).astype(np.float64)
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-9)

    def align(self, waveform, sampling_rate: int, transcript: str) -> WordAlignment:
        """Times of the transcript's whitespace-separated words (as written) that hold a letter or digit."""
        written = [w for w in transcript.split() if normalise_words(w)]
        if not written:
            raise ValueError(f"{transcript[:60]!r} has no word to align.")
        speech = self._synthesizer.synthesize(" ".join(written))
        synthesized = prepare_waveform(speech.waveform, speech.sampling_rate, self.sampling_rate)
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate)
        duration = min(audio.size / self.sampling_rate, duration_seconds(waveform, sampling_rate))
        synthesized = np.pad(synthesized, int(_PAD_SECONDS * self.sampling_rate))
        ratio = duration / (synthesized.size / self.sampling_rate)
        if not 1 / _MAX_LENGTH_RATIO <= ratio <= _MAX_LENGTH_RATIO:
            raise RuntimeError(f"the recording lasts {ratio:.1f} times espeak's padded reading of "
                               f"{transcript[:60]!r}: is it the transcript of this audio?")
        noise = np.random.default_rng(0).normal(0.0, _PAD_NOISE, synthesized.size)
        synthesized = synthesized + noise.astype(np.float32)
        boundaries = _word_times(written, speech) + _PAD_SECONDS
        path = self._warp(self._mfcc(audio), self._mfcc(synthesized))
        return WordAlignment(written, _carry(boundaries, path, duration))

    def _warp(self, recorded: np.ndarray, synthesized: np.ndarray) -> np.ndarray:
        """`(steps, 2)` frame pairs (recording, synthesis) of the cheapest monotone warping path."""
        band = int((_BAND_SECONDS / _HOP_SECONDS) + max(len(recorded), len(synthesized)) / 5)
        return np.asarray(dtw_ndim.warping_path(recorded, synthesized, window=band, use_c=True))


def _word_times(written: list[str], speech) -> np.ndarray:
    """`(words, 2)` times of the written words in espeak's reading. espeak sometimes reads several words as one
    ("In the"); those are split where the character times say the next word starts."""
    times = []
    for word, (start, end), characters in zip(speech.words, speech.word_times, speech.character_times):
        offsets = [i for i, c in enumerate(word) if c != " " and (i == 0 or word[i - 1] == " ")]
        starts = [start] + [float(characters[i]) for i in offsets[1:]]
        times += [(s, e) for s, e in zip(starts, starts[1:] + [end])]
    if len(times) != len(written):
        raise RuntimeError(f"espeak read {len(times)} words in {' '.join(written)[:60]!r}, which has "
                           f"{len(written)}.")
    return np.array(times, dtype=np.float64).reshape(-1, 2)


def _carry(boundaries: np.ndarray, path: np.ndarray, duration: float) -> np.ndarray:
    """Synthesis times -> recording times through the path: a start goes to the first recording frame warped to
    or after it, an end to just after the last frame warped before it; overlaps from steps that warp one
    recording frame to both sides of a boundary are given to the earlier word."""
    recorded, synthesized = path[:, 0], path[:, 1]
    frames = np.rint(boundaries / _HOP_SECONDS).astype(np.int64)
    times, previous_end = [], 0.0
    for first, last in frames:
        start = recorded[synthesized >= min(first, synthesized[-1])].min() * _HOP_SECONDS
        before = recorded[synthesized < last]
        end = (before.max() + 1 if before.size else recorded[0] + 1) * _HOP_SECONDS
        start = min(max(start, previous_end), duration)
        end = min(max(end, start), duration)
        times.append((start, end))
        previous_end = end
    return np.array(times)
