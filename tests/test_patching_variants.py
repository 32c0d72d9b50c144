"""The LST paper's patching variants: silences merged into words, and BPE-aligned patches from character
times (espeak phonemes, CTC characters, or the proportional fallback only when asked)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lst_speech.modeling_lst import LSTConfig
from lst_speech.modeling_lst.patching import (
    aligned_patch_starts,
    merged_silence_boundary_mask,
    patch_lengths_from_starts,
    patch_starts,
    word_boundary_mask,
)
from lst_speech.tokenization.speech.character_times import (
    align_letters_to_phonemes,
    character_frames,
    letters_from_phonemes,
    proportional_character_starts,
)
from lst_speech.training.data.collator import PackedCollator
from lst_speech.training.data.formats import word_pieces
from lst_speech.training.data.packing import pack
from lst_speech.training.data.pipeline import build_format


def speech(pattern: str) -> torch.Tensor:
    return torch.tensor([[c == "s" for c in pattern]])


def test_merged_silences_cut_each_silence_in_its_middle_and_edges_join_their_word():
    # bos, 20 speech tokens: silence [1,3), word [3,8), silence [8,12), word [12,16), silence [16,21)
    mask = speech("t" + "s" * 20)
    spans = [np.array([[3, 8], [12, 16]])]
    merged = aligned_patch_starts(mask, merged_silence_boundary_mask(spans, mask.numpy()), max_patch_length=16)
    assert patch_lengths_from_starts(merged)[0] == [1, 9, 11]  # [1,10): silence + word + half; [10,21)
    separate = aligned_patch_starts(mask, word_boundary_mask(spans, mask.shape), max_patch_length=16)
    assert patch_lengths_from_starts(separate)[0] == [1, 2, 5, 4, 4, 5]
    # an odd silence gives its extra frame to the earlier word; adjacent words cut where they meet
    odd = merged_silence_boundary_mask([np.array([[1, 4], [7, 9], [9, 12]])], speech("t" + "s" * 11).numpy())
    assert torch.nonzero(odd[0]).flatten().tolist() == [6, 9]


def test_merged_silences_never_cross_a_modality_switch():
    # speech [1,6) with a word [1,3); text marker + text at 6, 7; speech [8,14) with a word [11,13)
    mask = speech("t" + "s" * 5 + "tt" + "s" * 6)
    boundaries = merged_silence_boundary_mask([np.array([[1, 3], [11, 13]])], mask.numpy())
    assert not boundaries.any()  # the run edges bound both words: the silences stay with them
    starts = aligned_patch_starts(mask, boundaries, max_patch_length=16)
    assert patch_lengths_from_starts(starts)[0] == [1, 5, 1, 1, 6]


class FakePieceModel:
    """A text piece model that splits every word at fixed character offsets (SentencePiece's proto shape)."""

    def __init__(self, offsets: dict[str, list[int]]):
        self.offsets = offsets

    def encode(self, word, return_type):
        begins = [0, *self.offsets[word]]
        return SimpleNamespace(pieces=[SimpleNamespace(begin=len(word[:b].encode())) for b in begins])


def test_word_pieces_partition_each_word_at_its_pieces_first_characters():
    model = FakePieceModel({"beginning": [2, 5], "God": [1], "é-x": [1, 2]})
    words, spans = ["beginning", "God", "é-x"], np.array([[10, 19], [22, 25], [30, 33]])
    characters = [list(range(10, 19)), [22, 22, 24], [30, 31, 32]]  # "G" and "o" share frame 22
    pieces = word_pieces(words, spans, characters, model, "row 0")
    assert pieces.spans.tolist() == [[10, 12], [12, 15], [15, 19], [22, 25], [30, 31], [31, 32], [32, 33]]
    assert pieces.word.tolist() == [0, 0, 0, 1, 2, 2, 2]  # "God"'s piece too short for a frame joins "G"
    with pytest.raises(ValueError, match=r"row 0: word 1 'God' has 3 characters but 2 character starts"):
        word_pieces(words, spans, [characters[0], [22, 23], characters[2]], model, "row 0")


def test_letters_align_to_espeak_phonemes_monotonically():
    assert align_letters_to_phonemes("beginning", ["b", "I", "g", "I", "n", "I", "N"]).tolist() == [
        0, 1, 2, 3, 4, 4, 5, 6, 6]
    assert align_letters_to_phonemes("earth", ["3:", "T"]).tolist() == [0, 0, 0, 1, 1]
    assert align_letters_to_phonemes("the", ["D", "@"]).tolist() == [0, 0, 1]
    times = letters_from_phonemes("In the", ["I", "n", "D", "@"], np.array([0.0, 0.1, 0.2, 0.3]), 0.4)
    assert times.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.2, 0.25, 0.3])  # the space starts with "the"
    frames = character_frames([times], np.array([[0, 20]]), frame_rate=50)
    assert frames == [[0, 5, 10, 10, 12, 15]]


