"""Offline spoken corpora: text -> espeak-ng speech with exact word times -> units -> `datasets` rows.

Rows are `{id, text, words, units, word_spans, character_starts}` with word spans in unit frames and, per
word, the frame where each of its characters starts (from espeak's phoneme times; what BPE-aligned patching
cuts words at): the schema the pretraining data builders and the evaluation runners read. The built-in sample speaks King James verses (public domain,
installed with the package), fitting the MFCC k-means extractor on the first part of the corpus.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import datasets
from tqdm.auto import tqdm

from ..alignment.word_alignment import word_times_to_frame_spans
from ..speech.character_times import character_frames
from ..speech.espeak import EspeakSynthesizer
from ..speech.mfcc_units import MfccUnitExtractor
from .sample_text import kjv_verses

logger = logging.getLogger(__name__)

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "text": datasets.Value("string"),
        "words": datasets.Sequence(datasets.Value("string")),
        "units": datasets.Sequence(datasets.Value("int32")),
        "word_spans": datasets.Sequence(datasets.Sequence(datasets.Value("int32"), length=2)),
        "character_starts": datasets.Sequence(datasets.Sequence(datasets.Value("int32"))),
    }
)


def speak(texts: Iterable[str], synthesizer: EspeakSynthesizer, extractor, ids=None, progress: bool = True):
    """Rows for `texts` (a generator, so corpora larger than memory can stream into Arrow)."""
    texts = list(texts)
    ids = ids or [f"utt{index:06d}" for index in range(len(texts))]
    for identifier, text in tqdm(list(zip(ids, texts)), desc="speaking", disable=not progress, unit="utt"):
        speech = synthesizer.synthesize(text)
        units = extractor(speech.waveform, speech.sampling_rate)
        duration = speech.waveform.size / speech.sampling_rate
        spans = word_times_to_frame_spans(speech.word_times, extractor.frame_rate, len(units), duration)
        yield {"id": identifier, "text": text, "words": speech.words, "units": units.tolist(),
               "word_spans": spans.tolist(),
               "character_starts": character_frames(speech.character_times, spans, extractor.frame_rate)}


def build_spoken_corpus(texts, synthesizer, extractor, ids=None, progress: bool = True) -> datasets.Dataset:
    rows = list(speak(texts, synthesizer, extractor, ids, progress))
    return datasets.Dataset.from_list(rows, features=FEATURES)


def spoken_corpus_from_texts(
    texts: list[str], num_units: int = 100, fit_utterances: int = 300, seed: int = 0, progress: bool = True,
) -> tuple[datasets.Dataset, MfccUnitExtractor]:
    """Speak `texts`, with an MFCC k-means extractor of `num_units` units fitted on the first
    `fit_utterances` of them."""
    synthesizer = EspeakSynthesizer()
    fit_audio = [synthesizer.synthesize(t).waveform for t in texts[:fit_utterances]]
    extractor = MfccUnitExtractor(num_units).fit(fit_audio, synthesizer.sampling_rate, seed=seed)
    logger.info("fitted %d units on %d utterances", num_units, len(fit_audio))
    return build_spoken_corpus(texts, synthesizer, extractor, progress=progress), extractor


def sample_spoken_corpus(
    num_utterances: int = 2000, num_units: int = 100, max_words: int = 30, fit_utterances: int = 300,
    seed: int = 0, progress: bool = True,
) -> tuple[datasets.Dataset, MfccUnitExtractor]:
    """The built-in corpus: the first `num_utterances` KJV verses of at most `max_words` words, spoken."""
    texts = [v for v in kjv_verses() if len(v.split()) <= max_words][:num_utterances]
    return spoken_corpus_from_texts(texts, num_units, fit_utterances, seed, progress)
