"""Packing documents into fixed-length training sequences, counted in tokens or in global positions.

Decision: documents are separated, not masked. Every document starts with BOS and ends with EOS
(`data_formats.encode_documents`), attention runs across documents as in GPT/Llama pretraining, and LST's
patches never straddle a boundary, because BOS, EOS and markers are never speech and so are always patches
of their own. (Block-causal masking would need document-aware masks in the local encoder, both
cross-attentions, the global transformer and the decoder; separators give the same patch structure at no
cost.) `document_starts` is kept in each packed row, so a block-causal variant can be added later.

Budgets: `unit="tokens"` cuts every `sequence_length` tokens; `unit="patches"` every `sequence_length`
global positions under static patching (the patching used at inference; aligned patching of the same row
may give a few more or fewer positions) and only at patch starts. A document that does not fit continues
in the next sequence; word, silence and piece spans cut by a boundary are split, not dropped. Each map batch's
last sequence may be shorter: it is kept (padded by the collator), never discarded.
"""

from __future__ import annotations

import datasets
import numpy as np

from lst_speech.training.data.pipeline import SPANS

PACK_UNITS = ("tokens", "patches")
PACKED_FEATURES = datasets.Features(
    {
        "input_ids": datasets.Sequence(datasets.Value("int32")),
        "modality_mask": datasets.Sequence(datasets.Value("int8")),
        "word_spans": SPANS,
        "silence_spans": SPANS,
        "piece_spans": SPANS,
        "document_starts": datasets.Sequence(datasets.Value("int32")),
        # the static patch size the row was packed for (`unit="patches"`), or 0 (packed by tokens)
        "packed_patch_size": datasets.Value("int32"),
    }
)


def static_patch_start_mask(modality_mask: np.ndarray, patch_size: int) -> np.ndarray:
    """Numpy twin of `lst_speech.modeling_lst.patching.static_patch_starts` for one flat sequence (a test checks they agree)."""
    speech = modality_mask.astype(bool)
    run_start = speech & ~np.r_[False, speech[:-1]]
    starts = ~speech | run_start
    positions = np.arange(len(speech))
    last_start = np.maximum.accumulate(np.where(starts, positions, 0))
    return starts | ((positions - last_start) % patch_size == 0)


def _split_spans(spans: np.ndarray, cuts: np.ndarray) -> list[np.ndarray]:
    """Spans (absolute positions) split at `cuts` (sequence starts), each piece relative to its sequence."""
    bounds = np.r_[cuts, np.iinfo(np.int64).max]
    pieces = [[] for _ in cuts]
    for start, end in spans:
        sequence = int(np.searchsorted(cuts, start, side="right") - 1)
        while start < end:
            stop = min(end, bounds[sequence + 1])
            pieces[sequence].append((start - cuts[sequence], stop - cuts[sequence]))
            start, sequence = stop, sequence + 1
    return [np.array(p, dtype=np.int32).reshape(-1, 2) for p in pieces]


def pack_documents(batch: dict, sequence_length: int, unit: str = "tokens", patch_size: int = 4) -> dict:
    """Pack a batch of documents (lists of columns) into sequences; used through `pack`."""
    if unit not in PACK_UNITS:
        raise ValueError(f"Packing unit must be one of {PACK_UNITS}, got {unit!r}.")
    lengths = np.array([len(ids) for ids in batch["input_ids"]], dtype=np.int64)
    if not lengths.size:
        return {name: [] for name in PACKED_FEATURES}
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    ids = np.concatenate([np.asarray(x, dtype=np.int32) for x in batch["input_ids"]])
    modality = np.concatenate([np.asarray(x, dtype=np.int8) for x in batch["modality_mask"]])
    if unit == "tokens":
        sequence_of_token = np.arange(len(ids)) // sequence_length
    else:
        document_start = np.zeros(len(ids), dtype=bool)
        document_start[offsets] = True
        starts = static_patch_start_mask(modality, patch_size) | document_start
        sequence_of_token = (np.cumsum(starts) - 1) // sequence_length
    cuts = np.r_[0, np.flatnonzero(np.diff(sequence_of_token)) + 1]
    bounds = np.r_[cuts, len(ids)]
    packed = {"input_ids": np.split(ids, cuts[1:]), "modality_mask": np.split(modality, cuts[1:])}
    for name in ("word_spans", "silence_spans", "piece_spans"):
        column = batch.get(name) or [[]] * len(offsets)  # formats built before pieces existed have no piece spans
        spans = [np.asarray(s, dtype=np.int64).reshape(-1, 2) + offset for s, offset in zip(column, offsets)]
        packed[name] = _split_spans(np.concatenate(spans), cuts)
    packed["document_starts"] = [offsets[(offsets >= a) & (offsets < b)] - a for a, b in zip(bounds[:-1], bounds[1:])]
    packed["packed_patch_size"] = [patch_size if unit == "patches" else 0] * len(packed["input_ids"])
    return packed


def pack(dataset, sequence_length: int, unit: str = "tokens", patch_size: int = 4, num_proc: int | None = None,
         batch_size: int = 1000):
    """Packed sequences from a formatted dataset (`Dataset` or streaming `IterableDataset`)."""
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 1:
        raise ValueError(f"sequence_length must be a positive integer, got {sequence_length!r}.")
    if unit not in PACK_UNITS:
        raise ValueError(f"Packing unit must be one of {PACK_UNITS}, got {unit!r}.")
    if unit == "patches" and (isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1):
        raise ValueError(f"patch_size must be a positive integer when packing by patches, got {patch_size!r}.")
    options = {"batched": True, "batch_size": batch_size, "remove_columns": dataset.column_names,
               "features": PACKED_FEATURES,
               "fn_kwargs": {"sequence_length": sequence_length, "unit": unit, "patch_size": patch_size}}
    if isinstance(dataset, datasets.IterableDataset):
        return dataset.map(pack_documents, **options)
    return dataset.map(pack_documents, num_proc=num_proc, desc="packing", **options)


