"""What pretraining checks in packed data before it trains: the tokenizer it was built with, the columns its
patching needs, piece spans for patching by pieces (row by row when streamed), and the static patch size the data
was packed for."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pyarrow.compute as pc

from lst_speech.modeling_lst import LSTConfig
from lst_speech.modeling_lst.configuration_lst import WORD_SPAN_MODES


LAYOUT_FILE = "tokenizer_layout.json"  # beside packed data: the id layout of the tokenizer that built it


def check_data_tokenizer(where, tokenizer) -> None:
    """Packed data holds ids of the tokenizer `lst data` built it with (recorded in LAYOUT_FILE, in the folder or in
    each of its `--part` folders); another tokenizer reads them as other tokens. Data without the record (older
    builds, a Hub id) is not checked."""
    folder = Path(where)
    records = [folder / LAYOUT_FILE, *sorted(folder.glob(f"part-*/{LAYOUT_FILE}"))] if folder.is_dir() else []
    layout = tokenizer.vocabulary_layout()
    for record in (path for path in records if path.is_file()):
        try:
            recorded = json.loads(record.read_text())
        except ValueError as error:
            raise ValueError(f"{record} is damaged ({error}): build the data again with `lst data`.") from error
        differing = [f"{key} {recorded.get(key)} in the data, {value} in the tokenizer" for key, value in
                     layout.items() if recorded.get(key) != value]
        if differing:
            raise ValueError(f"{where} was built with another tokenizer than --tokenizer ({'; '.join(differing)}): "
                             "train with the tokenizer the data was built with, or build the data again with this "
                             "one.")


def check_packed_columns(dataset, where: str, config: LSTConfig | None) -> None:
    """Packed rows hold ids and the modality mask; word-based patching also needs the word spans, and patching
    by pieces the piece spans of every row that has words (data built from rows with character times). A
    streamed dataset is checked by its columns here and row by row as it is read (`piece_span_problem`)."""
    aligned = config is not None and config.patching_mode in WORD_SPAN_MODES
    needed = ["input_ids", "modality_mask"] + (["word_spans"] if aligned else [])
    needed += ["piece_spans"] if aligned and config.aligned_by == "piece" else []
    columns = dataset.column_names
    if columns is None:  # a stream whose features are only known once read
        columns = list(next(iter(dataset)))
    missing = [name for name in needed if name not in columns]
    if missing:
        raise ValueError(f"{where} lacks the column(s) {missing} (it has {columns}): train on packed "
                         f"sequences from `lst data`{' with word spans' if 'word_spans' in missing else ''}"
                         f"{PIECE_HINT if 'piece_spans' in missing else ''}.")
    if "piece_spans" in needed and isinstance(dataset, datasets.Dataset):
        words = pc.list_value_length(dataset.data.column("word_spans")).to_numpy(zero_copy_only=False)
        pieces = pc.list_value_length(dataset.data.column("piece_spans")).to_numpy(zero_copy_only=False)
        lacking = np.flatnonzero((words > 0) & (pieces == 0))
        if lacking.size:
            raise ValueError(f"{where}: {lacking.size} of {len(words)} rows have word spans but no piece spans (the "
                             f"first is row {lacking[0]}), so patching by pieces cannot follow them{PIECE_HINT}.")


def piece_span_problem(where: str):
    """The row check of a streamed dataset under patching by pieces: a row with words but no pieces stops
    training with the reason (the stream cannot be scanned up front)."""
    def check(row: dict) -> None:
        if row.get("word_spans") and not row.get("piece_spans"):
            raise ValueError(f"{where}: a streamed row has word spans but no piece spans, so patching by pieces "
                             f"cannot follow it{PIECE_HINT}.")
    return check


PIECE_HINT = ("; piece spans come from front-end rows with character_starts (the espeak corpus and the CTC "
              "aligner give them; `lst data --piece_timing proportional` splits words by characters instead)")


def check_packed_patch_size(dataset, where: str, patch_size: int | None) -> None:
    """Data packed by global positions counts them in static patches of one size; LST trained with another
    `patch_size` would see sequences of another length than the recipe's. Refused before training (data packed
    by tokens, and data packed before rows recorded it, pass)."""
    columns = dataset.column_names
    if patch_size is None or (columns is not None and "packed_patch_size" not in columns):
        return
    if isinstance(dataset, datasets.Dataset):
        sizes = set(dataset.unique("packed_patch_size"))
    else:  # a stream: its first row stands for it
        sizes = {next(iter(dataset)).get("packed_patch_size", 0)}
    sizes.discard(0)
    if sizes and sizes != {patch_size}:
        raise ValueError(f"{where} was packed for static patches of {sorted(sizes)} speech tokens but the model's "
                         f"patch_size is {patch_size}: pack it again with `lst data --patch_size {patch_size}`, or "
                         f"train a model with patch_size {min(sizes)}.")


def streamed_row_check(config: LSTConfig | None, where: str):
    """The row check a streamed dataset needs under the config's patching (None when it needs none)."""
    by_pieces = config is not None and config.aligned_by == "piece" and config.patching_mode in WORD_SPAN_MODES
    return piece_span_problem(where) if by_pieces else None
