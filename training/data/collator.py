"""Batches of packed sequences: right-padded tensors plus the alignment boundaries that aligned patching needs."""

from __future__ import annotations

import numpy as np
import torch

from lst_speech.modeling_lst.configuration_lst import ALIGNED_BY, SILENCES
from lst_speech.modeling_lst.patching import merged_silence_boundary_mask, word_boundary_mask


class PackedCollator:
    """`input_ids`, `attention_mask`, `modality_mask` (1 = speech) and `aligned_boundaries`, right-padded.

    The word, piece and silence spans ride along ragged in the rows; here the ones the run patches by become
    one boolean mask of patch starts, which `lst_speech.modeling_lst.patching.patch_starts` reads: word (or, with
    `aligned_by="piece"`, BPE piece) starts and ends, so silences are patches of their own, or with
    `silences="merged"` one boundary in the middle of each silence between words.
    """

    def __init__(self, pad_token_id: int, aligned_by: str = "word", silences: str = "separate"):
        if aligned_by not in ALIGNED_BY or silences not in SILENCES:
            raise ValueError(f"aligned_by must be one of {ALIGNED_BY} and silences one of {SILENCES}; got "
                             f"{aligned_by!r} and {silences!r}.")
        self.pad_token_id, self.aligned_by, self.silences = pad_token_id, aligned_by, silences

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        lengths = [len(row["input_ids"]) for row in rows]
        width = max(lengths)
        input_ids = np.full((len(rows), width), self.pad_token_id, dtype=np.int64)
        modality = np.zeros((len(rows), width), dtype=bool)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        for index, (row, length) in enumerate(zip(rows, lengths)):
            input_ids[index, :length] = row["input_ids"]
            modality[index, :length] = np.asarray(row["modality_mask"], dtype=bool)
            attention[index, :length] = 1
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention),
            "modality_mask": torch.from_numpy(modality),
            "aligned_boundaries": self._aligned_boundaries(rows, modality),
        }

    def _aligned_boundaries(self, rows: list[dict], modality: np.ndarray) -> torch.Tensor:
        def spans(name):
            return [np.asarray([] if row.get(name) is None else row[name], dtype=np.int64).reshape(-1, 2)
                    for row in rows]

        if self.silences == "separate":
            return word_boundary_mask(spans("word_spans" if self.aligned_by == "word" else "piece_spans"),
                                      modality.shape)
        words = spans("word_spans")
        merged = merged_silence_boundary_mask(words, modality)
        if self.aligned_by == "piece":  # pieces nest in words: the starts inside a word split its merged patch
            for row, (pieces, row_words) in enumerate(zip(spans("piece_spans"), words)):
                inner = pieces[~np.isin(pieces[:, 0], row_words[:, 0]), 0]
                merged[row, inner] = True
        return merged
