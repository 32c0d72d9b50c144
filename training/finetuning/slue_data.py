"""What both SLUE tasks read: rows with units for speech input, a row's input segment, the checkpoint's type."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from lst_speech.evaluation.slue.data import load_slue, with_units


def slue_rows(task: str, path: str, unit_extractor=None):
    """The rows of `path` in the `asapp/slue` `task` schema and, by id, their units: the `units` column, or the
    `audio` column through `unit_extractor` (cached by `datasets`) when one is given."""
    dataset = load_slue(task, data_files=path)
    if unit_extractor is not None:
        dataset = with_units(dataset, unit_extractor, base_directory=Path(path).parent)
    units = dict(zip(dataset["id"], dataset["units"])) if "units" in dataset.column_names else {}
    return dataset, units


def segment_of(row: dict, modality: str):
    """The row's utterance as a tokenizer segment: its transcript, or its unit ids."""
    if modality == "text":
        if not isinstance(row["text"], str):
            raise ValueError(f"Row {row['id']!r}: its transcript is {row['text']!r} "
                             f"({type(row['text']).__name__}), not text.")
        return row["text"]
    if row.get("units") is None:
        raise ValueError(f"Row {row['id']!r} has no units, but speech input was asked for: give the data a `units` "
                         "column (see `lst units extract`), or an `audio` column and --unit_extractor.")
    units = np.asarray(row["units"])
    if units.size and units.dtype.kind not in "iu":  # strings, or floats that a cast would silently truncate
        raise ValueError(f"Row {row['id']!r}: units must be a list of integer unit ids, got {str(row['units'])[:80]}.")
    return units.astype(np.int64)


def model_type_of(model_name_or_path: str) -> str:
    """"lst" or "llama", from a saved checkpoint's config.json."""
    config = Path(model_name_or_path) / "config.json"
    if not config.is_file():
        raise ValueError(f"{model_name_or_path} is not a saved model (no config.json): pass the directory a "
                         "pretraining run wrote (its final/), or one written by save_pretrained.")
    model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    if model_type not in ("lst", "llama"):
        raise ValueError(f"{os.fspath(config)} is a {model_type!r} model; fine-tuning takes LST or the Llama baseline.")
    return model_type