@pytest.fixture(scope="module")
def spoken():
    from lst_speech.tokenization.corpora.spoken_corpus import sample_spoken_corpus

    corpus, _ = sample_spoken_corpus(num_utterances=24, num_units=20, max_words=12, fit_utterances=24, progress=False)
    return corpus


def test_the_espeak_corpus_carries_character_starts_inside_each_word(spoken):
    for row in spoken:
        assert len(row["character_starts"]) == len(row["words"])
        for word, (start, end), characters in zip(row["words"], row["word_spans"], row["character_starts"]):
            assert len(characters) == len(word) and characters[0] == start
            assert all(start <= c < end for c in characters) and characters == sorted(characters)


def packed_batch(tokenizer, dataset, format="interleave", **options):
    documents = build_format(dataset, tokenizer, format, seed=1, **options)
    return pack(documents, 96, "tokens")


def patches(starts_row, length):
    positions = torch.nonzero(starts_row[:length]).flatten().tolist()
    return list(zip(positions, positions[1:] + [length]))


@pytest.mark.parametrize("aligned_by, silences", [("word", "separate"), ("word", "merged"), ("piece", "separate"),
                                                  ("piece", "merged")])
def test_variants_never_straddle_a_modality_switch_or_a_document(tokenizer, spoken, aligned_by, silences):
    packed = packed_batch(tokenizer, spoken)
    assert sum(len(p) for p in packed["piece_spans"]) > sum(len(w) for w in packed["word_spans"])
    rows = [packed[i] for i in range(len(packed))]
    batch = PackedCollator(tokenizer.pad_token_id, aligned_by, silences)(rows)
    mode = "bpe" if aligned_by == "piece" else "aligned"
    starts = patch_starts(mode, batch["modality_mask"], 4, 64, batch["aligned_boundaries"])
    for index, row in enumerate(rows):
        length, documents = len(row["input_ids"]), set(row["document_starts"])
        modality = np.asarray(row["modality_mask"])
        for first, end in patches(starts[index], length):
            assert len(set(modality[first:end])) == 1  # one modality
            assert not any(first < d < end for d in documents)  # one document


def test_piece_patches_nest_inside_word_patches_and_merged_patches_cover_words_and_silences(tokenizer, spoken):
    rows = [r for r in packed_batch(tokenizer, spoken, format="ulm")]
    words = PackedCollator(tokenizer.pad_token_id, "word")(rows)
    pieces = PackedCollator(tokenizer.pad_token_id, "piece")(rows)
    merged = PackedCollator(tokenizer.pad_token_id, "word", "merged")(rows)
    word_starts = patch_starts("aligned", words["modality_mask"], 4, 10_000, words["aligned_boundaries"])
    piece_starts = patch_starts("bpe", pieces["modality_mask"], 4, 10_000, pieces["aligned_boundaries"])
    merged_starts = patch_starts("aligned", merged["modality_mask"], 4, 10_000, merged["aligned_boundaries"])
    assert (piece_starts | ~word_starts).all() and (piece_starts & ~word_starts).any()  # a refinement, strictly
    for index, row in enumerate(rows):
        speech_mask = np.asarray(row["modality_mask"], dtype=bool)
        length = len(speech_mask)
        for first, end in patches(merged_starts[index], length):
            if not speech_mask[first]:
                continue
            if first == 0 and all(a >= end for a, _ in row["word_spans"]):
                continue  # a row packed from the middle of a document opens with the tail of a speech block
            inside = [(a, b) for a, b in row["word_spans"] if first <= a and b <= end]
            # every speech patch holds whole words (at least one) and the silence around them, nothing else
            assert inside and all(not (a < first < b or a < end < b) for a, b in row["word_spans"])
    # merged patches are longer on average: the paper's 9.4 against 5.8 tokens per word patch
    def mean_speech_patch(starts, batch):
        speech_starts = starts & batch["modality_mask"]
        return batch["modality_mask"].sum().item() / speech_starts.sum().item()

    assert mean_speech_patch(merged_starts, merged) > mean_speech_patch(word_starts, words)


