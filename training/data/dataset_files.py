"""Where datasets come from and go to: a `save_to_disk` folder, a folder of Parquet shards or a Hub dataset repo,
opened in memory-mapped (`Dataset`) or streamed (`IterableDataset`) form; and streamed rows written out as
Parquet shards, one shard in memory at a time, so a corpus larger than memory can be built and read back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from lst_speech.tokenization.atomic_files import atomic_directory

SAVED_DATASET_FILES = ("state.json", "dataset_info.json", "dataset_dict.json")
SHARD_PATTERN = "data-*.parquet"
INDEX_FILE = "index.json"


def parquet_files(folder: str | os.PathLike) -> list[str]:
    """The Parquet files of a folder (recursively, without hidden temporaries), sorted so every process agrees."""
    return sorted(str(p) for p in Path(folder).rglob("*.parquet") if not any(part.startswith(".") for part in
                                                                           p.relative_to(folder).parts))


def is_saved_dataset(folder: str | os.PathLike) -> bool:
    return any(os.path.isfile(os.path.join(folder, name)) for name in SAVED_DATASET_FILES)


def describe_problem(path: str, streaming: bool) -> str | None:
    """Why `path` cannot be opened as a dataset (None when it can, or when it is left to the Hub)."""
    if os.path.isdir(path):
        if is_saved_dataset(path) or parquet_files(path):
            return None
        return "is neither a dataset saved with save_to_disk nor a folder of Parquet shards"
    if os.path.exists(path):
        return "is a file, not a dataset folder"
    if streaming and "/" in path and not path.startswith((".", "/", "~")) and path.count("/") == 1:
        return None  # an 'org/name' Hub dataset repo, streamed
    return "does not exist"


def open_dataset(path: str, streaming: bool = False, split: str = "train"):
    """The dataset at `path`: a `save_to_disk` folder, a folder of Parquet shards, or (streaming) a Hub repo id.
    Streamed, a saved folder keeps its Arrow files as shards, so processes can split it file by file."""
    problem = describe_problem(path, streaming)
    if problem:
        hint = " or an 'org/name' Hub dataset with --streaming" if not streaming else " or an 'org/name' Hub dataset"
        raise ValueError(f"{path} {problem}: pass a folder from `lst data` (save_to_disk or --streaming Parquet "
                         f"shards){hint}.")
    if os.path.isdir(path) and is_saved_dataset(path):
        dataset = datasets.load_from_disk(path)
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[split]
        return dataset.to_iterable_dataset(num_shards=max(1, len(dataset.cache_files))) if streaming else dataset
    if os.path.isdir(path):
        return datasets.load_dataset("parquet", data_files=parquet_files(path), split=split, streaming=streaming)
    return datasets.load_dataset(path, split=split, streaming=True)


def write_parquet_shards(rows, folder: str | os.PathLike, features: datasets.Features, rows_per_shard: int,
                         card=None, row_group_size: int = 256, *, owner: str, extra_files: dict | None = None) -> dict:
    """Write the rows of an iterable as `data-XXXXX.parquet` shards of `rows_per_shard` rows, plus `index.json`
    (shards and row counts), README.md from `card(index)` when given, and `extra_files` (name -> text). Rows go out in Parquet row groups, so
    only one group is ever in memory. The folder appears whole or not at all, as `owner`'s output (atomic_directory:
    written under a temporary name, renamed when the last shard is done, only in place of `owner`'s earlier one)."""
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be at least 1, got {rows_per_shard}.")
    schema = features.arrow_schema
    shards: list[dict] = []
    with atomic_directory(folder, owner) as partial:
        writer, group, in_shard = None, [], 0

        def shard_name() -> str:
            return f"data-{len(shards):05d}.parquet"

        def write_group():
            nonlocal writer
            if writer is None:
                writer = pq.ParquetWriter(partial / shard_name(), schema)
            writer.write_table(pa.Table.from_pylist(group, schema=schema))
            group.clear()

        def close_shard():
            nonlocal writer, in_shard
            if group or writer is None:
                write_group()
            writer.close()
            shards.append({"file": shard_name(), "rows": in_shard})
            writer, in_shard = None, 0

        for row in rows:
            group.append(features.encode_example(row))  # numpy arrays (a 2-D span array) as lists
            in_shard += 1
            if in_shard == rows_per_shard:
                close_shard()
            elif len(group) == row_group_size:
                write_group()
        if in_shard or not shards:
            close_shard()
        index = {"shards": shards, "rows": sum(shard["rows"] for shard in shards)}
        (partial / INDEX_FILE).write_text(json.dumps(index, indent=2))
        if card is not None:
            (partial / "README.md").write_text(str(card(index)))
        for name, text in (extra_files or {}).items():
            (partial / name).write_text(text)
    return index
