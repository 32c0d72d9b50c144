"""PELM under a tiny external LM trained here on the built-in sample text, and against a hand computation."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import evaluate
import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from lst_speech.evaluation.metrics import metric_path
from lst_speech.tokenization import train_text_sentencepiece

from conftest import random_text_lm

PELM = metric_path("pelm")
CONTEXTS = ["in the beginning god created", "and god said", "and the evening and the morning"]
CONTINUATIONS = ["the heaven and the earth", "let there be light", "were the first day and it was good"]


def pelm_module():
    spec = importlib.util.spec_from_file_location("pelm", Path(PELM) / "pelm.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.fixture(scope="module")
def untrained_lm(sample_verses, tmp_path_factory) -> str:
    """A random 1-layer Llama over a SentencePiece model that keeps a leading space as a lone "▁" piece."""
    text_model = train_text_sentencepiece(sample_verses[:800], vocab_size=400, byte_fallback=False,
                                          remove_extra_whitespaces=False)
    model, tokenizer = random_text_lm(text_model, 32, 1)
    directory = tmp_path_factory.mktemp("untrained_lm")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def by_hand(directory: str) -> tuple[list[float], list[int]]:
    """Each continuation's negative log-likelihood and token count: one unpadded forward per pair of the whole
    text, a log-softmax written out, and the continuation's pieces found by tokenizing it alone."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(directory)
    model = LlamaForCausalLM.from_pretrained(directory).eval()
    totals, counts = [], []
    for context, continuation in zip(CONTEXTS, CONTINUATIONS):
        ids = tokenizer(f"{context} {continuation}")["input_ids"]
        pieces = len(tokenizer(continuation, add_special_tokens=False)["input_ids"])  # its own word pieces
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
        totals.append(-sum(float(log_probs[t - 1, ids[t]]) for t in range(len(ids) - pieces, len(ids))))
        counts.append(pieces)
    return totals, counts


def test_pelm_equals_a_perplexity_computed_by_hand(untrained_lm):
    totals, counts = by_hand(untrained_lm)
    pelm = evaluate.load(str(PELM))
    arguments = {"predictions": CONTINUATIONS, "references": CONTINUATIONS, "contexts": CONTEXTS,
                 "model_id": untrained_lm, "batch_size": 2}  # a padded batch and a single row
    corpus = pelm.compute(**arguments)
    assert corpus["perplexity"] == pytest.approx(math.exp(sum(totals) / sum(counts)), rel=1e-5)
    utterance = pelm.compute(**arguments, reduction="utterance")
    per_continuation = [math.exp(t / n) for t, n in zip(totals, counts)]
    geometric_mean = math.exp(sum(math.log(p) for p in per_continuation) / len(per_continuation))
    assert utterance["perplexity"] == pytest.approx(geometric_mean, rel=1e-5)
    # Near-uniform random logits keep the two close, yet over 20 times the tolerance above apart.
    assert abs(utterance["perplexity"] / corpus["perplexity"] - 1) > 2e-4
    with pytest.raises(ValueError, match="reduction must be one of"):
        pelm.compute(**arguments, reduction="mean")


def test_no_stray_word_boundary_piece_is_scored(untrained_lm):
    tokenizer = PreTrainedTokenizerFast.from_pretrained(untrained_lm)
    context, continuation = CONTEXTS[1], CONTINUATIONS[1]
    # " " + continuation on its own starts with a lone "▁" under this model: what the old code scored.
    assert tokenizer.tokenize(" " + continuation)[0] == "▁"
    ids, start, end = pelm_module().continuation_ids(tokenizer, context, continuation)
    assert tokenizer.convert_ids_to_tokens(ids[start:end]) == tokenizer.tokenize(continuation)
    assert tokenizer.convert_ids_to_tokens(ids[:start]) == ["<s>", *tokenizer.tokenize(context)]


@pytest.mark.slow
def test_real_continuations_score_lower_than_scrambled_ones(external_lm, sample_verses):
    pelm = evaluate.load(str(PELM))
    contexts, continuations = [], []
    for verse in sample_verses[:24]:
        words = verse.split()
        contexts.append(" ".join(words[: len(words) // 2]))
        continuations.append(" ".join(words[len(words) // 2 :]))
    scrambled = [" ".join(sorted(c.split(), key=lambda w: (len(w), w[::-1]))) for c in continuations]
    result = pelm.compute(predictions=scrambled, references=continuations, contexts=contexts, model_id=external_lm)
    assert result["reference_perplexity"] < 0.7 * result["perplexity"]
    low, high = result["perplexity_ci95"]
    assert low <= result["perplexity"] <= high
    assert result["reference_perplexity_ci95"][1] < low  # the gap is wider than the noise over 24 continuations
    same = pelm.compute(predictions=continuations, references=continuations, contexts=contexts, model_id=external_lm)
    assert same["perplexity"] == pytest.approx(same["reference_perplexity"])
    assert same["num_scored"] == 24 and same["num_empty"] == 0


def test_repetition_shows_in_auto_bleu_and_distinct_n(external_lm):
    pelm = evaluate.load(str(PELM))
    result = pelm.compute(
        predictions=["the lord the lord the lord", "and he said unto them", ""],
        references=["and god saw the light", "that it was good", "and the evening"],
        contexts=["in the beginning", "and god said", "let there be"],
        model_id=external_lm,
    )
    # "the lord" x3 + "lord the" x2: 5 bigrams, all repeated -> 1.0; the second has none -> 0.0.
    assert result["auto_bleu"] == pytest.approx(0.5)
    # Unigrams: {the, lord} + 5 distinct of 5 = 7 distinct of 11.
    assert result["distinct_1"] == pytest.approx(7 / 11)
    assert (result["num_empty"], result["num_scored"]) == (1, 2)


def test_missing_external_lm_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="reads as a local path, but there is no such directory"):
        evaluate.load(str(PELM)).compute(predictions=["a"], references=["b"], contexts=["c"],
                                         model_id=str(tmp_path / "nothing-here"))
    with pytest.raises(ValueError, match="Offline, pass a local directory"):  # a repo id, offline and not cached
        evaluate.load(str(PELM)).compute(predictions=["a"], references=["b"], contexts=["c"],
                                         model_id="org/no-such-lm")


def test_pelm_runner_samples_and_scores_text_continuations(external_lm, tokenizer, sample_verses):
    from lst_speech.evaluation.pelm_runner import continuation_text, pelm
    from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM

    torch.manual_seed(0)
    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).eval()
    verses = [v.split() for v in sample_verses[:4]]
    prompts = [[np.arange(12) % 50] for _ in verses]  # S->T: speech prompts, text continuations
    result = pelm(model, tokenizer, prompts, [" ".join(v[:5]) for v in verses], [" ".join(v[5:]) for v in verses],
                  external_lm, max_new_tokens=12)
    assert result["num_scored"] + result["num_empty"] == 4 and len(result["continuations"]) == 4
    assert result["perplexity"] > result["reference_perplexity"]  # an untrained model's text is worse
    with pytest.raises(ValueError, match="needs a transcriber"):
        continuation_text([np.array([1, 2])])
    assert continuation_text(["and", np.array([1, 2])], transcriber=lambda units: f"{len(units)} units") == "and 2 units"
    with pytest.raises(ValueError, match="need a transcriber"):
        pelm(model, tokenizer, prompts, ["a"] * 4, ["b"] * 4, external_lm, output_modality="speech")
