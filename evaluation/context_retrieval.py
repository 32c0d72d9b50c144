"""CRA runner (SUTLM): N held-out paired utterances, split at a word boundary, scored in four directions.

Each utterance is a row of the speech front end's schema (`text`, `words`, `units`, `word_spans` in unit
frames). It is split at a word boundary into a prompt and a continuation, each available as text and as
units. Every prompt is scored against every continuation (continuation tokens only), and the N x N matrix
goes to the `cra` metric module. Directions: u2u, u2t, t2u, t2t (prompt modality, continuation modality).
"""

from __future__ import annotations

import numpy as np

from lst_speech.evaluation.likelihood import continuation_log_likelihoods
from lst_speech.evaluation.metrics import metric_path
from lst_speech.evaluation.uncertainty import proportion_interval

DIRECTIONS = ("u2u", "u2t", "t2u", "t2t")
CRA_METRIC = metric_path("cra")


def split_paired_utterance(row: dict, fraction: float = 0.5) -> dict:
    """Prompt and continuation of an utterance, as text and as units, split after `fraction` of its words."""
    words, spans, units = row["words"], np.asarray(row["word_spans"]), np.asarray(row["units"])
    if len(words) < 2 or len(words) != len(spans):
        raise ValueError(
            f"Utterance {row.get('id', '?')!r} needs at least two words with one span each to be split; "
            f"got {len(words)} words and {len(spans)} spans."
        )
    cut = min(max(1, round(len(words) * fraction)), len(words) - 1)
    frame = int(spans[cut][0])  # the continuation's speech starts with its first word
    return {
        "t": (" ".join(words[:cut]), " ".join(words[cut:])),
        "u": (units[:frame], units[frame:]),
    }


def context_retrieval_matrix(model, tokenizer, rows, direction: str, batch_size: int = 16,
                             progress: bool = False, use_prompt_cache: bool = True) -> np.ndarray:
    """S[i, j] = log p(continuation j | prompt i), in the direction's modalities; each prompt runs once, its cache
    continued by the N continuations (`use_prompt_cache=False`: N x N full forwards, the same scores)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}.")
    splits = [split_paired_utterance(row) for row in rows]
    prompts = [s[direction[0]][0] for s in splits]
    continuations = [s[direction[2]][1] for s in splits]
    pairs = [([p], [c]) for p in prompts for c in continuations]
    scores = continuation_log_likelihoods(model, tokenizer, pairs, batch_size, f"CRA {direction}" if progress else None,
                                          use_prompt_cache).log_likelihood
    return scores.reshape(len(rows), len(rows))


def context_retrieval_accuracy(model, tokenizer, rows, directions=DIRECTIONS, batch_size: int = 16,
                               progress: bool = False, use_prompt_cache: bool = True) -> dict:
    """CRA per direction, with the chance level (the `cra` evaluate module) and a 95% Wilson interval."""
    import evaluate  # imported here: it takes seconds, and only evaluation needs it

    metric = evaluate.load(CRA_METRIC)
    results = {}
    for direction in directions:
        matrix = context_retrieval_matrix(model, tokenizer, rows, direction, batch_size, progress, use_prompt_cache)
        result = metric.compute(predictions=matrix.tolist(), references=list(range(len(rows))))
        retrieved = round(result["cra"] * result["num_contexts"])
        results[direction] = {**result, "cra_ci95": list(proportion_interval(retrieved, result["num_contexts"]))}
    return results
