"""Pretraining formats: exact layouts on a hand-made row, the AST and LST samplers' statistics, and the
datasets pipeline (num_proc, epochs, streaming, card, Hub error)."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from lst_speech.model_cards.dataset_cards import pretraining_data_card
from lst_speech.tokenization.segments import SpeechSegment
from lst_speech.training.data.formats import (
    AstConfig,
    InterleaveConfig,
    SpanSampler,
    ast_blocks,
    document_segments,
    interleave_blocks,
    speech_block,
)
from lst_speech.training.data.pipeline import build_format, push_with_card, save_with_card

# Four words over 12 unit frames: silence 0-1, words at 1-3, 3-5, 6-8, 9-11, silence 11-12.
ROW = {
    "text": "Alpha beta, gamma delta.",
    "words": ["Alpha", "beta", "gamma", "delta"],
    "units": [7, 1, 1, 2, 3, 9, 4, 4, 8, 5, 6, 7],
    "word_spans": [[1, 3], [3, 5], [6, 8], [9, 11]],
}


def expected_row(tokenizer, segments):
    encoded = tokenizer(segments=segments)
    return encoded["input_ids"] + [tokenizer.eos_token_id]


def build_one(tokenizer, format, **kwargs):
    return build_format(datasets.Dataset.from_list([ROW]), tokenizer, format, **kwargs)[0]


def test_ulm_tlm_and_cst_layouts(tokenizer):
    units = np.array(ROW["units"])
    speech = SpeechSegment(units, np.array(ROW["word_spans"]))
    for format, segments in [("ulm", [speech]), ("tlm", [ROW["text"]]), ("cst_speech_text", [speech, ROW["text"]]),
                             ("cst_text_speech", [ROW["text"], speech])]:
        row = build_one(tokenizer, format)
        assert row["input_ids"] == expected_row(tokenizer, segments), format
        assert row["input_ids"][0] == tokenizer.bos_token_id and row["input_ids"][-1] == tokenizer.eos_token_id
        speech_positions = np.flatnonzero(row["modality_mask"])
        if format == "tlm":
            assert speech_positions.size == 0 and row["word_spans"] == [] and row["silence_spans"] == []
            continue
        first = speech_positions[0]  # the speech segment's first unit token
        assert speech_positions.size == 12
        assert row["word_spans"] == [[first + 1, first + 3], [first + 3, first + 5], [first + 6, first + 8],
                                     [first + 9, first + 11]]
        assert row["silence_spans"] == [[first, first + 1], [first + 5, first + 6], [first + 8, first + 9],
                                        [first + 11, first + 12]]
        marker = tokenizer.speech_marker_id
        assert row["input_ids"][first - 1] == marker


def test_speech_blocks_split_silences_in_the_middle_and_lose_no_frame():
    units, spans = np.array(ROW["units"]), np.array(ROW["word_spans"])
    pieces = [speech_block(units, spans, 0, 2), speech_block(units, spans, 2, 3), speech_block(units, spans, 3, 4)]
    np.testing.assert_array_equal(np.concatenate([p.units for p in pieces]), units)
    assert [p.units.size for p in pieces] == [6, 3, 3]  # the one-frame silences 5 and 8 go to the earlier block
    np.testing.assert_array_equal(pieces[0].word_spans, [[1, 3], [3, 5]])
    np.testing.assert_array_equal(pieces[1].word_spans, [[0, 2]])
    np.testing.assert_array_equal(pieces[2].word_spans, [[0, 2]])


def test_ast_and_interleave_layouts_alternate_with_markers(tokenizer):
    rng = np.random.default_rng(0)
    config = AstConfig(SpanSampler("fixed", length=1), speech_fraction=0.5)
    segments = document_segments("ast", ROW, rng, ast=config)
    # fixed spans of one word, text spans of (1 - 0.5) / 0.5 = 1 word: strict word-by-word alternation
    assert len(segments) == 4
    kinds = [isinstance(s, SpeechSegment) for s in segments]
    assert all(a != b for a, b in zip(kinds, kinds[1:]))
    texts = [s for s in segments if isinstance(s, str)]
    assert set(texts) <= set(ROW["words"]) and len(texts) == 2
    row = build_format(datasets.Dataset.from_list([ROW]), tokenizer, "ast", ast=config, seed=0)[0]
    ids = np.array(row["input_ids"])
    markers = np.isin(ids, [tokenizer.text_marker_id, tokenizer.speech_marker_id]).sum()
    assert markers == 4  # one marker per segment, i.e. at every switch
    assert len(row["word_spans"]) == 2  # the two spoken words, each with its span


def test_formats_needing_alignments_say_so(tokenizer):
    unaligned = {k: v for k, v in ROW.items() if k != "word_spans"}
    with pytest.raises(ValueError, match="needs columns .* lacks \\['word_spans'\\]"):
        build_format(datasets.Dataset.from_list([unaligned]), tokenizer, "ast")
    bad = dict(ROW, word_spans=[[1, 3], [2, 5], [6, 8], [9, 11]])
    with pytest.raises(ValueError, match="row 0: word spans must be ordered"):
        build_format(datasets.Dataset.from_list([bad]), tokenizer, "interleave")
    with pytest.raises(ValueError, match="Unknown format 'cst'"):
        build_format(datasets.Dataset.from_list([ROW]), tokenizer, "cst")


def speech_spans(blocks):
    return [end - start for speech, start, end in blocks[:-1] if speech]


@pytest.mark.parametrize(
    ("sampler", "check"),
    [
        (SpanSampler("fixed", length=3), lambda lengths: set(lengths) == {3}),
        (SpanSampler("uniform", low=2, high=6), lambda lengths: set(lengths) == {2, 3, 4, 5, 6}
         and abs(np.mean(lengths) - 4) < 0.1),
        (SpanSampler("poisson", length=4), lambda lengths: abs(np.mean(lengths) - 4) < 0.1
         and abs(np.var(lengths) - 4) < 0.4),
    ],
)
def test_ast_span_lengths_follow_the_sampler_and_hit_the_speech_fraction(sampler, check):
    rng = np.random.default_rng(0)
    config = AstConfig(sampler, speech_fraction=0.3)
    lengths, spoken, total = [], 0, 0
    for _ in range(300):
        blocks = ast_blocks(200, config, rng)
        lengths += speech_spans(blocks)
        spoken += sum(end - start for speech, start, end in blocks if speech)
        total += 200
        assert blocks[0][1] == 0 and blocks[-1][2] == 200
        assert all(a[2] == b[1] and a[0] != b[0] for a, b in zip(blocks, blocks[1:]))
    assert check(lengths)
    assert abs(spoken / total - 0.3) < 0.02


def test_lst_interleaving_gives_one_spoken_word_per_two_written():
    rng = np.random.default_rng(0)
    config = InterleaveConfig()
    spoken = written = 0
    for _ in range(2000):
        num_words = int(rng.integers(60, 400))
        blocks = interleave_blocks(num_words, config, rng)
        text_lengths = [end - start for speech, start, end in blocks if not speech]
        assert all(config.min_text_words <= n <= config.max_text_words for n in text_lengths[:-1])
        for previous, current in zip(blocks, blocks[1:]):
            if current[0] and current is not blocks[-1]:
                assert current[2] - current[1] == round(0.5 * (previous[2] - previous[1]))
        spoken += sum(end - start for speech, start, end in blocks if speech)
        written += sum(text_lengths)
    assert abs(spoken / written - 0.5) < 0.02
    short = interleave_blocks(10, config, rng)  # text blocks capped at 0.6 of a 10-word document
    assert all(end - start <= 6 for speech, start, end in short if not speech)


@pytest.fixture(scope="module")
def paired_rows():
    rng = np.random.default_rng(1)
    rows = []
    for index in range(60):
        num_words = int(rng.integers(3, 12))
        lengths = rng.integers(2, 6, size=num_words)
        gaps = rng.integers(0, 3, size=num_words + 1)
        starts = np.cumsum(np.r_[gaps[0], (lengths + gaps[1:])[:-1]])
        spans = np.stack([starts, starts + lengths], 1)
        words = [f"word{index}x{k}" for k in range(num_words)]
        rows.append({"text": " ".join(words), "words": words, "units": rng.integers(0, 50, spans[-1, 1] + gaps[-1]).tolist(),
                     "word_spans": spans.tolist()})
    return datasets.Dataset.from_list(rows)


def test_builds_are_reproducible_across_processes_and_resampled_per_epoch(tokenizer, paired_rows):
    one = build_format(paired_rows, tokenizer, "interleave", seed=3, epoch=0)
    two = build_format(paired_rows, tokenizer, "interleave", seed=3, epoch=0, num_proc=2)
    assert one["input_ids"] == two["input_ids"]
    next_epoch = build_format(paired_rows, tokenizer, "interleave", seed=3, epoch=1)
    assert next_epoch["input_ids"] != one["input_ids"]
    streamed = build_format(paired_rows.to_iterable_dataset(num_shards=3), tokenizer, "interleave", seed=3)
    assert isinstance(streamed, datasets.IterableDataset)
    assert [np.asarray(row["input_ids"]).tolist() for row in streamed] == list(one["input_ids"])


def test_save_with_card_and_push_without_the_hub(tokenizer, paired_rows, tmp_path, monkeypatch):
    built = build_format(paired_rows, tokenizer, "cst_speech_text")
    card = pretraining_data_card("kjv-cst", {"format": "cst_speech_text"}, {"examples": len(built)})
    save_with_card(built, tmp_path / "cst", card, owner="lst data")
    assert datasets.load_from_disk(str(tmp_path / "cst"))["input_ids"] == built["input_ids"]
    assert "**format**: cst_speech_text" in (tmp_path / "cst" / "README.md").read_text()
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(RuntimeError, match="Could not push the dataset to the Hub as 'me/kjv-cst'.*save_with_card"):
        push_with_card(built, "me/kjv-cst", card)
