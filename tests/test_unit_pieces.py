"""Unit deduplication and SentencePiece over units (SUTLM's acoustic pieces)."""

from __future__ import annotations

import numpy as np
import pytest

from lst_speech.tokenization import UnitPieceModel, deduplicate_units
from lst_speech.tokenization.unit_pieces import string_to_units, units_to_string

from conftest import NUM_UNITS


def test_deduplicate_units_returns_runs_and_durations():
    units, durations = deduplicate_units(np.array([5, 5, 5, 2, 7, 7, 5]))
    assert units.tolist() == [5, 2, 7, 5] and durations.tolist() == [3, 1, 2, 1]
    assert np.repeat(units, durations).tolist() == [5, 5, 5, 2, 7, 7, 5]
    empty_units, empty_durations = deduplicate_units(np.array([], dtype=int))
    assert empty_units.size == 0 and empty_durations.size == 0


def test_units_to_string_is_one_private_use_character_per_unit():
    units = np.array([0, 1, 500, 65533])
    text = units_to_string(units)
    assert len(text) == 4 and all(0xF0000 <= ord(c) <= 0xFFFFD for c in text)
    assert string_to_units(text).tolist() == units.tolist()


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_trained_pieces_cover_every_unit_and_round_trip(unit_sequences, model_type):
    model = UnitPieceModel.train(unit_sequences, num_units=NUM_UNITS, vocab_size=150, model_type=model_type)
    assert model.num_pieces == 150
    assert {int(p[0]) for p in model.piece_units if len(p) == 1} == set(range(NUM_UNITS))
    deduplicated = [deduplicate_units(s)[0] for s in unit_sequences[:20]]
    for units, pieces in zip(deduplicated, model.encode_batch(deduplicated)):
        assert np.array_equal(model.decode(pieces), units)
        assert pieces.size < units.size  # pieces learnt on this structure do compress it


def test_units_absent_from_training_data_are_still_encodable():
    sequences = [np.array([0, 1, 2, 0, 1, 2, 3])] * 20  # units 4..9 never appear
    model = UnitPieceModel.train(sequences, num_units=10, vocab_size=14)
    unseen = np.array([9, 4, 8])
    assert np.array_equal(model.decode(model.encode_batch([unseen])[0]), unseen)


def test_training_rejects_bad_arguments(unit_sequences):
    with pytest.raises(ValueError, match="must exceed num_units"):
        UnitPieceModel.train(unit_sequences, num_units=NUM_UNITS, vocab_size=NUM_UNITS)
    with pytest.raises(ValueError, match="Unit sequence 1 has units outside 0..9"):
        UnitPieceModel.train([np.array([1]), np.array([10])], num_units=10, vocab_size=20)
    with pytest.raises(ValueError, match="'bpe' or 'unigram'"):
        UnitPieceModel.train(unit_sequences, num_units=NUM_UNITS, vocab_size=100, model_type="word")
