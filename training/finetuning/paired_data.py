"""Paired speech and text rows for ASR and TTS fine-tuning: `{id, text, units}` from any of the usual sources.

A source is a folder written by `save_to_disk` (the main job's `corpus/train` and `corpus/held_out`), or
parquet / jsonl / csv files. Text is the `text` column (or SLUE-VoxPopuli's `normalized_text`); speech is the
`units` column, or the `audio` column turned into units by a unit extractor (cached by `datasets`). Rows
without an `id` are named by their index. Rows with no text or no units are errors that name the row, never
dropped.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from lst_speech.evaluation.slue.data import with_units

TEXT_COLUMNS = ("text", "normalized_text")
BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def load_paired(path: str) -> datasets.Dataset:
    """The dataset at `path`: a `save_to_disk` folder or data files (a glob is a `data_files` pattern)."""
    if Path(path).is_dir():
        loaded = datasets.load_from_disk(path)
        if isinstance(loaded, datasets.DatasetDict):
            raise ValueError(f"{path} holds the splits {sorted(loaded)}: pass one of them, e.g. "
                             f"{Path(path) / next(iter(loaded))}.")
        return loaded
    builder = BUILDERS.get(Path(path).suffix)
    if builder is None:
        raise ValueError(f"Cannot read {path!r}: pass a save_to_disk folder or parquet, jsonl or csv files.")
    return datasets.load_dataset(builder, data_files=path, split="train")


def paired_rows(path: str, unit_extractor=None) -> list[dict]:
    """`{id, text, units}` rows of `path` (units from `audio` through `unit_extractor` when one is given)."""
    dataset = load_paired(path)
    text_column = next((c for c in TEXT_COLUMNS if c in dataset.column_names), None)
    if text_column is None:
        raise ValueError(f"{path} has no transcript column ({' or '.join(TEXT_COLUMNS)}); columns: "
                         f"{dataset.column_names}.")
    if "id" not in dataset.column_names:
        dataset = dataset.add_column("id", [f"row{index:06d}" for index in range(len(dataset))])
    if unit_extractor is not None:
        dataset = with_units(dataset, unit_extractor, base_directory=Path(path).parent)
    elif "units" not in dataset.column_names:
        raise ValueError(f"{path} has no `units` column: extract units first (`lst units extract`), or give an "
                         "`audio` column and --unit_extractor.")
    rows = []
    for row in dataset.select_columns(["id", text_column, "units"]):
        if not (row[text_column] or "").strip():
            raise ValueError(f"Row {row['id']!r} of {path} has no transcript: give it its text or leave it out.")
        if not row["units"]:
            raise ValueError(f"Row {row['id']!r} of {path} has no speech units: its audio is empty.")
        rows.append({"id": str(row["id"]), "text": row[text_column], "units": row["units"]})
    if not rows:
        raise ValueError(f"{path} holds no rows.")
    return rows
