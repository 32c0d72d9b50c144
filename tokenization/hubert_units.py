"""HuBERT units: a chosen layer of a transformers `HubertModel` and k-means centroids (e.g. a `.npy` file).

The model comes from a local path or the Hub (HuBERT-base at 50 Hz, mHuBERT-25Hz at 25 Hz: the frame rate is
read from the model's convolution strides). Offline, pass a local directory; k-means centroids published as
`.npy` (or fitted here with `fit`) map each frame to a unit.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from transformers import HubertModel

from .audio import prepare_waveform
from .unit_extraction import KMeansUnitExtractor


class HubertUnitExtractor(KMeansUnitExtractor):
    kind = "hubert_kmeans"

    def __init__(self, model_name_or_path: str | os.PathLike, layer: int, num_units: int,
                 centroids: np.ndarray | str | os.PathLike | None = None):
        try:
            self.model = HubertModel.from_pretrained(model_name_or_path).eval()
        except OSError as error:
            raise ValueError(
                f"Could not load a HubertModel from {model_name_or_path!r} ({error}); offline, pass a local directory."
            ) from error
        config = self.model.config
        if not 1 <= layer <= config.num_hidden_layers:
            raise ValueError(f"layer must be in 1..{config.num_hidden_layers}, got {layer}.")
        self.model_name_or_path, self.layer = str(model_name_or_path), layer
        self.feature_size = config.hidden_size
        self.frame_rate = self.sampling_rate / math.prod(config.conv_stride)
        if isinstance(centroids, (str, os.PathLike)):
            centroids = np.load(centroids)
        super().__init__(num_units, centroids)

    def features(self, waveform, sampling_rate: int) -> np.ndarray:
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate)
        if self.model.config.feat_extract_norm == "layer":  # models trained on normalised input expect it
            audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        with torch.no_grad():
            outputs = self.model(torch.from_numpy(audio)[None], output_hidden_states=True)
        return outputs.hidden_states[self.layer][0].numpy().astype(np.float32)

    def config(self) -> dict:
        return {**super().config(), "model": self.model_name_or_path, "layer": self.layer}
