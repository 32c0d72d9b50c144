"""sBLIMP, the syntactic task of the ZeroSpeech 2021 benchmark: is a spoken grammatical sentence more likely than
its ungrammatical twin?

Read from the release (`syntactic/dev/gold.csv` with the columns filename, id, voice, type, subtype,
transcription, correct, and a wav per row; `common.zerospeech_pairs`). Scored as the ZeroSpeech toolkit does
(zerospeech/zerospeech2021, `zerospeech2021/syntactic.py`; the same rule in zerospeech/benchmarks'
`SyntacticTask`):
- each (sentence, non-sentence) pair in one voice scores 1, 0.5 (tie) or 0 (`common.pair_outcomes`);
- a pair's score is the mean over its voices (`groupby(['type', 'subtype', 'id'])`);
- `accuracy` (the leaderboard's "syntactic", `leaderboard.py` `SyntacticScores.general`) is the mean over pairs,
  not a mean of per-type means; `by_type` gives each type's count and mean, as `evaluate_by_type` does.
"""

from __future__ import annotations

import numpy as np

from .common import Pair, mean_interval, zerospeech_pairs


def load_sblimp(data: str, split: str = "dev") -> list[Pair]:
    """sBLIMP's (grammatical, ungrammatical) pairs of `split`, one per voice."""
    return zerospeech_pairs(data, "syntactic", split, ("type", "subtype", "id"), "transcription")


def summarize_sblimp(pairs: list[Pair], outcomes: dict[str, np.ndarray]) -> dict:
    """The toolkit's scores under each normalization: `accuracy_X` (95% interval over pairs) and `by_type_X`."""
    keys = [(pair.fields["type"], pair.fields["subtype"], pair.id) for pair in pairs]
    unique = list(dict.fromkeys(keys))
    row: dict = {"num_pairs": len(unique), "num_voiced_pairs": len(pairs)}
    for normalization, outcome in outcomes.items():
        voices: dict = {}
        for key, score in zip(keys, outcome):
            voices.setdefault(key, []).append(score)
        scores = np.array([np.mean(voices[key]) for key in unique])
        row[f"accuracy_{normalization}"], row[f"accuracy_{normalization}_ci95"] = mean_interval(scores)
        types: dict = {}
        for (kind, _, _), score in zip(unique, scores):
            types.setdefault(kind, []).append(score)
        row[f"by_type_{normalization}"] = [{"type": kind, "n": len(values), "score": float(np.mean(values))}
                                           for kind, values in sorted(types.items())]
    return row
