"""Batches of packed sequences: right-padded tensors plus the word boundaries that aligned patching needs."""

from __future__ import annotations

import numpy as np
import torch

from modeling_lst.patching import word_boundary_mask


class PackedCollator:
    """`input_ids`, `attention_mask`, `modality_mask` (1 = speech) and `word_boundaries`, right-padded.

    The word and silence spans ride along ragged in the rows; here they become one boolean mask of word
    starts and ends (the silences are what lies between), which `modeling_lst.patching.patch_starts` reads.
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

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
        spans = [np.asarray(row["word_spans"], dtype=np.int64).reshape(-1, 2) for row in rows]
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention),
            "modality_mask": torch.from_numpy(modality),
            "word_boundaries": word_boundary_mask(spans, (len(rows), width)),
        }
