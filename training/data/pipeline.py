"""The formats as `datasets` pipelines: batched `map` (with `num_proc`, Arrow-cached), streaming, sharding,
and saving with a dataset card (lst_speech.model_cards.dataset_cards) or pushing to the Hub.

`build_format` works on a `Dataset` (cached, parallel with `num_proc`) or an `IterableDataset` (streamed,
for corpora larger than memory). Randomness (AST spans, LST blocks) comes from `(seed, epoch, row index)`,
so a build is reproducible whatever `num_proc` is, and each epoch can draw new blocks.
"""

from __future__ import annotations

import logging
import os

import datasets
import numpy as np
import pyarrow as pa
from datasets.distributed import split_dataset_by_node

from lst_speech.tokenization.atomic_files import atomic_directory
from lst_speech.tokenization.speech.character_times import proportional_character_starts
from lst_speech.training.data.formats import (
    FORMATS,
    AstConfig,
    InterleaveConfig,
    SpanSampler,
    document_segments,
    encode_documents,
    text_piece_model,
)

PIECE_TIMINGS = ("characters", "proportional")

logger = logging.getLogger(__name__)

SPANS = datasets.Sequence(datasets.Sequence(datasets.Value("int32"), length=2))
FEATURES = datasets.Features(
    {
        "input_ids": datasets.Sequence(datasets.Value("int32")),
        "modality_mask": datasets.Sequence(datasets.Value("int8")),
        "word_spans": SPANS,
        "silence_spans": SPANS,
        "piece_spans": SPANS,
        "format": datasets.Value("string"),
    }
)


def _build_batch(batch: dict, indices: list[int], tokenizer, format: str, seed: int, epoch: int,
                 ast: AstConfig | None, interleave: InterleaveConfig | None, piece_timing: str, arrow: bool):
    rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
    if piece_timing == "proportional":  # asked for: words without character times split by characters
        for row in rows:
            if row.get("character_starts") is None and row.get("word_spans") is not None:
                row["character_starts"] = proportional_character_starts(row["words"], row["word_spans"])
    has_characters = format != "tlm" and any(row.get("character_starts") is not None for row in rows)
    piece_model = text_piece_model(tokenizer) if has_characters else None
    documents = [
        document_segments(format, row, np.random.default_rng([seed, epoch, index]), ast, interleave, f"row {index}",
                          piece_model)
        for row, index in zip(rows, indices)
    ]
    try:
        encoded = encode_documents(tokenizer, documents)
    except ValueError:
        _raise_for_first_bad_row(tokenizer, documents, indices)
        raise
    if not arrow:  # streaming: plain columns
        return {**encoded, "format": [format] * len(rows)}
    columns = {name: _arrow_lists(arrays) for name, arrays in encoded.items()}
    return pa.table({**columns, "format": pa.array([format] * len(rows))}, schema=FEATURES.arrow_schema)


def _raise_for_first_bad_row(tokenizer, documents: list, indices: list[int]) -> None:
    """The tokenizer names a bad segment by its place in the map batch; name the dataset row instead (only
    on the error path: each document is encoded alone until one fails)."""
    for document, index in zip(documents, indices):
        try:
            tokenizer(segments=document)
        except ValueError as error:
            raise ValueError(f"row {index}: {error}") from error


def _arrow_lists(arrays: list[np.ndarray]) -> pa.ListArray:
    """One Arrow list column from per-row arrays, built from one concatenation and the row offsets. It
    replaces datasets' per-row numpy conversion, which took a third of the build time."""
    offsets = np.r_[0, np.cumsum([len(a) for a in arrays])].astype(np.int32)
    values = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int32)
    if values.ndim == 2:  # spans: a list of fixed-size pairs
        return pa.ListArray.from_arrays(offsets, pa.FixedSizeListArray.from_arrays(values.reshape(-1), 2))
    return pa.ListArray.from_arrays(offsets, values)


def build_format(dataset: datasets.Dataset | datasets.IterableDataset, tokenizer, format: str, seed: int = 0,
                 epoch: int = 0, ast: AstConfig | None = None, interleave: InterleaveConfig | None = None,
                 num_proc: int | None = None, batch_size: int = 256, piece_timing: str = "characters"):
    """Token rows in `format` from front-end rows (`text`, `words`, `units`, `word_spans`, as each format needs).

    Piece spans are built for rows with `character_starts`; `piece_timing="proportional"` also splits the
    words of rows without them in proportion to their characters (a fallback without acoustic evidence).
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown format {format!r}; choose one of {FORMATS}.")
    if piece_timing not in PIECE_TIMINGS:
        raise ValueError(f"piece_timing must be one of {PIECE_TIMINGS}, got {piece_timing!r}.")
    needed = {"tlm": {"text"}, "ulm": {"units"}, "cst_speech_text": {"units", "text"},
              "cst_text_speech": {"units", "text"}}.get(format, {"units", "words", "word_spans"})
    columns = dataset.column_names or list(dataset.features or [])
    if not columns and isinstance(dataset, datasets.IterableDataset):  # a stream whose features are unknown
        columns = list(next(iter(dataset), {}))
    missing = needed - set(columns)
    if missing:
        raise ValueError(f"Format {format!r} needs columns {sorted(needed)}; the dataset lacks {sorted(missing)}.")
    ast = ast or AstConfig(SpanSampler())
    interleave = interleave or InterleaveConfig()
    arguments = {"tokenizer": tokenizer, "format": format, "seed": seed, "epoch": epoch, "ast": ast,
                 "interleave": interleave, "piece_timing": piece_timing}
    options = {"batched": True, "batch_size": batch_size, "with_indices": True, "fn_kwargs": arguments,
               "remove_columns": columns, "features": FEATURES}
    if isinstance(dataset, datasets.IterableDataset):
        return dataset.map(_build_batch, **{**options, "fn_kwargs": {**arguments, "arrow": False}})
    options["fn_kwargs"] = {**arguments, "arrow": True}
    return dataset.map(_build_batch, num_proc=num_proc, desc=f"building {format}", **options)


def shard_for_process(dataset, rank: int, world_size: int):
    """This process's share: contiguous shards for a `Dataset`, whole files or every n-th row when streaming."""
    return split_dataset_by_node(dataset, rank=rank, world_size=world_size)


def save_with_card(dataset: datasets.Dataset, directory: str | os.PathLike, card, *, owner: str,
                   extra_files: dict | None = None) -> None:
    """`save_to_disk`, then the card as README.md (and `extra_files`, name -> text) next to the Arrow files, as
    `owner`'s output (atomic_directory: written whole, and only in place of `owner`'s earlier output)."""
    with atomic_directory(directory, owner) as partial:
        dataset.save_to_disk(partial)
        (partial / "README.md").write_text(str(card))
        for name, text in (extra_files or {}).items():
            (partial / name).write_text(text)


def push_with_card(dataset: datasets.Dataset, repo_id: str, card, private: bool = True) -> None:
    """`push_to_hub` plus the card; a clear error when the Hub cannot be reached (offline, no login)."""
    from huggingface_hub import DatasetCard
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    try:
        dataset.push_to_hub(repo_id, private=private)
        DatasetCard(str(card)).push_to_hub(repo_id, repo_type="dataset")
    except (OfflineModeIsEnabled, HfHubHTTPError, OSError, ValueError) as error:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        hint = "HF_HUB_OFFLINE is set: unset it" if offline else "check the network"
        raise RuntimeError(
            f"Could not push the dataset to the Hub as {repo_id!r} ({type(error).__name__}: {error}). "
            f"{hint}, log in with `hf auth login`, or save locally with save_with_card()."
        ) from error
