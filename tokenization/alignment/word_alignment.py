"""Word alignments: words with times (seconds), their checks, and their conversion to unit-frame spans.

The gaps between word spans are the silences that aligned patching turns into patches of their own. Readers
(`alignment_readers`) and aligners (`pocketsphinx_aligner`, `ctc_aligner`) produce `WordAlignment`s; this is
where they are checked against the transcript and become frames.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np


@dataclass
class WordAlignment:
    """Words and their `[start, end]` times in seconds, in order; aligners that see characters (CTC) also
    give each character's start time per word."""

    words: list[str]
    times: np.ndarray  # (words, 2)
    character_times: list[np.ndarray] | None = None

    def __post_init__(self):
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1, 2)
        if len(self.words) != len(self.times):
            raise ValueError(f"{len(self.words)} words but {len(self.times)} time spans.")
        if self.character_times is not None:
            bad = [i for i, (w, t) in enumerate(zip(self.words, self.character_times)) if len(w) != len(t)]
            if len(self.character_times) != len(self.words) or bad:
                raise ValueError(f"character_times must give one time per character of each of the {len(self.words)} "
                                 f"words; word {bad[0] if bad else len(self.character_times)} does not match.")

    def frame_spans(self, frame_rate: float, num_frames: int, duration: float | None = None) -> np.ndarray:
        return word_times_to_frame_spans(self.times, frame_rate, num_frames, duration)

    def regroup(self, groups: list[str]) -> WordAlignment:
        """Merge consecutive words into `groups` (e.g. espeak's "In the"): a group spans from its first word's
        start to its last word's end."""
        counts = [len(group.split()) for group in groups]
        if sum(counts) != len(self.words):
            raise ValueError(f"The groups hold {sum(counts)} words but the alignment {len(self.words)}.")
        bounds = np.cumsum([0] + counts)
        times = [(self.times[a, 0], self.times[b - 1, 1]) for a, b in zip(bounds[:-1], bounds[1:])]
        characters = None
        if self.character_times is not None:  # a group's spaces start with the word after them
            characters = [np.concatenate([np.r_[np.asarray(self.character_times[i]), self.character_times[i + 1][:1]]
                                          if i + 1 < b else np.asarray(self.character_times[i]) for i in range(a, b)])
                          for a, b in zip(bounds[:-1], bounds[1:])]
            if any(len(c) != len(g) for c, g in zip(characters, groups)):
                characters = None  # the groups are not the words joined by single spaces: no character times
        return WordAlignment(list(groups), np.array(times), characters)

    def check_transcript(self, transcript: str) -> None:
        """Raise if the aligned words are not the transcript's words (case and punctuation aside)."""
        aligned = [w for word in self.words for w in normalise_words(word)]
        expected = normalise_words(transcript)
        for index, (got, want) in enumerate(zip(aligned, expected)):
            if got != want:
                raise ValueError(f"Alignment word {index} is {got!r} but the transcript has {want!r} there.")
        if len(aligned) != len(expected):
            raise ValueError(
                f"The alignment has {len(aligned)} words and the transcript {len(expected)}: "
                f"{'transcript words missing' if len(aligned) < len(expected) else 'extra words'} from word "
                f"{min(len(aligned), len(expected))}."
            )


def normalise_words(text: str) -> list[str]:
    """Lower-case words without surrounding punctuation (inner apostrophes kept): what aligners and
    transcripts share."""
    text = unicodedata.normalize("NFKC", text).lower()
    return [w for w in (re.sub(r"^\W+|\W+$", "", t) for t in text.split()) if w]


def silence_spans(word_spans: np.ndarray, num_frames: int) -> np.ndarray:
    """`[start, end)` frame spans of the gaps before, between and after words (empty gaps left out)."""
    word_spans = np.asarray(word_spans, dtype=np.int64).reshape(-1, 2)
    starts = np.r_[0, word_spans[:, 1]]
    ends = np.r_[word_spans[:, 0], num_frames]
    keep = ends > starts
    return np.stack([starts[keep], ends[keep]], axis=1)


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
