"""Readers for word alignments made elsewhere: Praat TextGrid (Montreal Forced Aligner), CTM and JSON.

Each returns `WordAlignment`s with times in seconds. Silence intervals (empty labels and the usual silence
markers) are not words: they stay as gaps, which `silence_spans` recovers in frames. Everything else is
checked (ordered, non-overlapping, non-negative) and a malformed file names the line or interval at fault.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from praatio import textgrid

from .word_alignment import WordAlignment

SILENCE_LABELS = frozenset({"", "<eps>", "sil", "sp", "spn", "<sil>", "<s>", "</s>", "sil_s"})


def _checked(words: list[str], times: list[tuple[float, float]], where: str) -> WordAlignment:
    for index, (start, end) in enumerate(times):
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end < start:
            raise ValueError(f"{where}: word {index} ({words[index]!r}) has a bad time span ({start}, {end}).")
        if index and start < times[index - 1][1] - 1e-6:
            raise ValueError(
                f"{where}: word {index} ({words[index]!r}) starts at {start:.3f} s, before word {index - 1} "
                f"({words[index - 1]!r}) ends at {times[index - 1][1]:.3f} s."
            )
    return WordAlignment(words, np.array(times, dtype=np.float64).reshape(-1, 2))


def _words_tier_name(names: list[str], tier: str | None, path) -> str:
    if tier is not None:
        if tier not in names:
            raise ValueError(f"{path}: no tier {tier!r}; the tiers are {names}.")
        return tier
    # MFA names the tier "words", or "<speaker> - words" with several speakers.
    candidates = [n for n in names if n.lower() == "words" or n.lower().endswith("- words")]
    if len(candidates) != 1:
        raise ValueError(f"{path}: cannot tell which tier holds the words among {names}; pass tier=...")
    return candidates[0]


def read_textgrid(path: str | os.PathLike, tier: str | None = None) -> WordAlignment:
    """The word tier of a Praat TextGrid (long or short format), parsed by praatio."""
    try:
        grid = textgrid.openTextgrid(os.fspath(path), includeEmptyIntervals=False)
    except Exception as error:  # praatio raises assorted errors for malformed files
        raise ValueError(f"Cannot parse TextGrid {os.fspath(path)!r}: {error}") from error
    tier_obj = grid.getTier(_words_tier_name(grid.tierNames, tier, path))
    if not isinstance(tier_obj, textgrid.IntervalTier):
        raise ValueError(f"{path}: tier {tier_obj.name!r} is a point tier; word alignments are interval tiers.")
    words, times = [], []
    for interval in tier_obj.entries:
        if interval.label.strip().lower() not in SILENCE_LABELS:
            words.append(interval.label.strip())
            times.append((float(interval.start), float(interval.end)))
    return _checked(words, times, f"TextGrid {os.fspath(path)!r}")


def read_ctm(path: str | os.PathLike) -> dict[str, WordAlignment]:
    """A CTM file (`utterance channel start duration word [confidence]` per line) as alignments by utterance."""
    rows: dict[str, tuple[list, list]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith(";;"):
            continue
        fields = line.split()
        if len(fields) not in (5, 6):
            raise ValueError(
                f"{path}, line {number}: expected 'utterance channel start duration word [confidence]', got {line!r}."
            )
        try:
            start, duration = float(fields[2]), float(fields[3])
        except ValueError:
            raise ValueError(f"{path}, line {number}: start and duration must be numbers, got {line!r}.") from None
        if fields[4].lower() in SILENCE_LABELS:
            continue
        words, times = rows.setdefault(fields[0], ([], []))
        words.append(fields[4])
        times.append((start, start + duration))
    if not rows:
        raise ValueError(f"{path} holds no word alignments.")
    return {utterance: _checked(w, t, f"{path}, utterance {utterance!r}") for utterance, (w, t) in rows.items()}


def _from_json_words(entries, where: str) -> WordAlignment:
    words, times = [], []
    for index, entry in enumerate(entries):
        try:
            word, start, end = entry["word"], float(entry["start"]), float(entry["end"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: entry {index} needs 'word', 'start' and 'end', got {entry!r}.") from None
        if not isinstance(word, str):
            raise ValueError(f"{where}: entry {index}'s 'word' is {word!r}, not text; write the word (or \"\" for a "
                             "silence).")
        if word.strip().lower() not in SILENCE_LABELS:
            words.append(word.strip())
            times.append((start, end))
    return _checked(words, times, where)


def read_json_alignment(source) -> WordAlignment | dict[str, WordAlignment]:
    """Alignments from JSON (a path or the parsed object).

    Accepted shapes: a list of `{"word", "start", "end"}`; `{"words": [...]}` (as WhisperX/MFA JSON write);
    or `{utterance: <either of those>}`, which returns a dict by utterance.
    """
    if isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        try:
            source = json.loads(Path(source).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{where} is not valid JSON: {error}") from error
    else:
        where = "JSON alignment"
    if isinstance(source, list):
        return _from_json_words(source, where)
    if isinstance(source, dict) and isinstance(source.get("words"), list):
        return _from_json_words(source["words"], where)
    if isinstance(source, dict) and source and all(isinstance(v, (list, dict)) for v in source.values()):
        return {key: read_json_alignment(value) for key, value in source.items()}
    raise ValueError(f"{where}: expected a list of {{word, start, end}}, {{'words': [...]}}, or alignments by utterance.")
