"""sWUGGY, the lexical task of the ZeroSpeech 2021 benchmark: is a spoken word more likely than a matched non-word?

The release (zerospeech2021-dataset.zip, `lexical/dev/`):
- a wav per stimulus named by a random 11-letter id (`aAAfmkmQpVz.wav`, zerospeech/benchmarks `docs/sLM21.md`);
- `gold.csv`, comma-separated with a header, a row per wav: `filename` (the wav's stem), `id` (the pair),
  `voice`, `frequency` (the word's LibriSpeech count, an integer, `pandas.Int64Dtype`), `word` (empty on non-word
  rows: zerospeech/benchmarks then uses `phones`), `phones`, `length` (phones) and `correct` (1 word, 0 non-word)
  (column names from zerospeech/zerospeech2021 `zerospeech2021/lexical.py` `load_data`; their order id/voice,
  frequency, word, length follows from `evaluate_by_pair`'s positional `iat` reads);
- a submission is `lexical/dev.txt`, a `<filename> <score>` line per wav (`lexical.py` `validate`); we score in
  memory and write no such file. The test gold is not public, so only `dev` can be scored.
Pairs: every word row with every non-word row of the same (id, voice) (`common.zerospeech_pairs`).
Scored as the toolkit does (zerospeech2021 `lexical.py`; zerospeech/benchmarks `zerospeech/tasks/lm/lexical.py`):
- each (word, non-word) pair in one voice scores 1, 0.5 (tie) or 0 (`common.pair_outcomes`);
- a pair's score is the mean over its rows (`groupby('id')`, i.e. over voices), its frequency and length read off
  its first row;
- `accuracy` ("lexical_all", `leaderboard.py` `LexicalScores.general`) is the mean over pairs;
  `in_vocab_accuracy` ("lexical_invocab", `_score_invocab`) is the mean of the frequency bands other than oov
  weighted by their counts `n`, which is the mean over pairs with frequency >= 1 (a pair without a frequency
  falls in no band: it counts in `accuracy` only);
- `by_frequency` uses the toolkit's bands, `pandas.cut(frequency, [0, 1, 5, 20, 100, inf], right=False)` labelled
  oov, 1-5, 6-20, 21-100, >100 (so "1-5" holds 1 to 4 and 100 is ">100"); `by_length` groups by `length`.
No rule for homophones exists in either toolkit; every gold row is kept.
Not verified: the layout is read off the toolkits' code and docs; no released gold.csv or wav listing was
readable offline.
"""

from __future__ import annotations

import math

import numpy as np

from lst_speech.evaluation.uncertainty import mean_interval

from .common import Pair, zerospeech_pairs

BAND_EDGES = (0, 1, 5, 20, 100, math.inf)
BAND_LABELS = ("oov", "1-5", "6-20", "21-100", ">100")


def load_swuggy(data: str, split: str = "dev") -> list[Pair]:
    """sWUGGY's (word, non-word) pairs of `split`, one per voice."""
    return zerospeech_pairs(data, "lexical", split, ("id",), "word", required=("frequency", "length"))


def _number(value: str, column: str, pair: Pair) -> float | None:
    """A gold count (`frequency`, `length`), None where the file leaves it empty."""
    if value in ("", None):
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"sWUGGY pair {pair.id!r} ({pair.positive.name}): {column} must be a number, got "
                         f"{value!r}.") from None


def _band(frequency: float | None) -> str | None:
    if frequency is None or frequency < 0:
        return None
    return next(label for label, high in zip(BAND_LABELS, BAND_EDGES[1:]) if frequency < high)


def _group_means(keys, scores) -> dict:
    """Per key (in the order keys first appear): how many scores it has and their mean."""
    by_key: dict = {}
    for key, score in zip(keys, scores):
        by_key.setdefault(key, []).append(score)
    return {key: (len(values), float(np.mean(values))) for key, values in by_key.items()}


def summarize_swuggy(pairs: list[Pair], outcomes: dict[str, np.ndarray]) -> dict:
    """The toolkit's scores under each normalization: `accuracy_X`, `in_vocab_accuracy_X` (with 95% intervals over
    pairs), `by_frequency_X` and `by_length_X`."""
    first = {}  # the toolkit reads a pair's frequency and length off its first row
    for pair in pairs:
        first.setdefault(pair.id, pair)
    frequency = {i: _number(p.fields["frequency"], "frequency", p) for i, p in first.items()}
    length = {i: _number(p.fields["length"], "length", p) for i, p in first.items()}
    row: dict = {"num_pairs": len(first), "num_voiced_pairs": len(pairs)}
    for normalization, outcome in outcomes.items():
        by_pair = _group_means([pair.id for pair in pairs], outcome)
        scores = np.array([by_pair[i][1] for i in first])
        row[f"accuracy_{normalization}"], row[f"accuracy_{normalization}_ci95"] = mean_interval(scores)
        in_vocab = np.array([by_pair[i][1] for i in first if frequency[i] is not None and frequency[i] >= 1])
        if in_vocab.size:
            mean, interval = mean_interval(in_vocab)
            row[f"in_vocab_accuracy_{normalization}"], row[f"in_vocab_accuracy_{normalization}_ci95"] = mean, interval
        bands = _group_means([_band(frequency[i]) for i in first], scores)
        row[f"by_frequency_{normalization}"] = [
            {"frequency": label, "n": bands.get(label, (0, None))[0], "score": bands.get(label, (0, None))[1]}
            for label in BAND_LABELS]
        lengths = _group_means([length[i] for i in first], scores)
        row[f"by_length_{normalization}"] = [{"length": key, "n": n, "score": score} for key, (n, score)
                                             in sorted(item for item in lengths.items() if item[0] is not None)]
    return row
