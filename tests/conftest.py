"""Shared fixtures: small joint tokenizers trained on the built-in sample text (well under a second each)."""

from __future__ import annotations

import numpy as np
import pytest

from tokenization import SpeechUnitTextTokenizer
from tokenization.sample_text import kjv_verses

NUM_UNITS = 50


@pytest.fixture(scope="session")
def sample_verses() -> list[str]:
    return list(kjv_verses(3000))


@pytest.fixture(scope="session")
def tokenizer(sample_verses) -> SpeechUnitTextTokenizer:
    """LST mode: raw units, no deduplication, a unigram text model."""
    return SpeechUnitTextTokenizer.train(sample_verses, vocab_size=800, model_type="unigram", num_units=NUM_UNITS)


@pytest.fixture(scope="session")
def unit_sequences() -> list[np.ndarray]:
    """Unit sequences with repeated structure (a few 'words' of units, with repeats), for unit pieces."""
    rng = np.random.default_rng(0)
    words = [rng.integers(0, NUM_UNITS, size=rng.integers(2, 6)) for _ in range(40)]
    sequences = []
    for _ in range(300):
        chosen = [np.repeat(w, rng.integers(1, 3, size=w.size)) for w in rng.choice(len(words), 12)
                  for w in [words[w]]]
        sequences.append(np.concatenate(chosen))
    return sequences


@pytest.fixture(scope="session")
def piece_tokenizer(sample_verses, unit_sequences) -> SpeechUnitTextTokenizer:
    """SUTLM mode: deduplicated units, BPE pieces over units, a BPE text model."""
    return SpeechUnitTextTokenizer.train(
        sample_verses,
        vocab_size=800,
        model_type="bpe",
        num_units=NUM_UNITS,
        unit_sequences=unit_sequences,
        unit_vocab_size=200,
        deduplicate_units=True,
    )
