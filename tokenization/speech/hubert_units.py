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

from .audio import feature_encoder_receptive_field, prepare_waveform
from .unit_extraction import KMeansUnitExtractor, check_placement


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

    def to(self, device: str = "cpu", dtype: str = "fp32") -> HubertUnitExtractor:
        """The model on `device` in `dtype` (bf16 halves its memory and, on a GPU, runs on the tensor cores);
        features come back as fp32 for the k-means assignment."""
        check_placement(device, dtype)
        self.model.to(device=device, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
        return self

    def _hidden(self, inputs: torch.Tensor, attention_mask: torch.Tensor | None = None) -> np.ndarray:
        """The chosen layer's states (fp32, on the CPU) for a batch of waveforms."""
        inputs = inputs.to(device=self.model.device, dtype=self.model.dtype)
        mask = None if attention_mask is None else attention_mask.to(self.model.device)
        with torch.no_grad():
            outputs = self.model(inputs, attention_mask=mask, output_hidden_states=True)
        return outputs.hidden_states[self.layer].float().cpu().numpy()

    @property
    def _takes_padded_batches(self) -> bool:
        """Layer-norm feature encoders (HuBERT-large, mHuBERT) honour an attention mask; group-norm ones
        (HuBERT-base) normalise over time, so zero padding would change every frame: those run one by one."""
        return self.model.config.feat_extract_norm == "layer"

    def _prepared(self, waveform, sampling_rate: int) -> np.ndarray:
        audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate,
                                  min_samples=feature_encoder_receptive_field(self.model.config))
        if self._takes_padded_batches:  # models trained on normalised input expect it
            audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        return audio

    def features(self, waveform, sampling_rate: int) -> np.ndarray:
        return self._hidden(torch.from_numpy(self._prepared(waveform, sampling_rate))[None])[0]

    def batch_features(self, waveforms, sampling_rate: int) -> list[np.ndarray]:
        if not self._takes_padded_batches:
            return super().batch_features(waveforms, sampling_rate)
        audios = [self._prepared(w, sampling_rate) for w in waveforms]
        lengths = torch.tensor([a.size for a in audios])
        padded = torch.zeros(len(audios), int(lengths.max()))
        for row, audio in enumerate(audios):
            padded[row, : audio.size] = torch.from_numpy(audio)
        attention_mask = (torch.arange(padded.shape[1])[None] < lengths[:, None]).long()
        hidden = self._hidden(padded, attention_mask)
        frames = self.model._get_feat_extract_output_lengths(lengths).tolist()
        return [hidden[row, :count] for row, count in enumerate(frames)]

    def config(self) -> dict:
        return {**super().config(), "model": self.model_name_or_path, "layer": self.layer}

    @classmethod
    def from_config(cls, config: dict, centroids: np.ndarray) -> HubertUnitExtractor:
        return cls(config["model"], config["layer"], config["num_units"], centroids)
