"""Unit extractors: waveform in, discrete units out, behind one interface.

An extractor turns audio into frame features (`features`) and assigns each frame to its nearest k-means
centroid. Subclasses define the features: MFCC + deltas (`MfccUnitExtractor`, the offline default) or a
HuBERT layer (`HubertUnitExtractor`). Centroids are learnt with scikit-learn (`fit`) or loaded from a `.npy`
file, and saved next to a small config (`save_pretrained` / `load_unit_extractor`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

from ..atomic_files import atomic_path, write_text_atomically
from ..unit_pieces import deduplicate_units

CONFIG_FILE, CENTROIDS_FILE = "unit_extractor.json", "centroids.npy"


def check_placement(device: str, dtype: str) -> None:
    if not device.startswith(("cpu", "cuda")) or dtype not in ("fp32", "bf16"):
        raise ValueError(f"device must be cpu or cuda[:N] and dtype fp32 or bf16, got {device!r} and {dtype!r}.")


EXTRACTOR_KINDS: dict[str, type[KMeansUnitExtractor]] = {}  # saved `extractor` kind -> class, filled by subclasses


class KMeansUnitExtractor:
    """Frame features -> nearest centroid. Subclasses set `kind`, `feature_size`, `frame_rate`, `features`, and
    `from_config`; defining one registers it under its kind, so loading needs no import of the subclasses here."""

    kind = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        EXTRACTOR_KINDS[cls.kind] = cls

    @classmethod
    def from_config(cls, config: dict, centroids: np.ndarray) -> KMeansUnitExtractor:
        """The extractor a saved `config()` and its centroids describe."""
        return cls(config["num_units"], centroids)
    sampling_rate = 16000
    frame_rate = 50
    feature_size = 0

    def __init__(self, num_units: int, centroids: np.ndarray | None = None):
        if isinstance(num_units, bool) or not isinstance(num_units, (int, np.integer)) or num_units < 2:
            raise ValueError(f"num_units must be a whole number of at least 2 (k-means clusters), got {num_units!r}.")
        self.num_units = int(num_units)
        self.centroids = None if centroids is None else self._checked(np.asarray(centroids, dtype=np.float32))

    def _checked(self, centroids: np.ndarray) -> np.ndarray:
        if centroids.shape != (self.num_units, self.feature_size):
            raise ValueError(
                f"Centroids of shape {centroids.shape} do not match {self.num_units} units of "
                f"{self.feature_size}-dimensional {self.kind} features."
            )
        return centroids

    def features(self, waveform, sampling_rate: int) -> np.ndarray:
        raise NotImplementedError

    def fit(self, waveforms, sampling_rate: int, seed: int = 0, max_frames: int = 200_000):
        """Learn the units' centroids by k-means over the frames of `waveforms`."""
        frames = np.concatenate([self.features(w, sampling_rate) for w in waveforms])
        if len(frames) < self.num_units:
            raise ValueError(f"{len(frames)} frames cannot make {self.num_units} units; give more audio.")
        if len(frames) > max_frames:
            frames = frames[np.random.default_rng(seed).choice(len(frames), max_frames, replace=False)]
        kmeans = KMeans(n_clusters=self.num_units, n_init=1, random_state=seed).fit(frames)
        self.centroids = kmeans.cluster_centers_.astype(np.float32)
        return self

    def to(self, device: str = "cpu", dtype: str = "fp32") -> KMeansUnitExtractor:
        """Where the feature model runs; extractors without a neural model (MFCC) run on the CPU in fp32."""
        check_placement(device, dtype)
        if dtype != "fp32":
            raise ValueError(f"The {self.kind} extractor computes its features in fp32 on the CPU; bf16 is for "
                             "neural feature models (HuBERT).")
        return self

    def batch_features(self, waveforms, sampling_rate: int) -> list[np.ndarray]:
        """Features of several waveforms; subclasses whose model takes padded batches override this."""
        return [self.features(waveform, sampling_rate) for waveform in waveforms]

    def assign(self, features: np.ndarray) -> np.ndarray:
        """Each frame's nearest centroid."""
        if self.centroids is None:
            raise ValueError("The extractor has no centroids: fit it on audio first, or load a fitted one.")
        distances = (features**2).sum(1)[:, None] - 2 * features @ self.centroids.T + (self.centroids**2).sum(1)
        return distances.argmin(axis=1).astype(np.int64)

    def __call__(self, waveform, sampling_rate: int, deduplicate: bool = False):
        """Units of one waveform (`frame_rate` per second). With `deduplicate`, runs of a repeated unit
        collapse and `(units, durations)` is returned, durations in frames (SUTLM's dedup, reversible)."""
        units = self.assign(self.features(waveform, sampling_rate))
        return deduplicate_units(units) if deduplicate else units

    def batch(self, waveforms, sampling_rate: int, deduplicate: bool = False) -> list:
        """`__call__` over a list of waveforms, batched through the feature model where it allows."""
        waveforms = list(waveforms)
        if not waveforms:
            return []
        units = [self.assign(features) for features in self.batch_features(waveforms, sampling_rate)]
        return [deduplicate_units(u) for u in units] if deduplicate else units

    def config(self) -> dict:
        return {"extractor": self.kind, "num_units": self.num_units, "sampling_rate": self.sampling_rate,
                "frame_rate": self.frame_rate}

    def fingerprint(self) -> str:
        """A hash of the settings and the centroids: what units this extractor writes, to record beside data made
        with it (two extractors of one unit count still number their units differently)."""
        digest = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self.centroids, dtype=np.float32).tobytes())
        return digest.hexdigest()

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        if self.centroids is None:
            raise ValueError("Nothing to save: the extractor has not been fitted.")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / CENTROIDS_FILE) as partial, open(partial, "wb") as handle:
            np.save(handle, self.centroids)
        write_text_atomically(directory / CONFIG_FILE, json.dumps(self.config(), indent=2))


def check_unit_extractor_directory(directory: str | os.PathLike) -> Path:
    """`directory` if it holds a saved extractor's files, else an error saying what to pass; cheaper than
    loading it (a HuBERT extractor loads a model)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"There is no unit extractor directory {os.fspath(directory)!r}: fit one with "
                                "`lst units fit` (or pass the extractor/ folder of a run or release).")
    missing = [name for name in (CONFIG_FILE, CENTROIDS_FILE) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} lacks {missing}: it is not a saved unit extractor (`lst units fit` "
                                "writes both).")
    return directory


def load_unit_extractor(directory: str | os.PathLike) -> KMeansUnitExtractor:
    """A saved extractor of any kind registered in `EXTRACTOR_KINDS` (importing `tokenization.speech` registers
    the MFCC and HuBERT extractors)."""
    directory = check_unit_extractor_directory(directory)
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
        centroids = np.load(directory / CENTROIDS_FILE)
    except ValueError as error:  # JSON and numpy both raise ValueError subclasses for damaged files
        raise ValueError(f"{directory}: a saved extractor file is damaged ({error}); fit or copy it again.") from error
    missing = [key for key in ("extractor", "num_units") if key not in config]
    if missing:
        raise ValueError(f"{directory / CONFIG_FILE} lacks {missing}: it was not written by a unit extractor.")
    if config["extractor"] not in EXTRACTOR_KINDS:
        raise ValueError(f"{directory} holds an unknown extractor {config['extractor']!r}; known kinds: "
                         f"{sorted(EXTRACTOR_KINDS)}.")
    return EXTRACTOR_KINDS[config["extractor"]].from_config(config, centroids)
