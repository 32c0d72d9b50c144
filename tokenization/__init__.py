"""Joint speech-unit / text tokenization: the `SpeechUnitTextTokenizer` and its building blocks.

Importing this package registers the tokenizer with `AutoTokenizer`, the unit feature extractor with
`AutoFeatureExtractor` and the processor with `AutoProcessor` (for `LSTConfig` checkpoints, and for any saved
config naming the class).
"""

from transformers import AutoFeatureExtractor, AutoProcessor, AutoTokenizer

from lst_speech.modeling_lst.configuration_lst import LSTConfig

from .feature_extraction_units import UnitFeatureExtractor
from .processing_lst import SpeechTextProcessor
from .segments import SpeechSegment
from .sentencepiece_text import TextPieceModel, train_text_sentencepiece
from .tokenization_speech_unit_text import SpeechUnitTextTokenizer
from .unit_pieces import UnitPieceModel, deduplicate_units

AutoTokenizer.register(LSTConfig, tokenizer_class=SpeechUnitTextTokenizer, exist_ok=True)
AutoFeatureExtractor.register(LSTConfig, UnitFeatureExtractor, exist_ok=True)
AutoProcessor.register(LSTConfig, SpeechTextProcessor, exist_ok=True)

__all__ = [
    "SpeechSegment",
    "SpeechTextProcessor",
    "SpeechUnitTextTokenizer",
    "TextPieceModel",
    "UnitFeatureExtractor",
    "UnitPieceModel",
    "deduplicate_units",
    "train_text_sentencepiece",
]
