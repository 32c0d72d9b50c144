"""A word bigram language model in ARPA format, for pocketsphinx to decode in-domain speech.

pocketsphinx's own English LM is general; scoring a vocoder on KJV verses with it mostly measures the LM's
mismatch. No library installable here estimates an ARPA model (kenlm's estimator `lmplz` is a C++ binary its
Python wheel does not ship; SRILM and MITLM are not packaged), so this writes one: absolute discounting with
Katz back-off to add-one-smoothed unigrams, the textbook estimate. Train it on text the evaluation never
transcribes (the training verses), so the recogniser stays independent of the held-out sentences.
"""

from __future__ import annotations

import math
import os
from collections import Counter

from lst_speech.tokenization.alignment.word_alignment import normalise_words

BEGIN, END = "<s>", "</s>"


def write_arpa_bigram(texts, path: str | os.PathLike, discount: float = 0.7, vocabulary=None) -> int:
    """Estimate the bigram model of `texts` (words as `normalise_words` gives them; those outside `vocabulary`,
    when given, are left out) and write it to `path`; returns the number of words it can predict."""
    if not 0 < discount < 1:
        raise ValueError(f"discount must lie in (0, 1), got {discount}.")
    sentences = [[BEGIN, *(w for w in normalise_words(t) if vocabulary is None or w in vocabulary), END]
                 for t in texts]
    sentences = [s for s in sentences if len(s) > 2]
    if not sentences:
        raise ValueError("No text to estimate a language model from (every sentence empty or out of vocabulary).")
    unigrams = Counter(w for s in sentences for w in s)
    bigrams = Counter(pair for s in sentences for pair in zip(s[:-1], s[1:]))
    predicted = {w: c for w, c in unigrams.items() if w != BEGIN}  # <s> starts sentences, it is never predicted
    total, size = sum(predicted.values()), len(predicted)
    unigram_p = {w: (c + 1) / (total + size) for w, c in predicted.items()}
    history_count = Counter()
    for (history, _), count in bigrams.items():
        history_count[history] += count
    followers = Counter(history for history, _ in bigrams)
    bigram_p = {(h, w): (c - discount) / history_count[h] for (h, w), c in bigrams.items()}
    backoff = {}
    for history in history_count:
        left = discount * followers[history] / history_count[history]
        unseen_mass = 1 - sum(unigram_p[w] for (h, w) in bigrams if h == history)
        backoff[history] = left / unseen_mass
    log = math.log10
    lines = ["\\data\\", f"ngram 1={len(unigrams)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    for word in sorted(unigrams):
        probability = -99.0 if word == BEGIN else log(unigram_p[word])
        lines.append(f"{probability:.6f}\t{word}" + (f"\t{log(backoff[word]):.6f}" if word in backoff else ""))
    lines += ["", "\\2-grams:"]
    lines += [f"{log(p):.6f}\t{h} {w}" for (h, w), p in sorted(bigram_p.items())]
    lines += ["", "\\end\\", ""]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return size
