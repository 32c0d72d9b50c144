"""Word times (seconds) to word spans in unit frames, with the checks alignments need.

The gaps between spans are the silences that aligned patching turns into patches of their own. Readers for
TextGrid / CTM / JSON alignments and the aligners produce times; this is where they become frames.
"""

from __future__ import annotations

import numpy as np


def word_times_to_frame_spans(times, frame_rate: float, num_frames: int, duration: float | None = None) -> np.ndarray:
    """`[start, end)` frame spans of words given `[start, end]` times in seconds.

    Starts round down and ends up, so every word keeps at least one frame; a word that rounding would make
    overlap its predecessor starts where that one ends. Times must be ordered, non-overlapping and inside
    the audio (`duration`, default the frames' span), else a ValueError names the word.
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1, 2)
    duration = num_frames / frame_rate if duration is None else duration
    for index, (start, end) in enumerate(times):
        if not 0 <= start <= end:
            raise ValueError(f"Word {index}: time span ({start:.3f}, {end:.3f}) is reversed or negative.")
        if end > duration + 1e-6:
            raise ValueError(f"Word {index}: ends at {end:.3f} s, after the audio ({duration:.3f} s).")
        if index and start < times[index - 1][1] - 1e-6:
            raise ValueError(f"Word {index}: starts at {start:.3f} s, before word {index - 1} ends.")
    spans = np.zeros((len(times), 2), dtype=np.int64)
    previous_end = 0
    for index, (start, end) in enumerate(times):
        first = max(int(np.floor(start * frame_rate)), previous_end)
        last = max(int(np.ceil(end * frame_rate)), first + 1)
        if last > num_frames:
            raise ValueError(f"Word {index} has no frame left: the alignment packs more words than frames.")
        spans[index] = first, last
        previous_end = last
    return spans
