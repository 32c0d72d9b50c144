"""SLUE sentiment (SLUE-VoxCeleb) and NER (SLUE-VoxPopuli) data, in the `asapp/slue` Hub schema.

`load_slue` reads the Hub dataset (gated: accept its conditions first) or equivalent local files with the
same columns (parquet, jsonl or csv). `with_units` turns the `audio` column (bytes as in the Hub's parquet,
or paths to local files) into a `units` column with a unit extractor, cached by `datasets`. `sentiment_examples`
and `ner_examples` turn rows into what the fine-tuning and evaluation code needs; SLUE-VoxCeleb's `<mixed>`
rows are left out and counted, never dropped silently, and any other label outside the three classes is an
error.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
import os
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import soundfile

logger = logging.getLogger(__name__)

SENTIMENT_LABELS = ("Negative", "Neutral", "Positive")
UNSCORED_SENTIMENTS = ("<mixed>",)  # in SLUE-VoxCeleb, not scored by the SLUE toolkit
REQUIRED_COLUMNS = {"voxceleb": {"id", "normalized_text", "sentiment"},
                    "voxpopuli": {"id", "normalized_text", "normalized_ner"}}
def slue_ner_format():
    """The slue_ner metric module: the one definition of SLUE's tagged-text format (kept standalone so that
    `evaluate.load` can load it by itself). Imported when first needed: it imports `evaluate` (seconds)."""
    return importlib.import_module("lst_speech.evaluation.metrics.slue_ner.slue_ner")


def _check_json_lines(path: Path) -> None:
    """A line that does not parse is named by file and line number (`datasets` would log a pyarrow traceback)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {number}: not valid JSON ({error}).") from None


def load_slue(task: str, split: str = "validation", data_files=None) -> datasets.Dataset:
    """SLUE `task` ("voxceleb" or "voxpopuli"): from `data_files` in the Hub schema, else from `asapp/slue`."""
    if task not in REQUIRED_COLUMNS:
        raise ValueError(f"task must be 'voxceleb' (sentiment) or 'voxpopuli' (NER), got {task!r}.")
    if data_files is not None:
        first = str(data_files if isinstance(data_files, (str, Path)) else next(iter(data_files)))
        builder = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}.get(Path(first).suffix)
        if builder is None:
            raise ValueError(f"Cannot read {first!r}: use parquet, jsonl or csv files in the asapp/slue schema.")
        files = [data_files] if isinstance(data_files, (str, Path)) else list(data_files)
        for path in files:
            if str(path).endswith(".jsonl") and Path(path).is_file():
                _check_json_lines(Path(path))
        try:
            dataset = datasets.load_dataset(builder, data_files=data_files, split="train")
        except datasets.exceptions.DatasetGenerationError as error:  # a row that does not parse: say which file
            raise ValueError(f"Cannot read {first!r} as {builder}: {error.__cause__ or error}") from error
    else:
        try:
            dataset = datasets.load_dataset("asapp/slue", task, split=split)
        except Exception as error:  # offline, gated or missing: all say the same to the user
            raise ValueError(
                f"Could not load asapp/slue ({task}, {split}): {error}. The dataset is gated on the Hub (accept "
                "its conditions and log in); offline, pass data_files= with files in the same schema."
            ) from error
    missing = REQUIRED_COLUMNS[task] - set(dataset.column_names)
    if missing:
        raise ValueError(f"SLUE {task} data lacks the columns {sorted(missing)}; got {dataset.column_names}.")
    if "audio" in dataset.column_names:  # decoding needs torchcodec; callers read the files with soundfile
        dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
    return dataset


def _waveform(audio: dict, row_id: str, base_directory: Path | None) -> tuple[np.ndarray, int]:
    """The samples of one undecoded `datasets.Audio` value: its bytes, else its file (relative paths are read
    from `base_directory`, the data files' folder, as `datasets` stores them)."""
    if audio is None or (audio.get("bytes") is None and not audio.get("path")):
        raise ValueError(f"Row {row_id!r} has no audio (neither bytes nor a path).")
    if audio.get("bytes") is not None:
        source, name = io.BytesIO(audio["bytes"]), f"the audio bytes of row {row_id!r}"
    else:
        path = Path(audio["path"])
        if not path.is_absolute() and base_directory is not None:
            path = base_directory / path
        source, name = path, f"{path} (row {row_id!r})"
        if not path.is_file():
            raise FileNotFoundError(f"The audio of row {row_id!r}, {path}, does not exist: relative paths are read "
                                    f"from the data files' folder ({base_directory}); check data_dir.")
    try:
        waveform, sampling_rate = soundfile.read(source, dtype="float32", always_2d=False)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"Cannot read {name}: {error}") from error
    return waveform, sampling_rate


