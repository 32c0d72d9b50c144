"""Joint speech-unit / text tokenization: the `SpeechUnitTextTokenizer` and its building blocks.

Importing this package registers the tokenizer with `AutoTokenizer` (for `LSTConfig` checkpoints and for
any `tokenizer_config.json` naming `SpeechUnitTextTokenizer`).
"""

from transformers import AutoTokenizer

from modeling_lst.configuration_lst import LSTConfig

from .segments import SpeechSegment
from .sentencepiece_text import TextPieceModel, train_text_sentencepiece
from .tokenization_speech_unit_text import SpeechUnitTextTokenizer
from .unit_pieces import UnitPieceModel, deduplicate_units

AutoTokenizer.register(LSTConfig, tokenizer_class=SpeechUnitTextTokenizer, exist_ok=True)

__all__ = [
    "SpeechSegment",
    "SpeechUnitTextTokenizer",
    "TextPieceModel",
    "UnitPieceModel",
    "deduplicate_units",
    "train_text_sentencepiece",
]
