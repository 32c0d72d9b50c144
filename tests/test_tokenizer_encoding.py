"""Structured encoding: id layout, markers, modality mask, word spans, padding, truncation, injection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lst_speech.tokenization import SpeechSegment

from conftest import NUM_UNITS


def text_ids(tokenizer, text):
    return tokenizer.text_model.processor().encode(text)


def test_id_ranges_are_contiguous_and_cover_the_vocabulary(tokenizer):
    ranges = [tokenizer.special_token_ids, tokenizer.text_token_ids, tokenizer.marker_token_ids,
              tokenizer.speech_token_ids]
    assert ranges[0].start == 0
    for before, after in zip(ranges, ranges[1:]):
        assert before.stop == after.start
    assert ranges[-1].stop == len(tokenizer) == 800 + 2 + NUM_UNITS
    assert list(tokenizer.marker_token_ids) == [tokenizer.text_marker_id, tokenizer.speech_marker_id]
    assert tokenizer.convert_tokens_to_ids(["[Text]", "[Speech]", "<u_0>", f"<u_{NUM_UNITS - 1}>"]) == [
        800, 801, 802, 801 + NUM_UNITS]
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2, 3)


def test_cst_layout_speech_then_text(tokenizer):
    encoding = tokenizer(segments=[[7, 7, 3], "In the beginning"])
    expected = [1, 801, 802 + 7, 802 + 7, 802 + 3, 800, *text_ids(tokenizer, "In the beginning")]
    assert encoding["input_ids"] == expected
    assert encoding["modality_mask"] == [0, 0, 1, 1, 1] + [0] * (len(expected) - 5)
    assert encoding["attention_mask"] == [1] * len(expected)


def test_markers_only_where_the_modality_changes(tokenizer):
    ids = tokenizer(segments=["a", "b", [1], np.array([2]), "c"])["input_ids"]
    assert ids == [1, 800, *text_ids(tokenizer, "a"), *text_ids(tokenizer, "b"), 801, 803, 804, 800,
                   *text_ids(tokenizer, "c")]


def test_bos_and_eos_follow_the_settings(sample_verses):
    from lst_speech.tokenization import SpeechUnitTextTokenizer

    with_eos = SpeechUnitTextTokenizer.train(sample_verses[:500], vocab_size=400, num_units=5, add_eos_token=True)
    assert with_eos(segments=[[1]])["input_ids"] == [1, 401, 403, 2]
    assert with_eos(segments=[[1]], add_special_tokens=False)["input_ids"] == [401, 403]


def test_units_accepted_as_list_numpy_and_torch(tokenizer):
    expected = tokenizer(segments=[[1, 2, 3]])["input_ids"]
    assert tokenizer(segments=[np.array([1, 2, 3], dtype=np.int16)])["input_ids"] == expected
    assert tokenizer(segments=[torch.tensor([1, 2, 3])])["input_ids"] == expected
    assert tokenizer(segments=[{"units": [1, 2, 3]}])["input_ids"] == expected


def test_word_spans_move_from_unit_frames_to_token_positions(tokenizer):
    speech = SpeechSegment(np.arange(10), np.array([[0, 4], [6, 10]]))
    encoding = tokenizer(segments=["hi", speech])
    offset = 1 + 1 + len(text_ids(tokenizer, "hi")) + 1  # bos, [Text], text, [Speech]
    assert encoding["word_spans"].tolist() == [[offset, offset + 4], [offset + 6, offset + 10]]
    ids = np.array(encoding["input_ids"])
    assert (ids[offset:offset + 4] - 802).tolist() == [0, 1, 2, 3]


def test_word_spans_follow_deduplication_and_pieces(piece_tokenizer):
    units = np.array([4, 4, 4, 9, 9, 1, 1, 1, 1, 4])
    spans = np.array([[0, 5], [5, 10]])  # word 1 = 4 4 4 9 9, word 2 = 1 1 1 1 4
    encoding = piece_tokenizer(segments=[SpeechSegment(units, spans)], add_special_tokens=False)
    ids = np.array(encoding["input_ids"][1:]) - piece_tokenizer.speech_token_offset
    lengths = piece_tokenizer.unit_piece_model.piece_lengths[ids]
    piece_ends = np.cumsum(lengths)
    # Deduplicated units are 4 9 1 4: word 1 covers deduplicated units [0, 2), word 2 covers [2, 4).
    first, second = (encoding["word_spans"] - 1).tolist()
    assert first[0] == 0 and second[1] == len(ids)
    assert piece_ends[first[1] - 1] >= 2 and (first[1] == 1 or piece_ends[first[1] - 2] < 2)
    assert piece_ends[second[0]] > 2 and (second[0] == 0 or piece_ends[second[0] - 1] <= 2)


def test_padding_left_and_right_with_tensors(tokenizer):
    batch = [["long text here", [1, 2]], [[3]]]
    right = tokenizer(segments=batch, padding=True, return_tensors="pt")
    left = tokenizer(segments=batch, padding=True, padding_side="left", return_tensors="np")
    lengths = [len(tokenizer(segments=seq)["input_ids"]) for seq in batch]
    longest = max(lengths)
    assert right["input_ids"].shape == (2, longest) and isinstance(right["input_ids"], torch.Tensor)
    assert isinstance(left["input_ids"], np.ndarray)
    short = lengths[1]
    assert right["attention_mask"][1].tolist() == [1] * short + [0] * (longest - short)
    assert left["attention_mask"][1].tolist() == [0] * (longest - short) + [1] * short
    assert left["input_ids"][1, : longest - short].tolist() == [tokenizer.pad_token_id] * (longest - short)
    assert left["modality_mask"][1].tolist() == [0] * (longest - short) + [0, 0, 1]
    assert tokenizer(segments=batch, padding="max_length", max_length=20)["input_ids"][1].__len__() == 20
    assert tokenizer(segments=batch, padding=True, pad_to_multiple_of=8)["attention_mask"][0].__len__() % 8 == 0


def test_left_padding_shifts_word_spans(tokenizer):
    batch = [[SpeechSegment(np.arange(3), np.array([[0, 3]]))], ["a much longer text segment than that"]]
    left = tokenizer(segments=batch, padding=True, padding_side="left")
    pad = len(left["input_ids"][0]) - 5  # bos, [Speech], 3 units
    assert left["word_spans"][0].tolist() == [[2 + pad, 5 + pad]]
    assert left["word_spans"][1].shape == (0, 2)


def test_tensors_of_ragged_sequences_need_padding(tokenizer):
    with pytest.raises(ValueError, match="padding=True"):
        tokenizer(segments=[["a"], ["a much longer one"]], return_tensors="pt")


def test_no_silent_truncation_and_truncation_when_asked(tokenizer):
    sequence = [np.arange(40) % NUM_UNITS]
    full = tokenizer(segments=sequence, max_length=10)["input_ids"]
    assert len(full) == 42
    right = tokenizer(segments=sequence, max_length=10, truncation=True)["input_ids"]
    left = tokenizer(segments=sequence, max_length=10, truncation=True, truncation_side="left")["input_ids"]
    assert right == full[:10] and left == full[-10:]


def test_truncation_clips_word_spans(tokenizer):
    speech = SpeechSegment(np.arange(12), np.array([[0, 4], [4, 8], [8, 12]]))
    encoding = tokenizer(segments=[speech], max_length=8, truncation=True)
    assert encoding["word_spans"].tolist() == [[2, 6], [6, 8]]


def test_user_text_that_looks_like_tokens_stays_text(tokenizer):
    for text in ("<u_3>", "[Speech]", "[Text]", "<s>", "</s>"):
        ids = tokenizer(text)["input_ids"]
        assert ids == [1, 800, *text_ids(tokenizer, text)]
        assert not set(ids[2:]) & {801, 1, 2, 802 + 3}
        assert tokenizer.decode_segments(ids) == [text]
    assert tokenizer(segments=[["<u_3> [Speech]"]])["modality_mask"] == [[0] * len(tokenizer("<u_3> [Speech]")["input_ids"])]


def test_string_form_is_parsed_only_when_asked(tokenizer):
    ids = tokenizer(segments=["hello", [5, 6]])["input_ids"]
    string_form = tokenizer.decode(ids)
    assert string_form == "<s>[Text]hello[Speech]<u_5><u_6>"
    assert tokenizer(string_form, split_special_tokens=False, add_special_tokens=False)["input_ids"] == ids
    assert tokenizer.encode(string_form, split_special_tokens=False, add_special_tokens=False) == ids


def test_plain_strings_are_one_text_segment_each(tokenizer):
    batch = tokenizer(["first verse", "second"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[0] == 2
    assert batch["input_ids"][1].tolist()[: 2] == [1, 800]
    assert set(batch) == {"input_ids", "attention_mask"}


def test_pad_pads_the_modality_mask(tokenizer):
    features = [tokenizer(segments=["some words", [1, 2, 3]]), tokenizer(segments=[[4]])]
    padded = tokenizer.pad([dict(f) for f in features], padding=True, return_tensors="pt")
    assert padded["modality_mask"].shape == padded["input_ids"].shape
    assert padded["modality_mask"][1].tolist()[:3] == [0, 0, 1] and padded["modality_mask"][1, 3:].sum() == 0


def test_tokenizer_basics_as_in_transformers(tokenizer):
    assert tokenizer.model_input_names == ["input_ids", "attention_mask"]
    assert tokenizer.is_fast
    assert tokenizer.convert_ids_to_tokens([800, 801, 802]) == ["[Text]", "[Speech]", "<u_0>"]
    layout = tokenizer.vocabulary_layout()
    assert layout["speech_token_range"] == [802, 802 + NUM_UNITS] and layout["vocab_size"] == len(tokenizer)
