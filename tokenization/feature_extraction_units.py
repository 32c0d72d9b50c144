"""The unit extractors as a transformers feature extractor, so `AutoFeatureExtractor` loads one by repo id.

`UnitFeatureExtractor` is the `SequenceFeatureExtractor` face of a k-means unit extractor (MFCC, HuBERT or a
Whisper encoder, `lst_speech.tokenization.speech.unit_extraction`): its settings go to `preprocessor_config.json` like any feature
extractor's, its k-means centroids into the same file as base64 `.npy` bytes (exact, and a third the size of a list
of floats), and calling it turns waveforms into unit ids. The work is done by the extractor classes themselves; this class
only carries them through transformers' save / load / Auto machinery.

The centroids live in `preprocessor_config.json` itself because transformers' loaders build a feature extractor
from that file's dictionary alone (`AutoFeatureExtractor` calls `from_dict` since 5.25), so a file beside it is
never read there. Saves from before kept them in `unit_centroids.npy`; `from_pretrained` still reads that.
"""

from __future__ import annotations

import base64
import io
import os

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import cached_file

CENTROIDS_NAME = "unit_centroids.npy"  # where saves from before 2026-12 keep their centroids
KINDS = ("mfcc_kmeans", "hubert_kmeans", "whisper_kmeans")


