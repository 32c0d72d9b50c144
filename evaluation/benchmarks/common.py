"""What the spoken benchmark readers share: stimuli, their audio and units, and the rule all four benchmarks score by.

sWUGGY, sBLIMP, SALMon and spoken StoryCloze are sets of pairs: a positive stimulus that a language model should
score higher than its negative twin, sometimes after a shared prompt. Every reference scorer counts a pair as
1 when the positive scores higher, 0.5 on a tie and 0 otherwise: ZeroSpeech 2021's `evaluate_by_pair`
(zerospeech/zerospeech2021, `zerospeech2021/lexical.py` and `syntactic.py`), SALMon's `salmon.py`
(slp-rl/salmon) and slamkit's `modelling_metric` (slp-rl/slamkit, `slamkit/metric/modelling_metric.py`, which
scores sStoryCloze and tStoryCloze). `pair_outcomes` applies that rule to the log-likelihoods of
`continuation_log_likelihoods` (`multiple_choice_accuracy` gives a k-way tie 1/k, the same rule for k endings).
How the pair outcomes are then averaged is each benchmark's own (its module says how).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
from tqdm.auto import tqdm

from lst_speech.evaluation.likelihood import NORMALIZATIONS, continuation_log_likelihoods
from lst_speech.evaluation.multiple_choice import MultipleChoiceItem
from lst_speech.evaluation.uncertainty import mean_interval

DIRECTIONS = ("S->S", "T->T", "S->T", "T->S")


@dataclass
class Stimulus:
    """One recording, as a file or an undecoded `datasets.Audio` value (bytes or a path), and its transcript where
    the release has one. `name` says where it came from, in messages and as the key of its units."""

    name: str
    audio: Path | dict | None
    text: str | None = None


@dataclass
class Pair:
    """A positive and a negative stimulus, an optional prompt both follow, and the fields the benchmark's own rule
    groups pairs by (voice, id, frequency, type, subset, ...)."""

    id: str
    positive: Stimulus
    negative: Stimulus
    prompt: Stimulus | None = None
    fields: dict = field(default_factory=dict)


def read_stimulus_audio(stimulus: Stimulus) -> tuple[np.ndarray, int]:
    """The samples and sampling rate of a stimulus, read with soundfile (torchaudio and torchcodec are not needed)."""
    from lst_speech.tokenization.speech.audio import read_audio

    audio = stimulus.audio
    if isinstance(audio, Path):
        return read_audio(audio)
    if not audio or (audio.get("bytes") is None and not audio.get("path")):
        raise ValueError(f"{stimulus.name} has no audio (neither bytes nor a path).")
    if audio.get("bytes") is None:
        return read_audio(audio["path"])
    try:
        return soundfile.read(io.BytesIO(audio["bytes"]), dtype="float32", always_2d=False)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"Cannot read the audio bytes of {stimulus.name}: {error}") from error


def load_extractor(directory: str | os.PathLike):
    """Any saved unit extractor: `lst units fit`'s folder (unit_extractor.json) or a transformers feature extractor
    (preprocessor_config.json, as a model release ships it)."""
    from lst_speech.tokenization.feature_extraction_units import UnitFeatureExtractor
    from lst_speech.tokenization.speech.unit_extraction import CONFIG_FILE, load_unit_extractor

    directory = Path(directory)
    if (directory / CONFIG_FILE).is_file():
        return load_unit_extractor(directory)
    if (directory / "preprocessor_config.json").is_file():
        return UnitFeatureExtractor.from_pretrained(directory).unit_extractor
    raise FileNotFoundError(f"--extractor {directory}: no {CONFIG_FILE} (`lst units fit`) or preprocessor_config.json "
                            "(a release's feature extractor) there; pass a saved unit extractor's folder.")


def stimulus_units(pairs: list[Pair], extractor, progress: str | None = None) -> dict[str, np.ndarray]:
    """Units of every stimulus with audio, by name; each file is read and extracted once."""
    stimuli = {s.name: s for pair in pairs for s in (pair.prompt, pair.positive, pair.negative)
               if s is not None and s.audio is not None}
    units = {}
    for name, stimulus in tqdm(stimuli.items(), desc=progress, unit="file", disable=progress is None, leave=False):
        waveform, sampling_rate = read_stimulus_audio(stimulus)
        try:
            units[name] = extractor(waveform, sampling_rate)
        except ValueError as error:  # empty, silent or too short: say which file
            raise ValueError(f"{name}: {error}") from error
    return units


def pair_items(pairs: list[Pair], direction: str, units: dict[str, np.ndarray]) -> list[MultipleChoiceItem]:
    """The pairs as two-ending items in `direction` (prompt modality -> ending modality, S = units, T = text), the
    positive ending first. Pairs without a prompt are read whole, so only S->S and T->T apply to them."""
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}; choose from {DIRECTIONS}.")

    def segment(stimulus: Stimulus, modality: str):
        if modality == "T":
            if stimulus.text is None:
                raise ValueError(f"Direction {direction} needs the text of {stimulus.name}, and the data has none.")
            return stimulus.text
        if stimulus.name not in units:
            raise ValueError(f"Direction {direction} needs the audio of {stimulus.name}, and the data has none.")
        return units[stimulus.name]

    items = []
    for pair in pairs:
        if pair.prompt is None and direction[0] != direction[-1]:
            raise ValueError(f"Pair {pair.id!r} has no prompt: a cross-modal direction ({direction}) needs one; "
                             "score it S->S or T->T.")
        context = [] if pair.prompt is None else [segment(pair.prompt, direction[0])]
        endings = [[segment(pair.positive, direction[-1])], [segment(pair.negative, direction[-1])]]
        items.append(MultipleChoiceItem(context, endings, 0, pair.id))
    return items


def pair_outcomes(model, tokenizer, items: list[MultipleChoiceItem], batch_size: int = 16,
                  progress: str | None = None) -> dict[str, np.ndarray]:
    """Per normalization, each pair's outcome: 1 if the positive ending (index 0) scores higher, 0.5 on a tie, 0
    otherwise. Scores are the endings' log-likelihoods given the prompt, as `continuation_log_likelihoods` computes
    them (summed, per token, per unit or character)."""
    if not items:
        raise ValueError("No pairs to score: check that the data folder holds the benchmark's files.")
    scores = continuation_log_likelihoods(model, tokenizer, [(item.context, ending) for item in items
                                                             for ending in item.endings], batch_size, progress)
    outcomes = {}
    for normalization in NORMALIZATIONS:
        values = scores.normalized(normalization)
        positive, negative = values[0::2], values[1::2]
        outcomes[normalization] = 0.5 * (positive == negative) + (positive > negative)
    return outcomes


def score_pairs(model, tokenizer, pairs: list[Pair], directions, extractor, summarize, batch_size: int = 16,
                label: str = "") -> dict:
    """Per direction, `summarize(pairs, outcomes)`: the benchmark's own scores of the pairs' outcomes. Audio is
    turned into units once, with `extractor` (None when every direction is T->T)."""
    spoken = any("S" in direction for direction in directions)
    if spoken and extractor is None:
        raise ValueError(f"{label or 'The benchmark'} is spoken: pass --extractor (a saved unit extractor).")
    if spoken and extractor.num_units != tokenizer.num_units:
        raise ValueError(f"The extractor makes {extractor.num_units} units but the model's tokenizer has "
                         f"{tokenizer.num_units}: pass the extractor the model was trained with.")
    units = stimulus_units(pairs, extractor, progress=f"{label} units") if spoken else {}
    results = {}
    for direction in directions:
        items = pair_items(pairs, direction, units)
        outcomes = pair_outcomes(model, tokenizer, items, batch_size, progress=f"{label} {direction}")
        results[direction] = summarize(pairs, outcomes)
    return results


def summarize_accuracy(pairs: list[Pair], outcomes: dict[str, np.ndarray]) -> dict:
    """`accuracy_<normalization>` with its interval, the mean pair outcome: StoryCloze's and SALMon's score."""
    row: dict = {"num_pairs": len(pairs)}
    for normalization, scores in outcomes.items():
        row[f"accuracy_{normalization}"], row[f"accuracy_{normalization}_ci95"] = mean_interval(scores)
    return row


def load_table(data: str, config: str | None = None, split: str = "train"):
    """Rows in a Hub schema: a folder saved with `save_to_disk`, a folder of parquet files (a copy of the Hub
    repository's files), or a Hub dataset id (`config`, `split`) through `datasets.load_dataset`."""
    import datasets

    path = Path(data)
    if (path / "dataset_dict.json").is_file():
        saved = datasets.load_from_disk(str(path))
        if split not in saved:
            raise ValueError(f"{path} holds the splits {sorted(saved)}, not {split!r}; pass --split.")
        return saved[split]
    if (path / "state.json").is_file():
        return datasets.load_from_disk(str(path))
    if path.is_dir():
        files = sorted(str(f) for f in path.rglob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"{path} holds neither the release's audio files nor parquet files or a dataset "
                                    "saved with save_to_disk.")
        return datasets.load_dataset("parquet", data_files=files, split="train")
    if path.exists() or data.count("/") != 1:
        raise FileNotFoundError(f"--data {data}: no such folder, and not a Hub dataset id (owner/name).")
    try:
        return datasets.load_dataset(data, config, split=split)
    except Exception as error:  # offline, missing, gated: all say the same to the user
        raise ValueError(f"Could not load the Hub dataset {data} ({config or 'default'}, {split}): {error}. Offline, "
                         "pass a local copy (the release's folder, or the repository's parquet files).") from error


def audio_columns(table, columns: tuple[str, ...], source: str):
    """`table` with `columns` as undecoded audio (bytes or paths, read later with soundfile), or an error naming the
    columns it lacks."""
    import datasets

    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"{source} lacks the audio columns {missing} (columns: {table.column_names}).")
    for column in columns:
        table = table.cast_column(column, datasets.Audio(decode=False))
    return table


