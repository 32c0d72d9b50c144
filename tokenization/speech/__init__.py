"""Speech in: audio checks, unit extractors (MFCC / HuBERT / Whisper-encoder k-means) and espeak-ng synthesis.

Importing the package registers the three extractors in `unit_extraction.EXTRACTOR_KINDS`, which
`load_unit_extractor` reads (so the base module never imports its subclasses).
"""

from . import hubert_units, mfcc_units, whisper_units  # noqa: F401  (register the extractor kinds)
