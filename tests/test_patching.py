"""Patching: hand-checked patch lengths for every mode and the edge cases."""

from __future__ import annotations

import pytest
import torch

from lst_speech.modeling_lst.patching import (
    aligned_patch_starts,
    aligned_probability,
    patch_ids_from_starts,
    patch_lengths_from_starts,
    patch_starts,
    static_patch_starts,
    word_boundary_mask,
)


def speech(pattern: str) -> torch.Tensor:
    """'t' = text / marker / special token, 's' = speech token."""
    return torch.tensor([[c == "s" for c in pattern]])


def lengths(starts: torch.Tensor) -> list[int]:
    return patch_lengths_from_starts(starts)[0]


def test_static_run_of_ten_gives_4_4_2_and_markers_are_singletons():
    # bos, [Speech], 10 units, [Text], 2 text tokens
    mask = speech("tt" + "s" * 10 + "ttt")
    assert lengths(static_patch_starts(mask, 4)) == [1, 1, 4, 4, 2, 1, 1, 1]


def test_static_edge_cases():
    assert lengths(static_patch_starts(speech("ssssss"), 4)) == [4, 2]  # speech at the start
    assert lengths(static_patch_starts(speech("tsssss"), 4)) == [1, 4, 1]  # speech at the end
    assert lengths(static_patch_starts(speech("tttt"), 4)) == [1, 1, 1, 1]  # no speech run at all
    assert lengths(static_patch_starts(speech("tssts"), 1)) == [1, 1, 1, 1, 1]  # patch_size 1
    assert lengths(static_patch_starts(speech("tssssssss"), 4)) == [1, 4, 4]  # exact multiple


def test_aligned_words_silences_and_long_word_split():
    # bos, then 20 speech tokens: silence [1,3), word [3,16) of 13 tokens, silence [16,18), word [18,21)
    mask = speech("t" + "s" * 20)
    boundaries = word_boundary_mask([[(3, 16), (18, 21)]], mask.shape)
    starts = aligned_patch_starts(mask, boundaries, max_patch_length=8)
    assert lengths(starts) == [1, 2, 8, 5, 2, 3]


def test_aligned_speech_run_without_words_is_one_patch_split_by_the_maximum():
    mask = speech("t" + "s" * 10)
    assert lengths(aligned_patch_starts(mask, torch.zeros_like(mask), max_patch_length=4)) == [1, 4, 4, 2]


def test_patch_ids_count_from_zero_and_none_mode_is_one_token_per_patch():
    mask = speech("tssssst")
    starts = static_patch_starts(mask, 4)
    assert patch_ids_from_starts(starts).tolist() == [[0, 1, 1, 1, 1, 2, 3]]
    assert lengths(patch_starts("none", mask, 4, 8)) == [1] * 7


def test_curriculum_probability_schedule():
    assert [aligned_probability(s, 100, 200) for s in (0, 99, 100, 150, 199, 200, 500)] == [
        1.0, 1.0, 1.0, 0.5, pytest.approx(0.01), 0.0, 0.0]
    assert aligned_probability(5, 10, 10) == 1.0 and aligned_probability(10, 10, 10) == 0.0


def test_mixed_and_curriculum_choose_per_sequence():
    mask = speech("t" + "s" * 12).repeat(400, 1)
    boundaries = word_boundary_mask([[(1, 6), (6, 13)]] * 400, mask.shape)
    static = static_patch_starts(mask, 4)
    aligned = aligned_patch_starts(mask, boundaries, 16)
    generator = torch.Generator().manual_seed(0)
    mixed = patch_starts("mixed", mask, 4, 16, boundaries, mixed_aligned_probability=0.25, generator=generator)
    chose_aligned = (mixed == aligned).all(dim=1)
    assert ((mixed == static).all(dim=1) | chose_aligned).all()
    assert 0.18 < chose_aligned.float().mean() < 0.32
    early = patch_starts("curriculum", mask, 4, 16, boundaries, step=5, aligned_until=10, static_from=20)
    late = patch_starts("curriculum", mask, 4, 16, boundaries, step=25, aligned_until=10, static_from=20)
    assert torch.equal(early, aligned) and torch.equal(late, static)


def test_modes_needing_alignments_say_so():
    with pytest.raises(ValueError, match="needs word boundaries"):
        patch_starts("aligned", speech("ss"), 4, 8)
    with pytest.raises(ValueError, match="Unknown patching mode 'entropy'"):
        patch_starts("entropy", speech("ss"), 4, 8)
