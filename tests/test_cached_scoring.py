"""Cached scoring (each prompt run once, its cache continued by each ending) gives the full forwards' scores.

For LST and the Llama baseline, in all four directions, with 2 and 4 endings, left-padded prompt batches,
right-padded ending batches, batches split across cache copies, and prompts that end inside a speech run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

import lst_speech.modeling_lst  # noqa: F401  (registers LST with the Auto classes)
from lst_speech.evaluation.cached_scoring import continues_a_cache, prompt_batches
from lst_speech.evaluation.context_retrieval import DIRECTIONS as CRA_DIRECTIONS
from lst_speech.evaluation.context_retrieval import context_retrieval_matrix
from lst_speech.evaluation.likelihood import continuation_log_likelihoods
from lst_speech.evaluation.multiple_choice import MultipleChoiceItem, multiple_choice_accuracy

MC_DIRECTIONS = ("T->T", "T->S", "S->S", "S->T")


@pytest.fixture(scope="module", params=["lst", "llama"])
def model(request, bases):
    """The saved tiny model with larger weights than the init's, so that a difference in context would show."""
    model = AutoModelForCausalLM.from_pretrained(bases / request.param).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return model


def segment(modality: str, text: str, rng) -> str | np.ndarray:
    """`text`, or 5-18 stand-in units: most speech prompts end inside a patch (of 4), which the ending fills."""
    return text if modality == "T" else rng.integers(0, 50, size=int(rng.integers(5, 19)))


def items(sample_verses, direction: str, num_endings: int, count: int = 5, seed: int = 0) -> list[MultipleChoiceItem]:
    """Items whose endings differ (so that no two tie and the choices are comparable), of 1 to 5 words."""
    rng = np.random.default_rng(seed)
    words = sorted({word for verse in sample_verses[:50] for word in verse.lower().split()})
    made = []
    for index in range(count):
        context = segment(direction[0], " ".join(sample_verses[index * 11].split()[: int(rng.integers(2, 8))]), rng)
        texts = {" ".join(rng.choice(words, size=int(rng.integers(1, 6)))) for _ in range(num_endings)}
        assert len(texts) == num_endings
        endings = [[segment(direction[-1], text, rng)] for text in sorted(texts)]
        made.append(MultipleChoiceItem([context], endings, label=int(rng.integers(num_endings))))
    return made


def scores(model, tokenizer, pairs, batch_size, use_prompt_cache):
    return continuation_log_likelihoods(model, tokenizer, pairs, batch_size, use_prompt_cache=use_prompt_cache)


# 2 endings, 8 rows: four left-padded prompts per batch; 4 endings, 3 rows: a prompt's endings split across copies
# of its cache.
@pytest.mark.parametrize(("num_endings", "batch_size"), [(2, 8), (4, 3)])
def test_multiple_choice_scores_equal_the_full_forwards(model, tokenizer, sample_verses, num_endings, batch_size):
    for direction in MC_DIRECTIONS:
        made = items(sample_verses, direction, num_endings)
        conditional = [(item.context, ending) for item in made for ending in item.endings]
        alone = [([], ending) for _, ending in conditional]  # context gain's scores: one shared prompt, BOS
        for pairs in (conditional, alone):
            cached = scores(model, tokenizer, pairs, batch_size, True)
            plain = scores(model, tokenizer, pairs, batch_size, False)
            np.testing.assert_allclose(cached.log_likelihood, plain.log_likelihood, atol=1e-4, rtol=0,
                                       err_msg=direction)
            assert cached.num_tokens.tolist() == plain.num_tokens.tolist()


def test_multiple_choice_results_equal_the_full_forwards(model, tokenizer, sample_verses):
    made = items(sample_verses, "S->S", 4, seed=1)
    with_cache = multiple_choice_accuracy(model, tokenizer, made, 8, context_gain=True)
    assert with_cache == multiple_choice_accuracy(model, tokenizer, made, 8, context_gain=True, use_prompt_cache=False)


def utterance(rng, index: int, words: list[str]) -> dict:
    """A paired utterance in the speech front end's schema (words, units, word spans in unit frames)."""
    lengths = rng.integers(2, 6, size=len(words))
    ends = np.cumsum(lengths)
    return {"id": str(index), "text": " ".join(words), "words": words,
            "units": rng.integers(0, 50, size=int(ends[-1])), "word_spans": np.stack([ends - lengths, ends], 1)}


def test_cra_matrices_equal_the_full_forwards(model, tokenizer, sample_verses):
    rng = np.random.default_rng(1)
    rows = [utterance(rng, i, sample_verses[i * 5].lower().split()[: int(rng.integers(3, 8))]) for i in range(5)]
    # 4 rows: a prompt's 5 continuations split across two copies of its cache; 10: two left-padded prompts.
    for direction, batch_size in zip(CRA_DIRECTIONS, [4, 10, 4, 10]):
        cached = context_retrieval_matrix(model, tokenizer, rows, direction, batch_size)
        plain = context_retrieval_matrix(model, tokenizer, rows, direction, batch_size, use_prompt_cache=False)
        np.testing.assert_allclose(cached, plain, atol=1e-4, rtol=0, err_msg=direction)


def test_a_prompt_that_ends_inside_a_speech_run_leaves_its_patch_open_for_the_ending(bases, tokenizer):
    lst = AutoModelForCausalLM.from_pretrained(bases / "lst").eval()
    rng = np.random.default_rng(2)
    context = rng.integers(0, 50, size=10)  # patches of 4, 4 and an open one of 2
    endings = [[rng.integers(0, 50, size=n)] for n in (3, 7, 1, 12)]
    prompt = tokenizer(segments=[context])["input_ids"]
    full = tokenizer(segments=[context, endings[0][0]])["input_ids"]
    assert full[: len(prompt)] == prompt and len(full) == len(prompt) + 3  # no marker: one speech run
    with torch.no_grad():
        cache = lst(torch.tensor([prompt]), use_cache=True).cache
    assert int(cache.speech_run_length[0]) % lst.config.patch_size == 2
    pairs = [([context], ending) for ending in endings]
    for batch_size in (1, 4):
        np.testing.assert_allclose(scores(lst, tokenizer, pairs, batch_size, True).log_likelihood,
                                   scores(lst, tokenizer, pairs, batch_size, False).log_likelihood, atol=1e-4, rtol=0)


def test_each_distinct_prompt_runs_once(bases, tokenizer, sample_verses):
    lst = AutoModelForCausalLM.from_pretrained(bases / "lst").eval()
    prefills = []
    lst.register_forward_pre_hook(
        lambda module, args, kwargs: prefills.extend(kwargs["input_ids"].tolist()) if kwargs.get("cache") is None
        else None, with_kwargs=True)
    made = items(sample_verses, "S->T", 4, count=6)
    multiple_choice_accuracy(lst, tokenizer, made, batch_size=8)
    assert len(prefills) == len(made)  # one prompt row per item, not one per ending


def test_prompt_batches_fill_about_batch_size_continuation_rows():
    assert prompt_batches([2, 2, 2, 2, 2], 4) == [[0, 1], [2, 3], [4]]
    assert prompt_batches([4, 9, 1, 1], 4) == [[0], [1], [2, 3]]


def test_models_without_a_cache_are_scored_by_full_forwards():
    assert not continues_a_cache(torch.nn.Linear(2, 2))
