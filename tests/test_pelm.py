"""PELM under a tiny external LM trained here on the built-in sample text."""

from __future__ import annotations

import evaluate
import numpy as np
import pytest
import torch

from lst_speech.evaluation.metrics import metric_path

PELM = metric_path("pelm")


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
