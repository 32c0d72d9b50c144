"""sBLIMP, the syntactic task of the ZeroSpeech 2021 benchmark: is a spoken grammatical sentence more likely than
its ungrammatical twin?

The release (zerospeech2021-dataset.zip, `syntactic/dev/`): a wav per stimulus named by a random id, and
`gold.csv`, comma-separated with a header, a row per wav: `filename`, `id`, `voice`, `type`, `subtype`,
`transcription` and `correct` (1 grammatical, 0 not) (names from zerospeech/zerospeech2021
`zerospeech2021/syntactic.py` `load_data`; the order id/voice, type, subtype, transcription follows from
`evaluate_by_pair`'s positional `iat` reads). `id` repeats across subtypes. A submission would be
`syntactic/dev.txt` (`<filename> <score>` lines); the test gold is not public, so only `dev` can be scored.
Pairs: the k-th correct row with the k-th incorrect row in file order, as both toolkits pair them (zerospeech2021
`load_data`; zerospeech/benchmarks `zerospeech/tasks/lm/syntactic.py`), refused when the two rows differ in type,
subtype, id or voice (`common.zerospeech_pairs`, `by_position`).
Scored as the toolkit does (`evaluate_by_pair`, `evaluate_by_type`; zerospeech/benchmarks `SyntacticTask`):
- each (sentence, non-sentence) pair in one voice scores 1, 0.5 (tie) or 0 (`common.pair_outcomes`);
- a pair's score is the mean over its voices (`groupby(['type', 'subtype', 'id'])`);
- `accuracy` (the leaderboard's "syntactic", `leaderboard.py` `SyntacticScores.general`) is the mean over pairs,
  not a mean of per-type means; `by_type` gives each type's count and mean over its pairs, as `evaluate_by_type`.
Not verified: the layout is read off the toolkits' code; no released gold.csv was readable offline.
"""

from __future__ import annotations

import numpy as np

from lst_speech.evaluation.uncertainty import mean_interval

from .common import Pair, zerospeech_pairs


def load_sblimp(data: str, split: str = "dev") -> list[Pair]:
    """sBLIMP's (grammatical, ungrammatical) pairs of `split`, one per voice."""
    return zerospeech_pairs(data, "syntactic", split, ("type", "subtype", "id"), "transcription", by_position=True)


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
