"""Transcribers: audio (or speech units, through a vocoder) in, text out, offline.

- `PocketsphinxTranscriber`: pocketsphinx's English acoustic model, dictionary and language model, which ship
  in its wheel (no download); an independent recogniser for vocoded speech. Another ARPA/binary LM or
  dictionary can be passed.
- `PipelineTranscriber`: any transformers speech recogniser (`Wav2Vec2ForCTC`, Whisper, ...) by local path or
  repo id, through the library's automatic-speech-recognition pipeline.
- `UnitSpeaker`: units an LM wrote -> `UnitHifiGanVocoder` -> a waveform; `UnitTranscriber`: that, then a
  transcriber; what PELM and TTS scoring need to score speech.

Audio at another sampling rate is resampled (soxr) and the conversion logged. A transcriber that hears no
words returns "" (PELM counts those as `num_empty`, and error rates count every reference word as deleted);
nothing is dropped silently.
"""

from __future__ import annotations

import logging

import numpy as np

from lst_speech.tokenization.speech.audio import prepare_waveform
from lst_speech.tokenization.unit_pieces import deduplicate_units

logger = logging.getLogger(__name__)


class PocketsphinxTranscriber:
    sampling_rate = 16000

    def __init__(self, language_model: str | None = None, dictionary: str | None = None):
        try:
            from pocketsphinx import Decoder
        except ImportError as error:
            raise RuntimeError("pocketsphinx is not installed: `pip install pocketsphinx`.") from error
        options = {key: value for key, value in (("lm", language_model), ("dict", dictionary)) if value}
        # seeded dither: exact digital silence (synthesized or vocoded audio) otherwise derails the decoder
        self._decoder = Decoder(samprate=self.sampling_rate, loglevel="FATAL", dither=True, seed=1, **options)

    def __call__(self, waveform, sampling_rate: int) -> str:
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr.strip() if hypothesis is not None else ""


class PipelineTranscriber:
    """A transformers ASR model (CTC or sequence-to-sequence) by path or repo id."""

    def __init__(self, model: str, device: str | int | None = None, **pipeline_kwargs):
        from transformers import pipeline

        self._pipeline = pipeline("automatic-speech-recognition", model=model, device=device, **pipeline_kwargs)
        self.sampling_rate = self._pipeline.feature_extractor.sampling_rate

    def __call__(self, waveform, sampling_rate: int) -> str:
        # resampled here: the pipeline's own resampling needs torchaudio, which this package never requires
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate)
        return self._pipeline({"raw": audio, "sampling_rate": self.sampling_rate})["text"].strip()


def load_transcriber(name: str, **kwargs):
    """'pocketsphinx', or a transformers speech recogniser's path or repo id."""
    if name == "pocketsphinx":
        return PocketsphinxTranscriber(**kwargs)
    return PipelineTranscriber(name, **kwargs)


class UnitSpeaker:
    """Units an LM wrote -> waveform, through a `UnitHifiGanVocoder`: a callable from a unit array to samples at
    `sampling_rate`.

    `units_are_deduplicated` says what the LM generates (its tokenizer's `deduplicate_units`). Frame-level units
    fed to a vocoder of deduplicated units are collapsed into their runs, whose lengths are the true durations;
    deduplicated units fed to a frame-level vocoder cannot be given their durations back, and are refused.
    """

    def __init__(self, vocoder, units_are_deduplicated: bool = False):
        if units_are_deduplicated and not vocoder.config.deduplicated:
            raise ValueError("The LM writes deduplicated units but this vocoder reads one unit per frame: train a "
                             "vocoder with --deduplicated true, which predicts the durations.")
        self.vocoder = vocoder
        self.sampling_rate = vocoder.config.sampling_rate
        self.collapse_runs = vocoder.config.deduplicated and not units_are_deduplicated

    def __call__(self, units) -> np.ndarray:
        units = np.asarray(units)
        if units.size == 0:
            raise ValueError("An empty speech continuation has no audio; the model generated no units.")
        durations = None
        if self.collapse_runs:
            units, durations = deduplicate_units(units)
        return self.vocoder.synthesize(units, durations)


class UnitTranscriber:
    """Speech units -> waveform (`UnitSpeaker`) -> text (the transcriber): a callable from a unit array to text."""

    def __init__(self, vocoder, transcriber, units_are_deduplicated: bool = False):
        self.speaker, self.transcriber = UnitSpeaker(vocoder, units_are_deduplicated), transcriber

    def __call__(self, units) -> str:
        return self.transcriber(self.speaker(units), self.speaker.sampling_rate)
