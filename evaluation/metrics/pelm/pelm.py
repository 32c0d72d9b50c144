"""PELM (SUTLM): perplexity of generated continuations under an external language model.

SUTLM (Chou et al., 2023) defines PELM as the perplexity of a generated continuation under an external text LM
and leaves open how the continuation is tokenized next to its prompt and how perplexities are pooled. Chosen
here:

- The prompt's transcript and the continuation are tokenized as one text, "<prompt> <continuation>", and the
  continuation's tokens are those after the point where that text's ids leave the prompt's own ids. Tokenizing
  " " + continuation apart would start it with a lone word-boundary piece ("▁") under SentencePiece models that
  keep a leading space (Llama-2's, or any trained with remove_extra_whitespaces=false), which the LM would then
  score although it never sees that piece there. A piece spanning the boundary counts as the continuation's.
- `reduction="corpus"` (the default): exp of the total negative log-likelihood over the total number of
  continuation tokens, the usual perplexity of a corpus: every token weighs the same, so a one-token
  continuation cannot swing the value, and it is what this module has always reported.
  `reduction="utterance"`: exp of the mean over continuations of each one's negative log-likelihood per token
  (the geometric mean of per-continuation perplexities), which is slamkit's GenPPL (`asr_perplexity` in
  slamkit/metric/generative_metric.py, `calc_nll` with `len_norm=True`); an arithmetic mean of perplexities
  would be ruled by the single worst continuation. slamkit also scores the continuation alone, where SUTLM (and
  this module) conditions it on the prompt's transcript.
- A trailing end-of-sequence token that the tokenizer adds is not scored.
"""

import functools
import math
import os
from collections import Counter

import datasets
import evaluate
import numpy as np
import torch
from scipy.stats import bootstrap
from transformers import AutoModelForCausalLM, AutoTokenizer

_DESCRIPTION = """
PELM scores generated text continuations by their perplexity under a frozen external causal LM, conditioned
on the prompt's transcript; only the continuation's tokens are scored. The ground-truth continuation's
perplexity is reported as a reference point. Degenerate repetition also gets a low perplexity, so the
module reports auto-BLEU (the share of each continuation's n-grams that occur more than once in it,
averaged over continuations) and distinct-n (distinct n-grams over all n-grams, across continuations).
Empty continuations are counted and left out of the perplexities. Each perplexity comes with a 95% percentile
bootstrap interval over continuations (at least two scored ones), so two models' PELM can be told apart from
noise.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated continuations (text; transcribe speech continuations first).
    references: the ground-truth continuations.
    contexts: the prompts' transcripts.
    model_id: a local path or Hub id of the external causal LM (and its tokenizer).
    batch_size: sequences per forward pass (default 8).
    ngram: n of auto-BLEU (default 2).
    reduction: "corpus" (default; token-weighted) or "utterance" (slamkit's GenPPL); see the module docstring.
Returns:
    perplexity: exp of the negative log-likelihood per continuation token, pooled by `reduction`.
    perplexity_ci95: its 95% bootstrap interval over continuations ([nan, nan] for a single one).
    reference_perplexity, reference_perplexity_ci95: the same for the ground-truth continuations.
    auto_bleu, distinct_1, distinct_2, num_empty, num_scored.
"""

_CITATION = """
@inproceedings{chou2023sutlm,
  title={Toward Joint Language Modeling for Speech Units and Text},
  author={Chou, Ju-Chieh and Chien, Chung-Ming and Hsu, Wei-Ning and Livescu, Karen and Babu, Arun and Conneau, Alexis and Baevski, Alexei and Auli, Michael},
  booktitle={Findings of EMNLP},
  year={2023}
}
"""


REDUCTIONS = ("corpus", "utterance")


def auto_bleu(words: list[str], n: int) -> float:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(1 for gram in grams if counts[gram] > 1) / len(grams)


