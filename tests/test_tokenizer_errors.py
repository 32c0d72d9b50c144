"""Bad input raises ValueError naming the sequence, segment and index; nothing is silently dropped."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lst_speech.tokenization import SpeechSegment, SpeechUnitTextTokenizer, UnitPieceModel, train_text_sentencepiece

from conftest import NUM_UNITS


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        (["ok", [1, NUM_UNITS]], rf"segment 1: unit id {NUM_UNITS} at index 1 is outside 0..{NUM_UNITS - 1}"),
        ([[3, -1, 2]], r"segment 0: unit id -1 at index 1 is outside"),
        ([np.array([1.0, 2.0])], r"segment 0: unit ids must be integers, got dtype float64"),
        ([torch.tensor([0.5])], r"segment 0: unit ids must be integers, got dtype float32"),
        (["a", np.zeros((2, 3), dtype=int)], r"segment 1: unit array must be 1-D, got shape \(2, 3\)"),
        ([np.array([], dtype=int)], r"segment 0: unit array is empty"),
        (["text", ""], r"segment 1: text segment is empty"),
        ([{"text": "a", "units": [1]}], r"segment 0: a dict segment needs exactly one of 'text' or 'units'"),
        ([SpeechSegment(np.arange(5), np.array([[0, 3], [3, 6]]))], r"segment 0: word span 1 \(3, 6\) ends after the last unit \(the segment has 5 units\)"),
        ([SpeechSegment(np.arange(5), np.array([[-1, 2]]))], r"word span 0 \(-1, 2\) starts before frame 0"),
        ([SpeechSegment(np.arange(5), np.array([[0, 3], [2, 4]]))], r"word span 1 \(2, 4\) overlaps or precedes span 0 \(0, 3\)"),
        ([SpeechSegment(np.arange(5), np.array([[3, 3]]))], r"word span 0 \(3, 3\) is empty or reversed"),
        ([SpeechSegment(np.arange(5), np.array([0, 3]))], r"word spans must be integer \[start, end\) pairs of shape \(n, 2\)"),
        ([], r"No segments given"),
    ],
)
def test_bad_segments_raise_clear_errors(tokenizer, segments, message):
    with pytest.raises(ValueError, match=message):
        tokenizer(segments=segments)


def test_errors_in_a_batch_name_the_sequence(tokenizer):
    with pytest.raises(ValueError, match=r"sequence 1, segment 0: unit id 99"):
        tokenizer(segments=[["fine"], [[99]]])


def test_a_bare_unit_array_must_be_wrapped_in_a_list(tokenizer):
    with pytest.raises(ValueError, match="wrap it in a list"):
        tokenizer.encode_segments(np.array([1, 2, 3]))


def test_text_that_normalizes_to_nothing_is_an_error_not_a_dropped_segment(tokenizer):
    # NFKC-based normalisation (nmt_nfkc) removes zero-width spaces and control characters.
    assert tokenizer.text_model.processor().encode("\u200b\x01") == []
    with pytest.raises(ValueError, match=r"segment 1: text '\\u200b\\x01' encodes to no tokens"):
        tokenizer(segments=[[1], "\u200b\x01"])


def test_decode_rejects_ids_outside_the_vocabulary(tokenizer):
    with pytest.raises(ValueError, match=rf"Token id {len(tokenizer)} at position 1 is outside the vocabulary"):
        tokenizer.decode_segments([1, len(tokenizer)])


def test_unit_piece_model_must_match_the_unit_count(sample_verses, unit_sequences):
    pieces = UnitPieceModel.train(unit_sequences, num_units=NUM_UNITS, vocab_size=120)
    text_model = train_text_sentencepiece(sample_verses[:300], vocab_size=400)
    with pytest.raises(ValueError, match=r"trained for 50 units but num_units=60"):
        SpeechUnitTextTokenizer(text_model=text_model, unit_piece_model=pieces, num_units=60)
    with pytest.raises(ValueError, match=r"does not match num_units=40: pieces contain units"):
        UnitPieceModel(pieces.model_bytes, num_units=40)
    with pytest.raises(ValueError, match=r"does not match num_units=60: units \[50, 51"):
        UnitPieceModel(pieces.model_bytes, num_units=60)


def test_configuration_errors(sample_verses):
    with pytest.raises(ValueError, match="needs a text SentencePiece model"):
        SpeechUnitTextTokenizer(num_units=10)
    with pytest.raises(ValueError, match="num_units must be in 1..65534"):
        SpeechUnitTextTokenizer.train(sample_verses[:300], vocab_size=400, num_units=0)
    with pytest.raises(ValueError, match="unit_vocab_size needs unit_sequences"):
        SpeechUnitTextTokenizer.train(sample_verses[:300], vocab_size=400, num_units=10, unit_vocab_size=50)
    with pytest.raises(ValueError, match="truncation=True needs max_length"):
        SpeechUnitTextTokenizer.train(sample_verses[:300], vocab_size=400, num_units=10)(
            segments=[[1]], truncation=True)