def _extractor_fingerprint(extractor) -> str:
    """What the units depend on: the extractor's kind, settings and centroids."""
    digest = hashlib.sha256(repr(sorted(extractor.config().items())).encode())
    digest.update(np.ascontiguousarray(extractor.centroids).tobytes())
    return digest.hexdigest()[:16]


def _audio_files_state(dataset: datasets.Dataset, base_directory: Path | None) -> str:
    """Size and modification time of every audio file referred to by path (rows without bytes): the dataset's
    own fingerprint covers only the paths, and a file replaced in place must not be read back from the cache.
    Read from the Arrow column, so the audio bytes are not loaded."""
    state = []
    for chunk in dataset.data.column("audio").chunks:
        for data, path in zip(chunk.field("bytes").is_null().to_pylist(), chunk.field("path").to_pylist()):
            if data and path:
                file = Path(path) if Path(path).is_absolute() or base_directory is None else base_directory / path
                stat = file.stat() if file.exists() else None
                state.append(f"{file}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{file}:missing")
    return "\n".join(state)


def with_units(dataset: datasets.Dataset, extractor, base_directory: str | os.PathLike | None = None,
               batch_size: int = 16) -> datasets.Dataset:
    """`dataset` with a `units` column: each row's `audio` resampled to the extractor's rate and turned into
    unit ids. The result is cached by `datasets` under a fingerprint of the dataset and the extractor, so a
    second run with the same audio and extractor reads the units back instead of extracting again."""
    if "audio" not in dataset.column_names:
        raise ValueError(f"Speech input needs audio, but the data has no `audio` column (columns: "
                         f"{dataset.column_names}); add one, or a `units` column extracted beforehand.")
    if isinstance(dataset.features["audio"], datasets.Audio) and dataset.features["audio"].decode:
        dataset = dataset.cast_column("audio", datasets.Audio(decode=False))
    base = Path(base_directory) if base_directory is not None else None

    def units_of(batch):
        waveforms = [_waveform(audio, row_id, base) for audio, row_id in zip(batch["audio"], batch["id"])]
        units = []
        for (waveform, sampling_rate), row_id in zip(waveforms, batch["id"]):
            try:
                units.append(extractor(waveform, sampling_rate).astype(np.int32))
            except ValueError as error:  # empty, silent or non-finite audio: say which row
                raise ValueError(f"Row {row_id!r}: {error}") from error
        return {"units": units}

    fingerprint = hashlib.sha256(f"{dataset._fingerprint}-units-{_extractor_fingerprint(extractor)}".encode())
    fingerprint.update(_audio_files_state(dataset, base).encode())
    without_units = dataset.remove_columns([c for c in ("units",) if c in dataset.column_names])
    return without_units.map(
        units_of, batched=True, batch_size=batch_size, new_fingerprint=fingerprint.hexdigest()[:32],
        features=datasets.Features({**without_units.features, "units": datasets.Sequence(datasets.Value("int32"))}),
        desc="audio -> units",
    )


def sentiment_examples(dataset) -> tuple[list[dict], Counter]:
    """`{id, text, label}` rows with one of the three sentiments, and a count of the rows left out: SLUE's own
    `<mixed>` rows, which its toolkit does not score. Any other label is an error (a typo, or another task's
    data), not a row to drop."""
    kept, other = [], Counter()
    for row in dataset:
        if row["sentiment"] in SENTIMENT_LABELS:
            kept.append({"id": row["id"], "text": row["normalized_text"], "label": row["sentiment"]})
        elif row["sentiment"] in UNSCORED_SENTIMENTS:
            other[row["sentiment"]] += 1
        else:
            raise ValueError(f"Row {row['id']!r} has sentiment {row['sentiment']!r}, which is not a SLUE-SA class: "
                             f"use one of {SENTIMENT_LABELS} (or {UNSCORED_SENTIMENTS[0]}, left out as SLUE does).")
    return kept, other


def _entities(annotation) -> list[tuple[str, int, int]]:
    """SLUE NER spans as (tag, start, length): from a list of triples, or a dict of lists."""
    if annotation is None:
        return []
    if isinstance(annotation, dict):
        return list(zip(annotation["type"], annotation["start"], annotation["length"]))
    return [(tag, int(start), int(length)) for tag, start, length in annotation]


def ner_examples(dataset, tag_set: str = "combined") -> list[dict]:
    """`{id, text, tagged}` rows: the transcript and its end-to-end tagged form (raw tag characters; with the
    combined set, the entities it discards left untagged), the NER target."""
    ner_format = slue_ner_format()
    return [{"id": row["id"], "text": row["normalized_text"],
             "tagged": ner_format.tagged_text(row["normalized_text"], _entities(row["normalized_ner"]), tag_set)}
            for row in dataset]
