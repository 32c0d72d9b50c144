"""A character-CTC head over a Whisper encoder layer, for forced alignment (`ctc:<folder>`). Importing it
registers `WhisperCtcConfig` and `WhisperCtcHead` with `AutoConfig` and `AutoModel`, so a saved head loads by path
or repo id."""

from transformers import AutoConfig, AutoModel

from .configuration_whisper_ctc import WhisperCtcConfig
from .modeling_whisper_ctc import WhisperCtcHead

AutoConfig.register(WhisperCtcConfig.model_type, WhisperCtcConfig, exist_ok=True)
AutoModel.register(WhisperCtcConfig, WhisperCtcHead, exist_ok=True)

__all__ = ["WhisperCtcConfig", "WhisperCtcHead"]
