"""Bad input to evaluation (metric modules, multiple-choice data and runners, SLUE data): an error naming the
problem, or a count in the result where a model's output is malformed; never a score over nothing."""

from __future__ import annotations

import re
from pathlib import Path

import evaluate
import numpy as np
import pytest
import torch

from lst_speech.evaluation.metrics import metric_path
from lst_speech.evaluation.multiple_choice import MultipleChoiceItem, multiple_choice_accuracy
from lst_speech.evaluation.multiple_choice_data import load_story_cloze
from lst_speech.evaluation.slue.data import _waveform

METRICS = Path(metric_path("cra")).parent


def metric(name, **kwargs):
    return evaluate.load(str(METRICS / name), **kwargs)


@pytest.mark.parametrize("name", ["slue_ner", "slue_sa"])
def test_a_metric_over_no_sentences_is_an_error_not_zero(name):
    with pytest.raises(ValueError, match=r"no sentences|No reference"):
        metric(name).compute(predictions=[], references=[])


@pytest.mark.parametrize("reference, glued", [
    ("the @european parliament ] met", "@european"),
    ("the @ european parliament] met", "parliament]"),
    ("met on &tuesday]", "&tuesday]"),
])
def test_a_reference_with_tags_joined_to_words_is_refused(reference, glued):
    with pytest.raises(ValueError, match=rf"Reference 0 has tag marks joined to words \(\['{re.escape(glued)}'"):
        metric("slue_ner").compute(predictions=["the"], references=[reference])


def test_a_prediction_with_tags_joined_to_words_is_counted():
    result = metric("slue_ner").compute(predictions=["the @european parliament] met"],
                                        references=["the @ european parliament ] met"])
    assert result["f1"] == 0.0 and result["num_glued_tag_tokens"] == 2
    clean = metric("slue_ner").compute(predictions=["the @ european parliament ] met"],
                                       references=["the @ european parliament ] met"])
    assert clean["f1"] == 1.0 and clean["num_glued_tag_tokens"] == 0


def test_slue_ner_rejects_an_unknown_configuration():
    with pytest.raises(ValueError, match="config_name must be 'combined' or 'raw'"):
        metric("slue_ner", config_name="ontonotes")


def test_slue_sa_reports_what_it_excluded():
    result = metric("slue_sa").compute(predictions=["Neutral", "Positive"], references=["Neutral", "Disagreement"])
    assert (result["num_scored"], result["num_excluded"]) == (1, 1)


def test_pelm_without_an_external_lm_is_named():
    with pytest.raises(ValueError, match="PELM needs model_id"):
        metric("pelm").compute(predictions=["a"], references=["b"], contexts=["c"])


def test_multiple_choice_over_no_items_is_refused():
    with pytest.raises(ValueError, match="No multiple-choice items to score"):
        multiple_choice_accuracy(None, None, [])


@pytest.mark.parametrize("label", [2, -1])
def test_a_label_outside_the_endings_is_named(label):
    with pytest.raises(ValueError, match=rf"Item 'x': label {label} does not index one of 2 endings"):
        MultipleChoiceItem(["ctx"], [["a"], ["b"]], label, id="x")


HEADER = ("InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,RandomFifthSentenceQuiz1,"
          "RandomFifthSentenceQuiz2,AnswerRightEnding\n")


@pytest.mark.parametrize("body, words", [
    ("", r"has a header but no stories"),
    ("s1,a,b,c,d,e,f,3\n", r":2: AnswerRightEnding must be 1 or 2, got '3'"),
    ("s1,a,b,c,d,e,f,first\n", r":2: AnswerRightEnding must be 1 or 2"),
    ("s1,a,b,c\n", r":2: the row has fewer cells than the header"),
])
def test_bad_story_cloze_files_are_named_with_their_line(tmp_path, body, words):
    (tmp_path / "cloze.csv").write_text(HEADER + body)
    with pytest.raises(ValueError, match=words):
        load_story_cloze(tmp_path / "cloze.csv")


def test_a_story_cloze_file_without_its_columns_is_named(tmp_path):
    (tmp_path / "cloze.csv").write_text("id,text\n1,hello\n")
    with pytest.raises(ValueError, match=r"not a StoryCloze CSV \(no column 'InputSentence1'\)"):
        load_story_cloze(tmp_path / "cloze.csv")


def test_slue_audio_that_does_not_exist_is_named_with_its_row(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"The audio of row 'r7', .*missing.flac, does not exist"):
        _waveform({"path": "missing.flac", "bytes": None}, "r7", tmp_path)
    with pytest.raises(ValueError, match=r"Row 'r8' has no audio"):
        _waveform({"path": None, "bytes": None}, "r8", tmp_path)
    with pytest.raises(ValueError, match=r"Cannot read the audio bytes of row 'r9'"):
        _waveform({"path": None, "bytes": b"not audio"}, "r9", tmp_path)


def test_context_retrieval_names_a_bad_direction(tokenizer):
    from lst_speech.evaluation.context_retrieval import context_retrieval_matrix

    with pytest.raises(ValueError, match="direction must be one of"):
        context_retrieval_matrix(None, tokenizer, [], "S->X")


def test_likelihood_names_an_empty_continuation_and_a_bad_normalisation(tokenizer):
    from lst_speech.evaluation.likelihood import continuation_log_likelihoods
    from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM

    model = LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).eval()
    with pytest.raises(ValueError, match="A continuation needs at least one segment"):
        continuation_log_likelihoods(model, tokenizer, [(["In the beginning"], [])])
    scores = continuation_log_likelihoods(model, tokenizer, [(["In the"], [np.arange(4)])])
    with pytest.raises(ValueError, match="normalization must be one of"):
        scores.normalized("per-word")
    assert torch.isfinite(torch.tensor(scores.log_likelihood)).all()