def encode_centroids(centroids: np.ndarray) -> str:
    """`.npy` bytes as base64 text: the exact array (dtype and shape included) inside a JSON file."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(centroids, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_centroids(text: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"The feature extractor's centroids are damaged ({error}): save or download it "
                         "again.") from error


class UnitFeatureExtractor(SequenceFeatureExtractor):
    model_input_names = ["units"]

    def __init__(self, extractor_kind: str = "mfcc_kmeans", num_units: int = 100, sampling_rate: int = 16000,
                 frame_rate: int = 50, hubert_model: str | None = None, hubert_layer: int | None = None,
                 centroids: np.ndarray | str | None = None, whisper_model: str | None = None,
                 whisper_layer: int | None = None, **kwargs):
        if extractor_kind not in KINDS:
            raise ValueError(f"extractor_kind must be one of {KINDS}, got {extractor_kind!r}.")
        if extractor_kind == "hubert_kmeans" and (hubert_model is None or hubert_layer is None):
            raise ValueError("A HuBERT unit extractor needs hubert_model and hubert_layer.")
        if extractor_kind == "whisper_kmeans" and (whisper_model is None or whisper_layer is None):
            raise ValueError("A Whisper-encoder unit extractor needs whisper_model and whisper_layer.")
        for fixed in ("feature_size", "padding_value"):  # saved by to_dict; always mono waveforms padded with 0
            kwargs.pop(fixed, None)
        super().__init__(feature_size=1, sampling_rate=sampling_rate, padding_value=0.0, **kwargs)
        self.extractor_kind, self.num_units, self.frame_rate = extractor_kind, num_units, frame_rate
        self.hubert_model, self.hubert_layer = hubert_model, hubert_layer
        self.whisper_model, self.whisper_layer = whisper_model, whisper_layer
        if isinstance(centroids, str):
            centroids = decode_centroids(centroids)
        self.centroids = None if centroids is None else np.asarray(centroids, dtype=np.float32)
        if self.centroids is not None and (self.centroids.ndim != 2 or self.centroids.shape[0] != num_units):
            raise ValueError(f"The centroids have shape {self.centroids.shape}, but {num_units} units need one row "
                             "each: save the feature extractor again from its fitted unit extractor.")
        self._extractor = None

    @classmethod
    def from_unit_extractor(cls, extractor) -> UnitFeatureExtractor:
        """The feature extractor of a fitted `KMeansUnitExtractor` (what `lst units fit` saves)."""
        if extractor.centroids is None:
            raise ValueError("The unit extractor has no centroids: fit it first.")
        hubert, whisper = extractor.kind == "hubert_kmeans", extractor.kind == "whisper_kmeans"
        return cls(extractor.kind, extractor.num_units, extractor.sampling_rate, extractor.frame_rate,
                   getattr(extractor, "model_name_or_path", None) if hubert else None,
                   getattr(extractor, "layer", None) if hubert else None, extractor.centroids,
                   getattr(extractor, "model_name", None) if whisper else None,
                   getattr(extractor, "layer", None) if whisper else None)

    @property
    def unit_extractor(self):
        """The k-means extractor that does the work (built on first use: HuBERT loads a model)."""
        if self._extractor is None:
            if self.centroids is None:
                raise ValueError(f"This feature extractor has no centroids ({CENTROIDS_NAME}); load a saved one.")
            if self.extractor_kind == "mfcc_kmeans":
                from .speech.mfcc_units import MfccUnitExtractor

                self._extractor = MfccUnitExtractor(self.num_units, self.centroids)
            elif self.extractor_kind == "hubert_kmeans":
                from .speech.hubert_units import HubertUnitExtractor

                self._extractor = HubertUnitExtractor(self.hubert_model, self.hubert_layer, self.num_units,
                                                      self.centroids)
            else:
                from .speech.whisper_units import WhisperUnitExtractor

                self._extractor = WhisperUnitExtractor(self.whisper_model, self.whisper_layer, self.num_units,
                                                       self.centroids)
        return self._extractor

    def __call__(self, raw_speech, sampling_rate: int | None = None, deduplicate: bool = False,
                 **kwargs) -> BatchFeature:
        """Unit ids of a waveform or a list of them (`units`: one array each, `frame_rate` per second); with
        `deduplicate`, also `durations` (SUTLM's deduplication). The audio is resampled to `sampling_rate`."""
        if sampling_rate is None:
            raise ValueError(f"Pass sampling_rate with the audio; it is resampled to {self.sampling_rate} Hz.")
        if kwargs:
            raise TypeError(f"Unexpected arguments {sorted(kwargs)}: units are ragged id arrays, for the tokenizer.")
        batched = isinstance(raw_speech, (list, tuple)) and len(raw_speech) > 0 and np.ndim(raw_speech[0]) >= 1
        waveforms = list(raw_speech) if batched else [raw_speech]
        outputs = self.unit_extractor.batch(waveforms, sampling_rate, deduplicate=deduplicate)
        if deduplicate:
            features = {"units": [u for u, _ in outputs], "durations": [d for _, d in outputs]}
        else:
            features = {"units": outputs}
        return BatchFeature(features if batched else {k: v[0] for k, v in features.items()})

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_extractor", None)
        output["centroids"] = None if self.centroids is None else encode_centroids(self.centroids)
        return output

    def __repr__(self) -> str:  # the library prints the whole JSON, centroids included (megabytes for HuBERT)
        shape = None if self.centroids is None else self.centroids.shape
        return (f"{type(self).__name__}(extractor_kind={self.extractor_kind!r}, num_units={self.num_units}, "
                f"sampling_rate={self.sampling_rate}, frame_rate={self.frame_rate}, centroids of shape {shape})")

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs):
        if self.centroids is None:
            raise ValueError("Nothing to save: the feature extractor has no centroids.")
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> UnitFeatureExtractor:
        download = {k: kwargs[k] for k in ("cache_dir", "force_download", "local_files_only", "token", "revision",
                                           "subfolder") if k in kwargs}
        extractor = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        if extractor.centroids is not None:
            return extractor
        # A save from before the centroids moved into preprocessor_config.json.
        extractor.centroids = np.load(cached_file(pretrained_model_name_or_path, CENTROIDS_NAME, **download))
        if extractor.centroids.shape[0] != extractor.num_units:
            raise ValueError(f"{CENTROIDS_NAME} in {pretrained_model_name_or_path} holds "
                             f"{extractor.centroids.shape[0]} centroids for {extractor.num_units} units.")
        return extractor
