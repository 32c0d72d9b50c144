"""The offline default unit extractor: MFCC (+ deltas) features and k-means, as HuBERT's first iteration.

Needs no download: k-means is fitted on the user's own audio (scikit-learn), and the centroids are saved
next to the config. Frames are 25 ms windows every 20 ms, so units come at 50 Hz like HuBERT's. Features
come from transformers' `audio_utils` (mel spectrogram) and SciPy's DCT, not from hand-written DSP.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from scipy.fft import dct
from sklearn.cluster import KMeans
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

from .audio import prepare_waveform

CONFIG_FILE, CENTROIDS_FILE = "unit_extractor.json", "centroids.npy"


class MfccUnitExtractor:
    """Waveform in, unit ids out (50 per second)."""

    sampling_rate = 16000
    frame_rate = 50
    _window, _hop, _fft, _mels, _ceps = 400, 320, 512, 40, 13

    def __init__(self, num_units: int = 100, centroids: np.ndarray | None = None):
        if centroids is not None:
            centroids = np.asarray(centroids, dtype=np.float32)
            if centroids.shape != (num_units, 3 * self._ceps):
                raise ValueError(
                    f"Centroids of shape {centroids.shape} do not match {num_units} units of "
                    f"{3 * self._ceps}-dimensional MFCC + delta features."
                )
        self.num_units, self.centroids = num_units, centroids
        self._mel_filters = mel_filter_bank(
            num_frequency_bins=self._fft // 2 + 1, num_mel_filters=self._mels, min_frequency=20.0,
            max_frequency=self.sampling_rate / 2, sampling_rate=self.sampling_rate, norm=None, mel_scale="htk",
        )

    def features(self, waveform, sampling_rate: int) -> np.ndarray:
        """`(frames, 39)`: 13 MFCCs with deltas and delta-deltas, normalised per utterance."""
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate)
        log_mel = spectrogram(
            audio, window_function(self._window, "hann"), frame_length=self._window, hop_length=self._hop,
            fft_length=self._fft, power=2.0, mel_filters=self._mel_filters, log_mel="log", mel_floor=1e-10,
        )
        mfcc = dct(log_mel, type=2, axis=0, norm="ortho")[: self._ceps].T  # (frames, 13)
        delta = np.gradient(mfcc, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)
        delta2 = np.gradient(delta, axis=0) if len(mfcc) > 1 else np.zeros_like(mfcc)
        features = np.concatenate([mfcc, delta, delta2], axis=1)
        return ((features - features.mean(0)) / (features.std(0) + 1e-5)).astype(np.float32)

    def fit(self, waveforms, sampling_rate: int, seed: int = 0, max_frames: int = 200_000) -> MfccUnitExtractor:
        """Learn the units' centroids by k-means over the frames of `waveforms`."""
        frames = np.concatenate([self.features(w, sampling_rate) for w in waveforms])
        if len(frames) < self.num_units:
            raise ValueError(f"{len(frames)} frames cannot make {self.num_units} units; give more audio.")
        if len(frames) > max_frames:
            frames = frames[np.random.default_rng(seed).choice(len(frames), max_frames, replace=False)]
        kmeans = KMeans(n_clusters=self.num_units, n_init=1, random_state=seed).fit(frames)
        self.centroids = kmeans.cluster_centers_.astype(np.float32)
        return self

    def __call__(self, waveform, sampling_rate: int) -> np.ndarray:
        if self.centroids is None:
            raise ValueError("The extractor has no centroids: fit it on audio first, or load a fitted one.")
        features = self.features(waveform, sampling_rate)
        distances = (features**2).sum(1)[:, None] - 2 * features @ self.centroids.T + (self.centroids**2).sum(1)
        return distances.argmin(axis=1).astype(np.int64)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        if self.centroids is None:
            raise ValueError("Nothing to save: the extractor has not been fitted.")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"extractor": "mfcc_kmeans", "num_units": self.num_units, "sampling_rate": self.sampling_rate,
                  "frame_rate": self.frame_rate}
        for name, write in ((CENTROIDS_FILE, lambda f: np.save(f, self.centroids)),
                            (CONFIG_FILE, lambda f: f.write(json.dumps(config, indent=2).encode()))):
            with tempfile.NamedTemporaryFile(dir=directory, delete=False) as handle:
                write(handle)
            os.replace(handle.name, directory / name)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> MfccUnitExtractor:
        directory = Path(directory)
        config = json.loads((directory / CONFIG_FILE).read_text())
        if config.get("extractor") != "mfcc_kmeans":
            raise ValueError(f"{directory} holds a {config.get('extractor')!r} extractor, not mfcc_kmeans.")
        return cls(config["num_units"], np.load(directory / CENTROIDS_FILE))
