"""Forced word alignment with pocketsphinx: offline, English, no download (its wheel ships the model).

The transcript's whitespace words are looked up in pocketsphinx's dictionary and aligned at 100 frames per
second. Some utterances fail with the default beams; those are retried once with very wide beams, which
is slower but rescues them. Words missing from the dictionary are an error that names them. A decoder
serves one utterance: reused after `set_align_text`, pocketsphinx 5.1 failed on about half of later
utterances that a fresh decoder aligns.
"""

from __future__ import annotations

import logging

import numpy as np

from ..speech.audio import duration_seconds, prepare_waveform
from .word_alignment import WordAlignment, normalise_words

logger = logging.getLogger(__name__)

_WIDE_BEAMS = {"beam": 1e-100, "wbeam": 1e-80, "pbeam": 1e-100}
_FRAME_RATE = 100  # pocketsphinx frames per second


class PocketsphinxAligner:
    sampling_rate = 16000

    def __init__(self):
        try:
            from pocketsphinx import Decoder
        except ImportError as error:
            raise RuntimeError("pocketsphinx is not installed: `pip install pocketsphinx`.") from error
        self._decoder_class = Decoder
        self._dictionary = Decoder(samprate=self.sampling_rate, lm=None, loglevel="FATAL")

    def _decode(self, words: list[str], pcm: bytes, **beams) -> list[tuple[float, float]] | None:
        # Dither (seeded, so alignments are reproducible): stretches of exact digital silence, as in
        # synthesized or edited audio, otherwise make the aligner stop before the last words.
        decoder = self._decoder_class(samprate=self.sampling_rate, lm=None, loglevel="FATAL", dither=True, seed=1,
                                      **beams)
        decoder.set_align_text(" ".join(words))
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        segments = decoder.seg() or []
        spans = [(s.start_frame, s.end_frame) for s in segments if not s.word.startswith(("<", "["))]
        if len(spans) != len(words):
            return None
        return [(start / _FRAME_RATE, (end + 1) / _FRAME_RATE) for start, end in spans]

    def align(self, waveform, sampling_rate: int, transcript: str) -> WordAlignment:
        """Times of the transcript's whitespace-separated words (as written) in `waveform`."""
        written = transcript.split()
        words = [normalise_words(w) for w in written]
        if any(len(w) != 1 for w in words):
            bad = [w for w, n in zip(written, words) if len(n) != 1]
            raise ValueError(f"Words {bad} have no letters or digits to align; remove them from the transcript.")
        words = [w[0] for w in words]
        missing = sorted({w for w in words if self._dictionary.lookup_word(w) is None})
        if missing:
            raise ValueError(
                f"pocketsphinx's dictionary lacks {missing}; spell them out (numbers as words) or use the CTC aligner."
            )
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        times = self._decode(words, pcm)
        if times is None:
            logger.info("pocketsphinx failed with default beams; retrying with wide beams")
            times = self._decode(words, pcm, **_WIDE_BEAMS)
        if times is None:
            raise RuntimeError(f"pocketsphinx could not align {transcript[:60]!r}, even with wide beams.")
        # Clipped to the original audio: resampling to 16 kHz can add a fraction of a sample, which would put the
        # last word's end just past the audio that its frames are counted in.
        duration = min(audio.size / self.sampling_rate, duration_seconds(waveform, sampling_rate))
        times = [(min(s, duration), min(e, duration)) for s, e in times]
        return WordAlignment(written, np.array(times))

