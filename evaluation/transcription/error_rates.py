"""Corpus-level error rates with their uncertainty: words and characters of transcripts, and speech units.

A corpus-level rate is the sum of edits over the sum of reference lengths (jiwer's convention for WER and CER),
not a mean of per-utterance rates, so long utterances weigh as much as their words. Each rate comes with a 95%
bootstrap interval over utterances. Transcripts are compared as `normalise_words` gives them (lower case, no
surrounding punctuation); unit sequences are compared token by token (rapidfuzz's Levenshtein distance, which
takes any sequences of hashables).
"""

from __future__ import annotations

import numpy as np

from lst_speech.evaluation.uncertainty import bootstrap_interval
from lst_speech.tokenization.alignment.word_alignment import normalise_words


def corpus_rate(edits, lengths) -> float:
    return float(np.sum(edits) / np.sum(lengths))


def rate_difference(edits_a, edits_b, lengths_a, lengths_b) -> float:
    return corpus_rate(edits_a, lengths_a) - corpus_rate(edits_b, lengths_b)


def error_counts(references: list[str], hypotheses: list[str]) -> dict:
    """Per utterance: word edits and reference words, character edits and reference characters."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses: they must pair up.")
    words = {"edits": [], "length": []}
    characters = {"edits": [], "length": []}
    for reference, hypothesis in zip(references, hypotheses):
        reference, hypothesis = " ".join(normalise_words(reference)), " ".join(normalise_words(hypothesis))
        if not reference:
            raise ValueError("A reference transcript has no words to score against; drop it or give its text.")
        w = jiwer.process_words(reference, hypothesis)
        c = jiwer.process_characters(reference, hypothesis)
        words["edits"].append(w.substitutions + w.deletions + w.insertions)
        words["length"].append(len(reference.split()))
        characters["edits"].append(c.substitutions + c.deletions + c.insertions)
        characters["length"].append(len(reference))
    return {"words": words, "characters": characters}


def summarise(counts: dict) -> dict:
    """`wer`, `cer` and their `*_interval`s from `error_counts`."""
    summary = {}
    for unit, name in (("words", "wer"), ("characters", "cer")):
        edits, lengths = np.asarray(counts[unit]["edits"]), np.asarray(counts[unit]["length"])
        summary[name] = corpus_rate(edits, lengths)
        summary[f"{name}_interval"] = bootstrap_interval(corpus_rate, edits, lengths)
    return summary


def paired_differences(counts_a: dict, counts_b: dict) -> dict:
    """`wer_difference` and `cer_difference` (A - B) with bootstrap intervals that resample the same utterances
    for both, from two `error_counts` of one set of references."""
    result = {}
    for unit, name in (("words", "wer"), ("characters", "cer")):
        columns = [np.asarray(c[unit][key]) for key in ("edits", "length") for c in (counts_a, counts_b)]
        result[f"{name}_difference"] = rate_difference(*columns)
        result[f"{name}_difference_interval"] = bootstrap_interval(rate_difference, *columns)
    return result


def transcript_error_rates(references: list[str], hypotheses: list[str]) -> dict:
    """WER and CER of `hypotheses` against `references`, with 95% bootstrap intervals."""
    return summarise(error_counts(references, hypotheses))


def unit_error_rate(references, hypotheses) -> dict:
    """Edit distance between unit sequences over reference units (`unit_error_rate`, with its interval), and
    how many hypotheses equal their reference exactly."""
    from rapidfuzz.distance import Levenshtein

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses: they must pair up.")
    edits, lengths = [], []
    for reference, hypothesis in zip(references, hypotheses):
        reference, hypothesis = list(map(int, reference)), list(map(int, hypothesis))
        if not reference:
            raise ValueError("A reference unit sequence is empty: there is nothing to score against.")
        edits.append(Levenshtein.distance(reference, hypothesis))
        lengths.append(len(reference))
    edits, lengths = np.asarray(edits), np.asarray(lengths)
    return {"unit_error_rate": corpus_rate(edits, lengths),
            "unit_error_rate_interval": bootstrap_interval(corpus_rate, edits, lengths),
            "exact_matches": int((edits == 0).sum())}
