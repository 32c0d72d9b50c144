"""The Latent Speech-Text Transformer: configuration (and, with issue 3, the modeling code).

Importing this package registers `LSTConfig` with `AutoConfig`.
"""

from transformers import AutoConfig

from .configuration_lst import PATCHING_MODES, PRESETS, LSTConfig

AutoConfig.register(LSTConfig.model_type, LSTConfig, exist_ok=True)

__all__ = ["LSTConfig", "PRESETS", "PATCHING_MODES"]
