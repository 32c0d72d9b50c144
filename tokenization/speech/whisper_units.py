"""Whisper-encoder units: a Whisper encoder layer's states (50 per second, `whisper_encoder`) and k-means
centroids. Any layer of a CTranslate2 Whisper folder (the default `whisper`: tiny.en, offline) or of a
transformers Whisper checkpoint."""

from __future__ import annotations

import os

import numpy as np

from .unit_extraction import KMeansUnitExtractor, check_placement
from .whisper_encoder import WhisperEncoderStates
from .whisper_models import DEFAULT_WHISPER


class WhisperUnitExtractor(KMeansUnitExtractor):
    kind = "whisper_kmeans"
    frame_rate = 50

    def __init__(self, model: str | os.PathLike = DEFAULT_WHISPER, layer: int | None = None, num_units: int = 100,
                 centroids: np.ndarray | str | os.PathLike | None = None, batch_size: int = 8):
        self.model_name = os.fspath(model)
        self._states = WhisperEncoderStates(model, layer, batch_size)
        self.layer, self.feature_size = self._states.layer, self._states.width
        if isinstance(centroids, (str, os.PathLike)):
            centroids = np.load(centroids)
        super().__init__(num_units, centroids)

    def batch_features(self, waveforms, sampling_rate: int) -> list[np.ndarray]:
        return self._states.batch_states(waveforms, sampling_rate)

    def features(self, waveform, sampling_rate: int) -> np.ndarray:
        return self.batch_features([waveform], sampling_rate)[0]

    def to(self, device: str = "cpu", dtype: str = "fp32") -> WhisperUnitExtractor:
        check_placement(device, dtype)
        if device != "cpu" or dtype != "fp32":
            raise ValueError("The Whisper unit extractor runs its encoder on the CPU in fp32 here.")
        return self

    def config(self) -> dict:
        return {**super().config(), "model": self.model_name, "layer": self.layer}

    @classmethod
    def from_config(cls, config: dict, centroids: np.ndarray) -> WhisperUnitExtractor:
        return cls(config["model"], config["layer"], config["num_units"], centroids)