def test_rows_without_character_times_get_pieces_only_when_the_fallback_is_asked(tokenizer, spoken):
    bare = spoken.remove_columns("character_starts")
    assert all(len(p) == 0 for p in build_format(bare, tokenizer, "ulm")["piece_spans"])
    fallback = build_format(bare, tokenizer, "ulm", piece_timing="proportional")
    real = build_format(spoken, tokenizer, "ulm")
    assert all(len(p) >= len(w) for p, w in zip(fallback["piece_spans"], fallback["word_spans"]))
    assert fallback["piece_spans"] != real["piece_spans"]  # the fallback is not what the phonemes give
    # rows that have character times keep them when the fallback is asked
    assert build_format(spoken, tokenizer, "ulm", piece_timing="proportional")["piece_spans"] == real["piece_spans"]
    assert proportional_character_starts(["abcd"], [[10, 18]]) == [[10, 12, 14, 16]]
    with pytest.raises(ValueError, match=r"piece_timing must be one of \('characters', 'proportional'\)"):
        build_format(spoken, tokenizer, "ulm", piece_timing="guess")


def test_bpe_training_on_data_without_piece_spans_is_refused_before_training(tokenizer, spoken, tmp_path):
    from lst_speech.training.arguments import PretrainingArguments
    from lst_speech.training.data.checks import check_packed_columns

    packed = packed_batch(tokenizer, spoken.remove_columns("character_starts"))
    config = LSTConfig(patching_mode="bpe")
    with pytest.raises(ValueError, match=r"rows have word spans but no piece spans .*character_starts"):
        check_packed_columns(packed, "data/", config)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['piece_spans'\]"):
        check_packed_columns(packed.remove_columns("piece_spans"), "data/", config)
    check_packed_columns(packed_batch(tokenizer, spoken), "data/", config)  # with character times: fine
    with pytest.raises(ValueError, match="patching_mode 'bpe' patches by pieces"):
        PretrainingArguments(output_dir=str(tmp_path), patching_mode="bpe", aligned_by="word")
    with pytest.raises(ValueError, match=r"aligned_silences one of \('separate', 'merged'\)"):
        PretrainingArguments(output_dir=str(tmp_path), aligned_silences="dropped")


def test_ctc_character_times_survive_regrouping_into_espeak_words():
    from lst_speech.tokenization.alignment.word_alignment import WordAlignment

    alignment = WordAlignment(["In", "the"], [[0.0, 0.1], [0.12, 0.3]], [np.array([0.0, 0.05]),
                                                                          np.array([0.12, 0.2, 0.25])])
    grouped = alignment.regroup(["In the"])
    assert grouped.character_times[0].tolist() == [0.0, 0.05, 0.12, 0.12, 0.2, 0.25]
    with pytest.raises(ValueError, match="one time per character"):
        WordAlignment(["In"], [[0.0, 0.1]], [np.array([0.0])])


def test_the_curriculum_moves_from_merged_piece_patches_to_static(tokenizer, spoken):
    from lst_speech.training.steps import patching_for

    packed = packed_batch(tokenizer, spoken)
    batch = PackedCollator(tokenizer.pad_token_id, "piece", "merged")([packed[i] for i in range(4)])
    config = LSTConfig(patching_mode="curriculum", curriculum_aligned_until=5, curriculum_static_from=10,
                       patch_size=4, max_patch_length=16)
    early, late = (patching_for(batch, config, 0, step, 0, 0) for step in (0, 20))
    aligned = patch_starts("bpe", batch["modality_mask"], 4, 16, batch["aligned_boundaries"])
    assert torch.equal(early, aligned) and torch.equal(late, patch_starts("static", batch["modality_mask"], 4, 16))


@pytest.mark.slow
def test_pretraining_runs_with_bpe_patches_and_merged_silences(tokenizer, spoken, tmp_path):
    import json
    import os
    import subprocess
    import sys

    tokenizer.save_pretrained(tmp_path / "tokenizer")
    packed_batch(tokenizer, spoken).save_to_disk(tmp_path / "data")
    command = [sys.executable, "-m", "lst_speech.training.pretrain", "--tokenizer", str(tmp_path / "tokenizer"),
               "--train_data", str(tmp_path / "data"), "--output_dir", str(tmp_path / "run"), "--preset", "tiny",
               "--max_steps", "3", "--per_device_batch_size", "2", "--warmup_steps", "1", "--logging_steps", "1",
               "--save_steps", "0", "--report_to", "none", "--patching_mode", "bpe", "--aligned_silences", "merged"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (run["patching_mode"], run["aligned_by"], run["aligned_silences"]) == ("bpe", "piece", "merged")
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 3