def read_text(path: Path) -> str | None:
    """A transcript file's text, or None where the release has no such file."""
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None



def zerospeech_pairs(data: str, task: str, split: str, group: tuple[str, ...], text_column: str,
                     required: tuple[str, ...] = (), by_position: bool = False) -> list[Pair]:
    """The minimal pairs of a ZeroSpeech 2021 task (`lexical` = sWUGGY, `syntactic` = sBLIMP) in the release's
    layout: `<data>/<task>/<split>/gold.csv` and one `<filename>.wav` per gold row beside it (`data` may also be
    that split folder itself), as zerospeech/zerospeech2021 `zerospeech2021/cli/evaluate.py` reads it. gold.csv is
    comma-separated with a header, a row per file, `correct` 1 (word, grammatical sentence) or 0; the public zip
    has gold.csv for `dev` only (the organisers keep the test gold, `ZEROSPEECH2021_TEST_GOLD` in that file).

    How rows become pairs is each toolkit's:
    - `by_position` (sBLIMP): the k-th `correct` 1 row with the k-th 0 row in file order (zerospeech2021
      `syntactic.py` `load_data`; zerospeech/benchmarks `zerospeech/tasks/lm/syntactic.py`
      `run_syntactic_comparison`); the toolkits keep the 1-row's labels, so two rows that differ in a `group`
      column or `voice` are an error here instead of a silent mis-pairing;
    - else (sWUGGY): every 1-row with every 0-row of the same `group` columns and voice, an inner merge
      (zerospeech/benchmarks `zerospeech/tasks/lm/lexical.py` `load_and_format`; zerospeech2021 `lexical.py`
      `load_data` pairs by position, the same pairs when each (id, voice) has one word and one non-word); a key
      with words but no non-word, or the reverse, is an error (the merge would drop it silently).
    """
    import csv

    folder = Path(data)
    if not (folder / "gold.csv").is_file():
        folder = folder / task / split
    gold = folder / "gold.csv"
    if not gold.is_file():
        raise FileNotFoundError(f"--data {data}: no {task}/{split}/gold.csv (nor gold.csv) there; pass the ZeroSpeech "
                                "2021 dataset folder (https://download.zerospeech.com/archive/2021/"
                                "zerospeech2021-dataset.zip, unzipped) or its split folder (the zip has gold.csv "
                                "for dev only).")
    keys = (*group, "voice")
    rows: tuple[list, list] = ([], [])  # correct 1, correct 0; in file order
    with open(gold, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = sorted({"filename", "correct", *keys, *required} - set(reader.fieldnames or ()))
        if missing:
            raise ValueError(f"{gold} lacks the columns {missing} (header: {reader.fieldnames}).")
        for line, row in enumerate(reader, start=2):
            if row["correct"] not in ("0", "1"):
                raise ValueError(f"{gold}:{line}: `correct` must be 1 or 0, got {row['correct']!r}.")
            wav = folder / f"{row['filename']}.wav"
            if not wav.is_file():
                raise FileNotFoundError(f"{gold}:{line}: its file {wav.name} is not in {folder}.")
            row["stimulus"], row["line"] = Stimulus(str(wav), wav, row.get(text_column) or None), line
            rows[row["correct"] == "0"].append(row)
    if not rows[0] and not rows[1]:
        raise ValueError(f"{gold} has a header but no rows.")
    matched = []
    if by_position:
        if len(rows[0]) != len(rows[1]):
            raise ValueError(f"{gold}: {len(rows[0])} correct and {len(rows[1])} incorrect rows; the toolkit pairs "
                             "them by position, so each correct row needs its incorrect twin.")
        for positive, negative in zip(*rows):
            if any(positive[k] != negative[k] for k in keys):
                raise ValueError(f"{gold}: lines {positive['line']} and {negative['line']} are the toolkit's pair "
                                 f"(the same position among correct and incorrect rows) but differ in {keys}: "
                                 f"{[positive[k] for k in keys]} and {[negative[k] for k in keys]}.")
            matched.append((positive, negative))
    else:
        groups: dict[tuple, tuple[list, list]] = {}
        for correct, group_rows in zip((True, False), rows):
            for row in group_rows:
                groups.setdefault(tuple(row[k] for k in keys), ([], []))[not correct].append(row)
        for key, (positives, negatives) in groups.items():
            if not positives or not negatives:
                raise ValueError(f"{gold}: {dict(zip(keys, key))} has {len(positives)} correct and "
                                 f"{len(negatives)} incorrect files; each correct file needs its incorrect twin.")
            matched += [(positive, negative) for positive in positives for negative in negatives]
    pairs = []
    for positive, negative in matched:
        fields = {k: v for k, v in positive.items() if k not in ("stimulus", "line")}
        fields["negative_text"] = negative.get(text_column) or None
        pairs.append(Pair(positive["id"], positive["stimulus"], negative["stimulus"], fields=fields))
    return pairs
