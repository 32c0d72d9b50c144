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

_RATE, _WINDOW, _HOP, _FFT, _MELS, _CEPS = 16000, 400, 320, 512, 40, 13
_MEL_FILTERS = mel_filter_bank(num_frequency_bins=_FFT // 2 + 1, num_mel_filters=_MELS, min_frequency=20.0,
                               max_frequency=_RATE / 2, sampling_rate=_RATE, norm=None, mel_scale="htk")


def mfcc_features(waveform, sampling_rate: int, hop_length: int = _HOP) -> np.ndarray:
    """`(frames, 39)`: 13 MFCCs with deltas and delta-deltas from 25 ms windows every `hop_length` samples at
    16 kHz, normalised per utterance (mean 0, variance 1 per dimension)."""
    audio = prepare_waveform(waveform, sampling_rate, _RATE, min_samples=_WINDOW)
    log_mel = spectrogram(
        audio, window_function(_WINDOW, "hann"), frame_length=_WINDOW, hop_length=hop_length, fft_length=_FFT,
        power=2.0, mel_filters=_MEL_FILTERS, log_mel="log", mel_floor=1e-10,
    )
    mfcc = dct(log_mel, type=2, axis=0, norm="ortho")[:_CEPS].T  # (frames, 13)
    delta = np.gradient(mfcc, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)
    delta2 = np.gradient(delta, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)
    features = np.concatenate([mfcc, delta, delta2], axis=1)
    return ((features - features.mean(0)) / (features.std(0) + 1e-5)).astype(np.float32)


class MfccUnitExtractor(KMeansUnitExtractor):
    """Waveform in, unit ids out (50 per second)."""

    kind = "mfcc_kmeans"
    feature_size = 39

    def features(self, waveform, sampling_rate: int) -> np.ndarray:
        """`(frames, 39)`: 13 MFCCs with deltas and delta-deltas, normalised per utterance."""
        return mfcc_features(waveform, sampling_rate, _HOP)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> MfccUnitExtractor:
        extractor = load_unit_extractor(directory)
        if not isinstance(extractor, cls):
            raise ValueError(f"{directory} holds a {extractor.kind!r} extractor, not {cls.kind}.")
        return extractor
