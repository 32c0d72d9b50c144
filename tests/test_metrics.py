"""The evaluate metric modules (CRA, SLUE-SA, SLUE-NER), loaded offline from their paths, on hand-computed cases."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import evaluate
import pytest

from lst_speech.evaluation.metrics import metric_path

METRICS = Path(metric_path("cra")).parent


def load(name: str, **kwargs):
    return evaluate.load(str(METRICS / name), **kwargs)


def module(name: str):
    spec = importlib.util.spec_from_file_location(name, METRICS / name / f"{name}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_cra_counts_continuations_that_retrieve_their_own_context():
    # Continuation 0 is most likely after context 0, continuation 1 after context 1, but continuation 2 is
    # most likely after context 0: 2 of 3 retrieved.
    scores = [[-1.0, -8.0, -2.0],
              [-6.0, -1.5, -7.0],
              [-9.0, -9.0, -3.0]]
    assert load("cra").compute(predictions=scores, references=[0, 1, 2]) == {
        "cra": pytest.approx(2 / 3), "chance": pytest.approx(1 / 3), "num_contexts": 3}
    # A permutation: context 0's continuation is column 2, context 1's column 0, context 2's column 1.
    # Retrieved contexts per column are 0, 1, 0; only column 2 (own context 0) is right.
    assert load("cra").compute(predictions=scores, references=[2, 0, 1])["cra"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(("scores", "references", "message"), [
    ([[0.0, 1.0]], [0], "square N x N"),
    ([[0.0, float("nan")], [0.0, 0.0]], [0, 1], "NaN or infinite"),
    ([[0.0, 1.0], [1.0, 0.0]], [0, 0], "permutation"),
    ([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]], [0, 1, 2], "square N x N"),
    ([[0.0, float("inf")], [0.0, 0.0]], [0, 1], "NaN or infinite"),
])
def test_cra_rejects_bad_matrices(scores, references, message):
    with pytest.raises(ValueError, match=message):
        load("cra").compute(predictions=scores, references=references)


def test_slue_sa_macro_scores_and_reported_exclusions():
    result = load("slue_sa").compute(
        predictions=["Positive", "Neutral", "Negative", "Neutral", "Positive"],
        references=["Positive", "Negative", "Negative", "<mixed>", "Disagreement"],
    )
    # Scored rows: (Pos, Pos), (Neu, Neg), (Neg, Neg). F1: Positive 1, Negative 2/3, Neutral 0.
    assert result["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert result["macro_recall"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert result["f1_per_label"] == pytest.approx({"Negative": 2 / 3, "Neutral": 0.0, "Positive": 1.0})
    assert (result["num_scored"], result["num_excluded"]) == (3, 2)
    assert result["excluded_labels"] == {"<mixed>": 1, "Disagreement": 1}


def test_slue_sa_needs_some_scorable_reference():
    with pytest.raises(ValueError, match="No reference is one of"):
        load("slue_sa").compute(predictions=["Positive"], references=["<mixed>"])


def test_slue_ner_parser_on_the_end_to_end_format():
    ner = module("slue_ner")
    assert ner.parse_tagged_text("the # european parliament ] met on & tuesday ]") == [
        ("ORG", "european parliament"), ("WHEN", "tuesday")]
    assert ner.parse_tagged_text("} john smith ] of ` the commission ]", "raw") == [
        ("PERSON", "john smith"), ("ORG", "the commission")]
    # Robust to model output: a new tag closes an open entity, a stray ] is ignored, an open entity ends.
    assert ner.parse_tagged_text("] a $ b # c d ] e % f") == [("PERSON", "b"), ("ORG", "c d"), ("PLACE", "f")]


def test_slue_ner_tagged_text_from_slue_annotations():
    ner = module("slue_ner")
    text = "the european parliament met in strasbourg on tuesday at the summit"
    spans = [("ORG", 4, 19), ("GPE", 31, 10), ("DATE", 45, 7), ("EVENT", 60, 6)]
    assert ner.tagged_text(text, spans) == (
        "the # european parliament ] met in % strasbourg ] on & tuesday ] at the summit")
    assert ner.tagged_text(text, spans, "raw") == (
        "the ` european parliament ] met in % strasbourg ] on @ tuesday ] at the # summit ]")
    with pytest.raises(ValueError, match="Unknown SLUE NER tag 'CITY'"):
        ner.tagged_text(text, [("CITY", 31, 10)])
    with pytest.raises(ValueError, match="overlaps another or lies outside"):
        ner.tagged_text(text, [("ORG", 4, 19), ("GPE", 10, 3)])


def test_slue_ner_f1_and_label_f1():
    result = load("slue_ner").compute(
        predictions=["the # eu parliament ] met on & monday ]", "$ anna ] and $ anna ] spoke"],
        references=["the # eu ] met on & monday ]", "$ anna ] and $ anna ] and $ ben ] spoke"],
    )
    # Pairs: predicted 4, reference 5; correct: (WHEN monday) and (PERSON anna) twice = 3.
    assert result["precision"] == pytest.approx(3 / 4) and result["recall"] == pytest.approx(3 / 5)
    assert result["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    # Tags only: ORG now matches too: 4 correct of 4 predicted and 5 reference.
    assert result["label_precision"] == 1.0 and result["label_recall"] == pytest.approx(4 / 5)
    assert (result["num_reference_entities"], result["num_predicted_entities"]) == (5, 4)


def test_slue_ner_raw_configuration_reads_raw_tag_characters():
    raw = load("slue_ner", config_name="raw").compute(predictions=["@ tuesday ]"], references=["@ tuesday ]"])
    assert raw["f1"] == 1.0
    combined = load("slue_ner").compute(predictions=["@ tuesday ]"], references=["& tuesday ]"])
    assert combined["f1"] == 0.0 and combined["num_predicted_entities"] == 1  # @ is NORP in the combined set
