"""SLUE sentiment analysis (SLUE-VoxCeleb): macro F1 and macro recall over Negative / Neutral / Positive."""

from collections import Counter

import datasets
import evaluate
from sklearn.metrics import f1_score, recall_score

LABELS = ["Negative", "Neutral", "Positive"]

_DESCRIPTION = """
SLUE-SA scores three-way sentiment with scikit-learn's macro-averaged F1 and recall over Negative, Neutral
and Positive, as the SLUE toolkit does. A few SLUE-VoxCeleb rows carry other labels (e.g. "<mixed>"):
rows whose reference is not one of the three are left out of the scores, and counted and reported (never
dropped silently). A prediction outside the three labels counts as wrong.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted sentiment labels (strings).
    references: reference sentiment labels (strings), as in the `sentiment` column of `asapp/slue` voxceleb.
Returns:
    macro_f1, macro_recall: over the three labels, on the scored rows.
    f1_per_label: F1 of each label.
    num_scored: rows scored; num_excluded and excluded_labels: rows left out and their reference labels.
"""

_CITATION = """
@inproceedings{shon2022slue,
  title={SLUE: New Benchmark Tasks for Spoken Language Understanding Evaluation on Natural Speech},
  author={Shon, Suwon and Pasad, Ankita and Wu, Felix and Brusco, Pablo and Artzi, Yoav and Livescu, Karen and Han, Kyu J},
  booktitle={ICASSP},
  year={2022}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SlueSentiment(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references):
        kept = [(p, r) for p, r in zip(predictions, references) if r in LABELS]
        excluded = Counter(r for r in references if r not in LABELS)
        if not kept:
            raise ValueError(f"No reference is one of {LABELS}; got {sorted(excluded)}.")
        predicted, gold = zip(*kept)
        per_label = f1_score(gold, predicted, labels=LABELS, average=None, zero_division=0.0)
        return {
            "macro_f1": float(f1_score(gold, predicted, labels=LABELS, average="macro", zero_division=0.0)),
            "macro_recall": float(recall_score(gold, predicted, labels=LABELS, average="macro", zero_division=0.0)),
            "f1_per_label": dict(zip(LABELS, map(float, per_label))),
            "num_scored": len(kept),
            "num_excluded": sum(excluded.values()),
            "excluded_labels": dict(excluded),
        }