def distinct(texts: list[list[str]], n: int) -> float:
    grams = [tuple(words[i : i + n]) for words in texts for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Pelm(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Value("string"),
                    "contexts": datasets.Value("string"),
                }
            ),
        )

    def _compute(self, predictions, references, contexts, model_id=None, batch_size=8, ngram=2, reduction="corpus"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")
        if model_id is None:
            raise ValueError("PELM needs model_id: the local path or Hub id of an external causal LM.")
        text = os.fspath(model_id)
        if not os.path.isdir(text) and (os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1):
            raise ValueError(f"The external LM {text!r} reads as a local path, but there is no such directory: check "
                             "the path (or pass an 'org/name' Hub id).")
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_id)
            model = AutoModelForCausalLM.from_pretrained(model_id).eval()
        except OSError as error:
            raise ValueError(
                f"Could not load the external LM {model_id!r} ({error}). Offline, pass a local directory."
            ) from error
        scored = [(p, r, c) for p, r, c in zip(predictions, references, contexts) if p.strip()]
        if not scored:
            raise ValueError("Every continuation is empty; there is nothing to score.")
        generated = negative_log_likelihoods(model, tokenizer, [(c, p) for p, _, c in scored], batch_size)
        reference = negative_log_likelihoods(model, tokenizer, [(c, r) for _, r, c in scored], batch_size)
        for name, (_, counts) in (("continuation", generated), ("reference", reference)):
            if reduction == "utterance" and not counts.all():
                raise ValueError(f"A {name} has no token to score (empty, or first after an empty prompt with no "
                                 "BOS token): its per-token perplexity is undefined.")
        words = [p.split() for p, _, _ in scored]
        perplexity = functools.partial(_perplexity, reduction=reduction)
        return {
            "perplexity": perplexity(*generated),
            "perplexity_ci95": _perplexity_interval(perplexity, *generated),
            "reference_perplexity": perplexity(*reference),
            "reference_perplexity_ci95": _perplexity_interval(perplexity, *reference),
            "auto_bleu": sum(auto_bleu(w, ngram) for w in words) / len(words),
            "distinct_1": distinct(words, 1),
            "distinct_2": distinct(words, 2),
            "num_empty": len(predictions) - len(scored),
            "num_scored": len(scored),
        }


def continuation_ids(tokenizer, context: str, continuation: str) -> tuple[list[int], int, int]:
    """The ids of "<context> <continuation>" tokenized as one text, and the range [start, end) of the
    continuation's tokens in them (see the module docstring)."""
    context, continuation = context.strip(), continuation.strip()
    prefix = tokenizer(context)["input_ids"]
    ids = tokenizer(f"{context} {continuation}" if context else continuation)["input_ids"]
    start = next((i for i, (a, b) in enumerate(zip(prefix, ids)) if a != b), min(len(prefix), len(ids)))
    end = len(ids) - int(tokenizer.eos_token_id is not None and len(ids) > start and ids[-1] == tokenizer.eos_token_id)
    return ids, start, end


def negative_log_likelihoods(model, tokenizer, pairs, batch_size) -> tuple[np.ndarray, np.ndarray]:
    """Per (context, continuation) pair: the continuation's summed negative log-likelihood, and its tokens."""
    totals, counts = [], []
    for begin in range(0, len(pairs), batch_size):
        rows = [continuation_ids(tokenizer, context, continuation) for context, continuation in pairs[begin:begin + batch_size]]
        width = max(len(ids) for ids, _, _ in rows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _, _ in rows])
        attention_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _, _ in rows])
        labels = torch.full_like(input_ids, -100)
        for row, (ids, start, end) in enumerate(rows):
            labels[row, start:end] = input_ids[row, start:end]  # score the continuation only
        with torch.no_grad():
            logits = model(input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device),
                           use_cache=False).logits
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten().to(model.device),
            ignore_index=-100, reduction="none",
        ).view(len(rows), -1)
        totals += losses.sum(dim=1).tolist()
        counts += (labels[:, 1:] != -100).sum(dim=1).tolist()
    return np.asarray(totals), np.asarray(counts)


def _perplexity(totals, counts, reduction="corpus") -> float:
    if reduction == "corpus":
        return math.exp(float(np.sum(totals) / np.sum(counts)))
    return math.exp(float(np.mean(np.asarray(totals) / np.asarray(counts))))


def _perplexity_interval(statistic, totals, counts) -> list[float]:
    """95% percentile bootstrap interval of the perplexity, resampling continuations (scipy's)."""
    if len(totals) < 2:
        return [float("nan"), float("nan")]
    result = bootstrap((totals, counts), statistic, paired=True, vectorized=False, n_resamples=1000,
                       confidence_level=0.95, method="percentile", rng=np.random.default_rng(0))
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]
