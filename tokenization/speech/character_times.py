"""Character times inside words: what BPE-aligned patching needs to cut a word's speech at its text pieces.

Two sources, and one fallback that is used only when asked:

- `letters_from_phonemes`: espeak-ng reports each phoneme's start time (PHONEME events). Letters are
  assigned to phonemes by a monotone alignment (dynamic programming over letter-phoneme affinities, a
  phoneme taking 0-3 letters: "ng" -> N, "x" -> k s), so a piece boundary falls on a real phoneme boundary.
  The affinities are ours and approximate; a letter inside a multi-letter phoneme gets a share of its time.
- `ctc_aligner.CtcAligner` emits each character's first frame directly (a real character-level alignment).
- `proportional_character_starts`: a word's frames split in proportion to its characters. No acoustics at
  all; `lst data --piece_timing proportional` asks for it, nothing uses it otherwise.

Characters that are not letters (the space of espeak's "In the", an apostrophe) start with the next letter.
"""

from __future__ import annotations

import numpy as np

# Letters each espeak phoneme mnemonic (its letters, lower-cased first) plausibly spells. Vowels spell any
# vowel letter; unlisted consonants spell their own letter.
_VOWEL_LETTERS = "aeiouy"
_VOWEL_EXTRA_LETTERS = _VOWEL_LETTERS + "rwh"  # "ear" -> 3:, "ow" -> aU, "oh" -> oU
_CONSONANT_LETTERS = {"k": "kcqx", "g": "gx", "f": "fpgh", "v": "vf", "t": "tdc", "d": "dt", "s": "scxz",
                      "z": "zsx", "S": "scth", "Z": "sgzj", "T": "th", "D": "th", "N": "ng", "n": "nk", "j": "yiuj",
                      "w": "wuoh", "h": "hw", "r": "rw", "l": "l", "m": "m", "b": "b", "p": "p", "R": "r"}
_GROUP_PENALTY = {0: -1.5, 1: 0.0, 2: 0.0, 3: 0.0}  # a phoneme taking k letters (extra letters scored below)
_EXTRA_LETTER = {True: -0.25, False: -1.0}  # a further letter of a group that does or does not spell it


def _is_vowel_phoneme(mnemonic: str) -> bool:
    return mnemonic[0] in "aAeEiIoOuUV@03"


def _spelled_by(mnemonic: str) -> tuple[str, str]:
    """Letters that can start a group spelling this phoneme, and letters that can continue it."""
    if _is_vowel_phoneme(mnemonic):
        return _VOWEL_LETTERS + "w", _VOWEL_EXTRA_LETTERS
    if mnemonic.startswith(("tS", "dZ")):
        letters = "ctsh" if mnemonic[0] == "t" else "jgdez"
        return letters, letters
    letters = _CONSONANT_LETTERS.get(mnemonic[0], mnemonic[0].lower())
    return letters, letters + "e"  # doubled letters and silent "e" ("ll", "ne")


def _affinity(group: str, mnemonic: str) -> float:
    """How well a phoneme explains a group of letters."""
    first, extra = _spelled_by(mnemonic)
    score = 2.0 if group[0] in first else -1.0
    return score + sum(_EXTRA_LETTER[letter in extra] for letter in group[1:])


def align_letters_to_phonemes(letters: str, phonemes: list[str]) -> np.ndarray:
    """For each letter, the index of the phoneme it belongs to (non-decreasing), by dynamic programming."""
    letters = letters.lower()
    n, m = len(letters), len(phonemes)
    best = np.full((n + 1, m + 1), -np.inf)
    best[0, 0] = 0.0
    choice = np.zeros((n + 1, m + 1), dtype=np.int64)
    for j in range(1, m + 1):
        for i in range(n + 1):
            for k, penalty in _GROUP_PENALTY.items():
                if k > i or best[i - k, j - 1] == -np.inf:
                    continue
                score = best[i - k, j - 1] + penalty + (_affinity(letters[i - k : i], phonemes[j - 1]) if k else 0.0)
                if score > best[i, j]:
                    best[i, j], choice[i, j] = score, k
    if best[n, m] == -np.inf:  # more than 3 letters per phoneme on average: share the letters out evenly
        return np.minimum((np.arange(n) * m) // max(n, 1), m - 1)
    owner = np.zeros(n, dtype=np.int64)
    i = n
    for j in range(m, 0, -1):
        k = choice[i, j]
        owner[i - k : i] = j - 1
        i -= k
    return owner


def letters_from_phonemes(word: str, phoneme_names: list[str], phoneme_starts: np.ndarray,
                          end: float) -> np.ndarray:
    """Start time (seconds) of each character of `word`, from its phonemes' names and start times; `end` is
    where the word's last phoneme ends. Letters sharing a phoneme split its time evenly."""
    letter_positions = [index for index, character in enumerate(word) if character.isalpha()]
    starts = np.full(len(word), np.nan)
    if not letter_positions or not phoneme_names:
        starts[:] = phoneme_starts[0] if len(phoneme_starts) else end
        return starts
    owner = align_letters_to_phonemes("".join(word[p] for p in letter_positions), phoneme_names)
    phoneme_ends = np.r_[phoneme_starts[1:], end]
    for phoneme in np.unique(owner):
        members = np.flatnonzero(owner == phoneme)
        share = (phoneme_ends[phoneme] - phoneme_starts[phoneme]) / len(members)
        for rank, member in enumerate(members):
            starts[letter_positions[member]] = phoneme_starts[phoneme] + rank * share
    return _fill_from_next(starts, end)


def _fill_from_next(starts: np.ndarray, end: float) -> np.ndarray:
    """Non-letters start with the next letter (or at `end` after the last); the result is non-decreasing."""
    filled = starts.copy()
    following = end
    for index in range(len(filled) - 1, -1, -1):
        if np.isnan(filled[index]):
            filled[index] = following
        following = filled[index]
    return np.minimum.accumulate(filled[::-1])[::-1]


def character_frames(character_times: list[np.ndarray], word_spans: np.ndarray, frame_rate: float) -> list[list[int]]:
    """Per word, the unit frame where each character starts: times floored to frames, kept inside the word's
    `[start, end)` frame span and non-decreasing."""
    frames = []
    for times, (start, end) in zip(character_times, np.asarray(word_spans, dtype=np.int64).reshape(-1, 2)):
        word_frames = np.clip(np.floor(np.asarray(times, dtype=np.float64) * frame_rate).astype(np.int64),
                              start, end - 1)
        word_frames[0] = start
        frames.append(np.maximum.accumulate(word_frames).tolist())
    return frames


def proportional_character_starts(words: list[str], word_spans) -> list[list[int]]:
    """The fallback: each word's frames split in proportion to its characters (no acoustic evidence)."""
    starts = []
    for word, (start, end) in zip(words, np.asarray(word_spans, dtype=np.int64).reshape(-1, 2)):
        starts.append((start + (np.arange(len(word)) * (end - start)) // max(len(word), 1)).tolist())
    return starts
