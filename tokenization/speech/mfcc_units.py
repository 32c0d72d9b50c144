"""The offline default unit extractor: MFCC (+ deltas) features and k-means, as HuBERT's first iteration.

Needs no download: k-means is fitted on the user's own audio (scikit-learn), and the centroids are saved
next to the config. Frames are 25 ms windows every 20 ms, so units come at 50 Hz like HuBERT's. Features
come from transformers' `audio_utils` (mel spectrogram) and SciPy's DCT, not from hand-written DSP.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.fft import dct
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

from .audio import prepare_waveform
from .unit_extraction import KMeansUnitExtractor, load_unit_extractor


class MfccUnitExtractor(KMeansUnitExtractor):
    """Waveform in, unit ids out (50 per second)."""

    kind = "mfcc_kmeans"
    feature_size = 39
    _window, _hop, _fft, _mels, _ceps = 400, 320, 512, 40, 13

    def __init__(self, num_units: int = 100, centroids: np.ndarray | None = None):
        super().__init__(num_units, centroids)
        self._mel_filters = mel_filter_bank(
            num_frequency_bins=self._fft // 2 + 1, num_mel_filters=self._mels, min_frequency=20.0,
            max_frequency=self.sampling_rate / 2, sampling_rate=self.sampling_rate, norm=None, mel_scale="htk",
        )

    def features(self, waveform, sampling_rate: int) -> np.ndarray:
        """`(frames, 39)`: 13 MFCCs with deltas and delta-deltas, normalised per utterance."""
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate, min_samples=self._window)
        log_mel = spectrogram(
            audio, window_function(self._window, "hann"), frame_length=self._window, hop_length=self._hop,
            fft_length=self._fft, power=2.0, mel_filters=self._mel_filters, log_mel="log", mel_floor=1e-10,
        )
        mfcc = dct(log_mel, type=2, axis=0, norm="ortho")[: self._ceps].T  # (frames, 13)
        delta = np.gradient(mfcc, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)
        delta2 = np.gradient(delta, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)
        features = np.concatenate([mfcc, delta, delta2], axis=1)
        return ((features - features.mean(0)) / (features.std(0) + 1e-5)).astype(np.float32)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> MfccUnitExtractor:
        extractor = load_unit_extractor(directory)
        if not isinstance(extractor, cls):
            raise ValueError(f"{directory} holds a {extractor.kind!r} extractor, not {cls.kind}.")
        return extractor
