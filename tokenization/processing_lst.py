"""`SpeechTextProcessor`: audio, transcripts and word alignments in, model inputs (with word spans) out.

It joins a unit extractor and the `SpeechUnitTextTokenizer`, as transformers' processors join a feature
extractor and a tokenizer. It is not a `ProcessorMixin`: that class saves and loads its parts through
transformers' feature-extractor classes, and a k-means unit extractor (centroids + an optional SSL model)
is not one. `save_pretrained` / `from_pretrained` keep both parts in one directory instead.
"""

from __future__ import annotations

import os

import numpy as np
from transformers import BatchEncoding

from .alignment import WordAlignment
from .segments import SpeechSegment
from .tokenization_speech_unit_text import SpeechUnitTextTokenizer
from .unit_extraction import KMeansUnitExtractor, load_unit_extractor

ORDERS = ("speech_first", "text_first")


class SpeechTextProcessor:
    def __init__(self, extractor: KMeansUnitExtractor, tokenizer: SpeechUnitTextTokenizer):
        if extractor.num_units != tokenizer.num_units:
            raise ValueError(
                f"The extractor makes {extractor.num_units} units but the tokenizer has {tokenizer.num_units}; "
                "train the tokenizer for this extractor's units."
            )
        self.extractor, self.tokenizer = extractor, tokenizer

    def __call__(self, audio=None, sampling_rate: int | None = None, text=None, alignment=None,
                 order: str = "speech_first", **tokenizer_kwargs) -> BatchEncoding:
        """Encode speech, text, or both (concatenated, CST style, in `order`), for one example or a batch.

        `audio` is a waveform (or a list of them) at `sampling_rate`; `text` a string (or a list);
        `alignment` a `WordAlignment` (or a list) of the audio's words. With an alignment, the speech carries
        word spans (`word_spans` in the output, in token positions); with text too, the alignment must match
        it. Tokenizer arguments (`padding`, `return_tensors`, ...) pass through.
        """
        if audio is None and text is None:
            raise ValueError("Give audio, text, or both.")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}.")
        batched = isinstance(text, (list, tuple)) if audio is None else _is_audio_batch(audio)
        audios = (audio if batched else [audio]) if audio is not None else None
        texts = (text if batched else [text]) if text is not None else None
        alignments = (alignment if batched else [alignment]) if alignment is not None else None
        size = len(audios if audios is not None else texts)
        for name, values in (("text", texts), ("alignment", alignments)):
            if values is not None and len(values) != size:
                raise ValueError(f"{size} examples of audio but {len(values)} of {name}.")
        if alignments is not None and audios is None:
            raise ValueError("An alignment needs the audio it aligns.")

        speech = [None] * size
        if audios is not None:
            if sampling_rate is None:
                raise ValueError("Pass sampling_rate with the audio; it is resampled to the extractor's rate.")
            units = self.extractor.batch(audios, sampling_rate)
            speech = [
                self._speech_segment(u, np.shape(a)[0] / sampling_rate, alignments[i] if alignments else None,
                                     texts[i] if texts else None)
                for i, (u, a) in enumerate(zip(units, audios))
            ]
        sequences = []
        for index in range(size):
            parts = [p for p in (speech[index], texts[index] if texts else None) if p is not None]
            sequences.append(parts if order == "speech_first" else parts[::-1])
        return self.tokenizer(segments=sequences if batched else sequences[0], **tokenizer_kwargs)

    def _speech_segment(self, units: np.ndarray, duration: float, alignment: WordAlignment | None,
                        text: str | None):
        if alignment is None:
            return units
        if text is not None:
            alignment.check_transcript(text)
        return SpeechSegment(units, alignment.frame_spans(self.extractor.frame_rate, len(units), duration))

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        self.tokenizer.save_pretrained(directory)
        self.extractor.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> SpeechTextProcessor:
        return cls(load_unit_extractor(directory), SpeechUnitTextTokenizer.from_pretrained(directory))


def _is_audio_batch(audio) -> bool:
    if isinstance(audio, (list, tuple)):
        return len(audio) > 0 and np.ndim(audio[0]) >= 1
    return False
