"""`SpeechTextProcessor`: audio, transcripts and word alignments in, model inputs (with word spans) out.

It joins a unit feature extractor (`UnitFeatureExtractor`, the transformers face of a k-means unit
extractor) and the `SpeechUnitTextTokenizer`, as a transformers `ProcessorMixin`: `save_pretrained` /
`from_pretrained` and `AutoProcessor` handle it like any speech model's processor.
"""

from __future__ import annotations

import numpy as np
from transformers import BatchEncoding, ProcessorMixin

from .alignment.word_alignment import WordAlignment
from .feature_extraction_units import UnitFeatureExtractor
from .segments import SpeechSegment
from .speech.audio import duration_seconds
from .speech.unit_extraction import KMeansUnitExtractor

ORDERS = ("speech_first", "text_first")


class SpeechTextProcessor(ProcessorMixin):
    def __init__(self, feature_extractor: UnitFeatureExtractor | KMeansUnitExtractor, tokenizer, **kwargs):
        """`feature_extractor` may also be a fitted `KMeansUnitExtractor` (`lst units fit`), wrapped here."""
        if isinstance(feature_extractor, KMeansUnitExtractor):
            feature_extractor = UnitFeatureExtractor.from_unit_extractor(feature_extractor)
        if feature_extractor.num_units != tokenizer.num_units:
            raise ValueError(
                f"The extractor makes {feature_extractor.num_units} units but the tokenizer has "
                f"{tokenizer.num_units}; train the tokenizer for this extractor's units."
            )
        super().__init__(feature_extractor, tokenizer, **kwargs)

    @property
    def extractor(self) -> KMeansUnitExtractor:
        return self.feature_extractor.unit_extractor

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """ProcessorMixin's save, plus the feature extractor's own `preprocessor_config.json`: transformers v5
        writes a processor's feature extractor only inside `processor_config.json`, which `AutoFeatureExtractor`
        does not read."""
        saved = super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        self.feature_extractor.save_pretrained(save_directory)
        return saved

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
                self._speech_segment(u, duration_seconds(a, sampling_rate), alignments[i] if alignments else None,
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


def _is_audio_batch(audio) -> bool:
    if isinstance(audio, (list, tuple)):
        return len(audio) > 0 and np.ndim(audio[0]) >= 1
    return False
