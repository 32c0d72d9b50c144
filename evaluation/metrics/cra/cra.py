"""Context retrieval accuracy (CRA, SUTLM): does a joint LM prefer each continuation after its own context?"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
CRA takes an N x N matrix of continuation log-likelihoods S[i, j] = log p(continuation j | context i),
summed over the continuation's tokens only. For each continuation j, the retrieved context is
argmax_i S[i, j]; CRA is the fraction of continuations whose retrieved context is their own. Chance is 1/N.
Prompts and continuations may be in either modality (u2u, u2t, t2u, t2t).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one row per context i: the N log-likelihoods S[i, 0..N-1] of every continuation after it.
    references: for each context i, the column of its own continuation (a permutation of 0..N-1; usually i).
Returns:
    cra: the fraction of continuations that retrieve their own context (ties go to the first context).
    chance: 1 / N.
    num_contexts: N.
Example:
    >>> from lst_speech.evaluation.metrics import metric_path
    >>> cra = evaluate.load(metric_path("cra"))
    >>> cra.compute(predictions=[[-1.0, -9.0], [-5.0, -2.0]], references=[0, 1])
    {'cra': 1.0, 'chance': 0.5, 'num_contexts': 2}
"""

_CITATION = """
@inproceedings{chou2023sutlm,
  title={Toward Joint Language Modeling for Speech Units and Text},
  author={Chou, Ju-Chieh and Chien, Chung-Ming and Hsu, Wei-Ning and Livescu, Karen and Babu, Arun and Conneau, Alexis and Baevski, Alexei and Auli, Michael},
  booktitle={Findings of EMNLP},
  year={2023}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ContextRetrievalAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float64")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        scores = np.asarray(predictions, dtype=np.float64)
        size = len(references)
        if scores.ndim != 2 or scores.shape != (size, size):
            raise ValueError(f"CRA needs a square N x N score matrix with one row per context; got shape {scores.shape}.")
        if not np.isfinite(scores).all():
            raise ValueError("CRA scores contain NaN or infinite log-likelihoods.")
        references = np.asarray(references)
        if sorted(references.tolist()) != list(range(size)):
            raise ValueError("references must map each context to a different continuation column (a permutation).")
        own_context = np.empty(size, dtype=np.int64)
        own_context[references] = np.arange(size)  # own_context[j]: the context whose continuation is j
        retrieved = scores.argmax(axis=0)
        return {"cra": float((retrieved == own_context).mean()), "chance": 1.0 / size, "num_contexts": size}
