"""The unit vocoder (speech units -> waveform). Importing it registers `UnitVocoderConfig` and
`UnitHifiGanVocoder` with `AutoConfig` and `AutoModel`, so a saved vocoder loads by path or repo id."""

from transformers import AutoConfig, AutoModel

from .configuration_unit_vocoder import PRESETS, UnitVocoderConfig
from .modeling_unit_vocoder import UnitHifiGanVocoder, UnitVocoderOutput

AutoConfig.register(UnitVocoderConfig.model_type, UnitVocoderConfig, exist_ok=True)
AutoModel.register(UnitVocoderConfig, UnitHifiGanVocoder, exist_ok=True)

__all__ = ["PRESETS", "UnitHifiGanVocoder", "UnitVocoderConfig", "UnitVocoderOutput"]
