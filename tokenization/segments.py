"""Typed segments of a joint speech-text sequence, and validation of what users pass in.

A sequence is a list of segments: text (a `str`) or speech (unit ids, optionally with word spans in
unit frames). Users may pass plain strings, arrays/lists/tensors of unit ids, `SpeechSegment`s, or
dicts (`{"text": ...}` / `{"units": ..., "word_spans": ...}`, as stored in `datasets` rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SpeechSegment:
    """Unit ids of one stretch of speech, with optional `[start, end)` word spans in unit frames."""

    units: np.ndarray
    word_spans: np.ndarray | None = field(default=None)


# Parsed segments: text, a unit array (speech without word spans), or a SpeechSegment with word spans.
Segment = str | np.ndarray | SpeechSegment


def _to_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # torch.Tensor, without importing torch
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def as_unit_array(units: Any, where: str) -> np.ndarray:
    """Units as a 1-D integer numpy array; the id range is checked separately (batch-wide, by the tokenizer)."""
    array = _to_numpy(units)
    if array.ndim != 1:
        raise ValueError(f"{where}: unit array must be 1-D, got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{where}: unit array is empty; drop the segment or give it units.")
    if array.dtype == object or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{where}: unit ids must be integers, got dtype {array.dtype}. Convert k-means labels with "
            f".astype(int) only if they are whole numbers."
        )
    return array


def validate_units(units: Any, num_units: int, where: str) -> np.ndarray:
    """`as_unit_array` plus the id range, with an error naming the first unit outside it."""
    array = as_unit_array(units, where)
    bad = np.flatnonzero((array < 0) | (array >= num_units))
    if bad.size:
        index = int(bad[0])
        raise ValueError(
            f"{where}: unit id {int(array[index])} at index {index} is outside 0..{num_units - 1} "
            f"(the tokenizer has {num_units} units)."
        )
    return array


def _validate_word_spans(spans: Any, num_frames: int, where: str) -> np.ndarray:
    array = _to_numpy(spans)
    if array.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{where}: word spans must be integer [start, end) pairs of shape (n, 2), got shape {array.shape} "
            f"and dtype {array.dtype}."
        )
    array = array.astype(np.int64, copy=False)
    starts, ends = array[:, 0], array[:, 1]
    checks = [
        (starts < 0, "starts before frame 0"),
        (ends > num_frames, f"ends after the last unit (the segment has {num_frames} units)"),
        (ends <= starts, "is empty or reversed"),
    ]
    for failed, reason in checks:
        bad = np.flatnonzero(failed)
        if bad.size:
            index = int(bad[0])
            raise ValueError(f"{where}: word span {index} {tuple(array[index].tolist())} {reason}.")
    overlaps = np.flatnonzero(starts[1:] < ends[:-1])
    if overlaps.size:
        index = int(overlaps[0]) + 1
        raise ValueError(
            f"{where}: word span {index} {tuple(array[index].tolist())} overlaps or precedes span "
            f"{index - 1} {tuple(array[index - 1].tolist())}; spans must be sorted and disjoint."
        )
    return array


def parse_segments(sequence: Any, sequence_index: int | None = None) -> list[Segment]:
    """Validate one sequence of user segments into `str` / `SpeechSegment` items.

    Unit ids are not range-checked here: the tokenizer checks all units of a batch at once.
    """
    prefix = "" if sequence_index is None else f"sequence {sequence_index}, "
    if not isinstance(sequence, (list, tuple)) or (sequence and _is_unit_id(sequence[0])):
        raise ValueError(
            f"{prefix}expected a list of segments (e.g. ['hello', units_array]), got a single "
            f"{type(sequence).__name__}; wrap it in a list."
        )
    segments: list[Segment] = []
    for index, item in enumerate(sequence):
        if type(item) is np.ndarray and item.ndim == 1 and item.size and item.dtype.kind in "iu":
            segments.append(item)  # the common case, kept cheap
            continue
        where = f"{prefix}segment {index}"
        if isinstance(item, dict):
            item = _segment_from_dict(item, where)
        if isinstance(item, str):
            if not item or item.isspace():
                raise ValueError(f"{where}: text segment is empty; drop the segment or give it text.")
            segments.append(item)
            continue
        if isinstance(item, SpeechSegment):
            units, spans = item.units, item.word_spans
        elif not looks_like_units(item) and not isinstance(item, (list, tuple)):
            raise ValueError(f"{where} is {item!r} ({type(item).__name__}): a segment is text (a str) or speech "
                             "(unit ids as an array, tensor or list, a SpeechSegment, or a {'text'|'units': ...} "
                             "dict). A missing transcript or unit column would show up like this.")
        else:
            units, spans = item, None
        units = as_unit_array(units, where)
        if spans is None:
            segments.append(units)
        else:
            segments.append(SpeechSegment(units, _validate_word_spans(spans, len(units), where)))
    if not segments:
        raise ValueError(f"{prefix}the sequence has no segments.")
    return segments


def _is_unit_id(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def looks_like_units(value: Any) -> bool:
    """An array, a tensor, or a non-empty list of integers: one speech segment rather than a sequence."""
    if isinstance(value, np.ndarray) or hasattr(value, "detach"):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_unit_id(v) for v in value)


def _segment_from_dict(item: dict, where: str) -> Segment:
    if "text" in item and "units" not in item:
        return item["text"]
    if "units" in item and "text" not in item:
        return SpeechSegment(item["units"], item.get("word_spans"))
    raise ValueError(f"{where}: a dict segment needs exactly one of 'text' or 'units', got keys {sorted(item)}.")
