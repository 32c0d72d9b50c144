"""The Latent Speech-Text Transformer: configuration, patching and modeling.

Importing this package registers LST with `AutoConfig`, `AutoModel`, `AutoModelForCausalLM` and
`AutoModelForSequenceClassification`.
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

from .configuration_lst import PATCHING_MODES, PRESETS, LSTConfig
from .modeling_lst import LSTForCausalLM, LSTForSequenceClassification, LSTModel, LSTModelOutput, LSTPreTrainedModel

AutoConfig.register(LSTConfig.model_type, LSTConfig, exist_ok=True)
AutoModel.register(LSTConfig, LSTModel, exist_ok=True)
AutoModelForCausalLM.register(LSTConfig, LSTForCausalLM, exist_ok=True)
AutoModelForSequenceClassification.register(LSTConfig, LSTForSequenceClassification, exist_ok=True)

__all__ = [
    "LSTConfig",
    "LSTForCausalLM",
    "LSTForSequenceClassification",
    "LSTModel",
    "LSTModelOutput",
    "LSTPreTrainedModel",
    "PATCHING_MODES",
    "PRESETS",
]
