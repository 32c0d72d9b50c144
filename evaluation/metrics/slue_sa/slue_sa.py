"""SLUE sentiment analysis (SLUE-VoxCeleb): macro F1 and macro recall, computed as the slue-toolkit does.

The reference is asappresearch/slue-toolkit (commit ed23039): `slue_toolkit/eval/eval_w2v_sentiment.py` and
`eval_nlp_sentiment.py` call scikit-learn's `f1_score(gt, preds, average="macro")` and `recall_score(...)`
without `labels=`, so the average runs over every label found in the references or the predictions; and
`slue_toolkit/prepare/prepare_voxceleb.py` (`create_manifest`) keeps only rows whose sentiment is Negative, Neutral
or Positive. So here:

- a label in the references that is never predicted counts, with F1 0;
- a label in neither (possible on a small subset) is not averaged;
- a prediction outside the three labels (a generative model's "happy") is wrong for its row and is a label of
  its own in the average, with F1 and recall 0; it is counted in `num_invalid_predictions`. The toolkit's
  classifiers can never predict one; this is what its scoring call makes of it;
- rows whose reference is not one of the three (SLUE-VoxCeleb's "<mixed>") are left out, counted and reported.

The toolkit reports percentages; this module reports fractions.
"""

from collections import Counter

import datasets
import evaluate
from sklearn.metrics import f1_score, recall_score

LABELS = ["Negative", "Neutral", "Positive"]

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted sentiment labels (strings).
    references: reference sentiment labels (strings), as in the `sentiment` column of `asapp/slue` voxceleb.
Returns:
    macro_f1, macro_recall: over the labels in the scored rows' references and predictions.
    f1_per_label: F1 of each of those labels.
    num_scored: rows scored; num_excluded and excluded_labels: rows left out and their reference labels.
    num_invalid_predictions: scored rows whose prediction is not one of the three labels.
"""

_CITATION = """
@inproceedings{shon2022slue,
  title={SLUE: New Benchmark Tasks for Spoken Language Understanding Evaluation on Natural Speech},
  author={Shon, Suwon and Pasad, Ankita and Wu, Felix and Brusco, Pablo and Artzi, Yoav and Livescu, Karen and Han, Kyu J},
  booktitle={ICASSP},
  year={2022}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class SlueSentiment(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
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
        labels = sorted(set(gold) | set(predicted))  # scikit-learn's own choice when `labels=` is not given
        per_label = f1_score(gold, predicted, labels=labels, average=None, zero_division=0.0)
        return {
            "macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0.0)),
            "macro_recall": float(recall_score(gold, predicted, labels=labels, average="macro", zero_division=0.0)),
            "f1_per_label": dict(zip(labels, map(float, per_label))),
            "num_scored": len(kept),
            "num_excluded": sum(excluded.values()),
            "excluded_labels": dict(excluded),
            "num_invalid_predictions": sum(p not in LABELS for p in predicted),
        }
