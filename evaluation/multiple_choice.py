"""Multiple choice by log-likelihood (StoryCloze, TopicStoryCloze, HellaSwag, sWUGGY/sBLIMP-style pairs).

An item is a context and candidate endings, each a list of segments, so the same runner covers S->S, T->T,
S->T and T->S: the direction is just which modality the context and the endings are in. The ending with the
highest log-likelihood (ending tokens only) is chosen, under each normalisation: the sum, per token, and per
character (text) or unit (speech). All three are reported, named, since papers differ and LST does not say.
Optionally also by context gain (conditional minus unconditional log-likelihood).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from lst_speech.evaluation.likelihood import NORMALIZATIONS, continuation_log_likelihoods
from lst_speech.evaluation.uncertainty import mean_interval


@dataclass
class MultipleChoiceItem:
    context: list
    endings: list[list]
    label: int
    id: str = field(default="")

    def __post_init__(self):
        if not 0 <= self.label < len(self.endings):
            raise ValueError(f"Item {self.id!r}: label {self.label} does not index one of {len(self.endings)} endings.")


def multiple_choice_accuracy(model, tokenizer, items: list[MultipleChoiceItem], batch_size: int = 16,
                             context_gain: bool = False, progress: str | None = None,
                             use_prompt_cache: bool = True) -> dict:
    """Accuracy under each normalisation with its 95% interval (`accuracy_X_ci95`), each item's choice (`choices_X`,
    the first highest-scoring ending) and credit (`correct_X`).

    An item's credit is 1 when the right ending scores highest alone, 1/k when it is among k endings tied at the
    highest score (ZeroSpeech's 0.5 for a tied pair) and 0 otherwise; accuracy is the mean credit, its interval
    Wilson's without ties and a bootstrap over items with them (`mean_interval`).

    With `context_gain`, also `accuracy_context_gain`: endings ranked by log p(ending | context) minus
    log p(ending) (the unconditional normalisation of the GPT-3 paper, section 2.4). It removes how likely
    an ending is on its own, which dominates the choice of a weak model, and keeps what the context adds.
    `use_prompt_cache=False` scores each ending by a full forward of context + ending (the same scores, slower).
    """
    if not items:
        raise ValueError("No multiple-choice items to score: an accuracy over nothing is undefined. Check that the "
                         "evaluation file loaded rows (and that any filter kept some).")
    pairs = [(item.context, ending) for item in items for ending in item.endings]
    scores = continuation_log_likelihoods(model, tokenizer, pairs, batch_size, progress, use_prompt_cache)
    bounds = np.cumsum([0] + [len(item.endings) for item in items])
    labels = np.array([item.label for item in items])
    results: dict = {"num_items": len(items)}
    ranked = {normalization: scores.normalized(normalization) for normalization in NORMALIZATIONS}
    if context_gain:
        unconditional = continuation_log_likelihoods(model, tokenizer, [([], ending) for _, ending in pairs], batch_size,
                                                     progress and f"{progress} (endings alone)", use_prompt_cache)
        ranked["context_gain"] = scores.log_likelihood - unconditional.log_likelihood
    for normalization, values in ranked.items():
        per_item = [values[a:b] for a, b in itertools.pairwise(bounds)]
        correct = [tie_credit(item_values, label) for item_values, label in zip(per_item, labels)]
        results[f"accuracy_{normalization}"], results[f"accuracy_{normalization}_ci95"] = mean_interval(correct)
        results[f"choices_{normalization}"] = [int(np.argmax(item_values)) for item_values in per_item]
        results[f"correct_{normalization}"] = correct
    return results


def tie_credit(values: np.ndarray, label: int) -> float:
    """1/k when the right ending is among the k endings tied at the highest score, else 0: ZeroSpeech 2021's
    0.5 for a tied pair (`evaluate_by_pair`), for any number of endings, so a tie is not handed to ending 0.
    An undefined score (NaN: an ending with no unit to normalise by) is never the highest."""
    values = np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf)
    best = values == values.max()
    return float(best[label] / best.sum())
