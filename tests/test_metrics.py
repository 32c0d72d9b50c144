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


@pytest.mark.parametrize(("predictions", "references", "macro_f1", "macro_recall", "f1_per_label"), [
    # Negative is never predicted: it is averaged with F1 0. Neutral: 1 right, 1 wrong guess -> 2/3.
    (["Neutral", "Neutral", "Positive", "Positive"], ["Negative", "Neutral", "Positive", "Positive"], 5 / 9, 2 / 3,
     {"Negative": 0.0, "Neutral": 2 / 3, "Positive": 1.0}),
    # Negative is in neither: only the two labels present are averaged.
    (["Neutral", "Positive"], ["Neutral", "Positive"], 1.0, 1.0, {"Neutral": 1.0, "Positive": 1.0}),
    # "happy" is wrong for its row (Neutral F1 and recall 0) and a label of its own with F1 and recall 0.
    (["Negative", "happy", "Positive"], ["Negative", "Neutral", "Positive"], 2 / 4, 2 / 4,
     {"Negative": 1.0, "Neutral": 0.0, "Positive": 1.0, "happy": 0.0}),
])
@pytest.mark.filterwarnings("ignore:Recall is ill-defined")  # the toolkit's call, on "happy"
def test_slue_sa_averages_over_the_labels_the_toolkit_call_sees(predictions, references, macro_f1, macro_recall,
                                                               f1_per_label):
    from sklearn.metrics import f1_score, recall_score

    result = load("slue_sa").compute(predictions=predictions, references=references)
    assert result["macro_f1"] == pytest.approx(macro_f1) and result["macro_recall"] == pytest.approx(macro_recall)
    assert result["f1_per_label"] == pytest.approx(f1_per_label)
    assert result["num_invalid_predictions"] == sum(p == "happy" for p in predictions)
    # The slue-toolkit's call (eval_w2v_sentiment.py): scikit-learn without labels=.
    assert result["macro_f1"] == pytest.approx(f1_score(references, predictions, average="macro"))
    assert result["macro_recall"] == pytest.approx(recall_score(references, predictions, average="macro"))


def test_slue_sa_needs_some_scorable_reference():
    with pytest.raises(ValueError, match="No reference is one of"):
        load("slue_sa").compute(predictions=["Positive"], references=["<mixed>"])


# The rule table of slue_ner's docstring (slue-toolkit eval_w2v_ner.get_gt_pred): transcript, raw entities,
# combined entities.
READING_RULES = {
    "well-formed": ("the ` eu ] met on @ monday ]", [("ORG", "eu"), ("DATE", "monday")],
                    [("ORG", "eu"), ("WHEN", "monday")]),
    "open when the next tag starts": ("} anna ` eu ] met", [("ORG", "eu")], [("ORG", "eu")]),
    "nested": ("` the } anna ] board ]", [("PERSON", "anna")], [("PERSON", "anna")]),
    "never closed": ("met } anna", [], []),
    "empty": ("} ] met", [], []),
    "stray end": ("met ] } anna ]", [("PERSON", "anna")], [("PERSON", "anna")]),
    "unknown tag character": ("+ anna ]", [], []),
    "unknown character inside an entity": ("} + anna ]", [("PERSON", "+ anna")], [("PERSON", "+ anna")]),
    "mark joined to a word": ("}anna ]", [], []),
    "words outside entities": ("met anna", [], []),
    "$ is FAC, discarded in combined": ("$ louvre ] and } anna ]", [("FAC", "louvre"), ("PERSON", "anna")],
                                       [("PERSON", "anna")]),
    "a discarded tag still cuts an open entity": ("} anna # summit ]", [("EVENT", "summit")], []),
}


@pytest.mark.parametrize("case", READING_RULES)
def test_slue_ner_reads_transcripts_by_the_toolkit_rules(case):
    ner = module("slue_ner")
    text, raw, combined = READING_RULES[case]
    assert ner.parse_tagged_text(text, "raw") == raw
    assert ner.parse_tagged_text(text, "combined") == combined


def test_slue_ner_f1_on_malformed_predictions():
    predictions = ["} anna ` the eu ] met on @ monday",     # PERSON cut by ORG; DATE never closed
                   "% ] paris and $ louvre ] ]"]             # empty GPE; FAC; a stray "]"
    references = ["} anna ] met ` the eu ] on @ monday ]", "% paris ] and $ louvre ]"]
    combined = load("slue_ner").compute(predictions=predictions, references=references)
    # Predicted (ORG, the eu); gold PERSON anna, ORG the eu, WHEN monday, PLACE paris (FAC discarded): 1 of 1, 1 of 4.
    assert (combined["precision"], combined["recall"]) == (1.0, 0.25)
    assert combined["f1"] == pytest.approx(0.4) and combined["label_f1"] == pytest.approx(0.4)
    assert {k: combined[k] for k in ("num_cut_by_next_tag", "num_never_closed", "num_empty", "num_stray_end")} == {
        "num_cut_by_next_tag": 1, "num_never_closed": 1, "num_empty": 1, "num_stray_end": 1}
    raw = load("slue_ner", config_name="raw").compute(predictions=predictions, references=references)
    # Predicted (ORG, the eu) and (FAC, louvre), both right; gold 5.
    assert (raw["precision"], raw["recall"]) == (1.0, 0.4) and raw["f1"] == pytest.approx(4 / 7)
    assert (raw["num_predicted_entities"], raw["num_reference_entities"]) == (2, 5)


def test_slue_ner_tagged_text_from_slue_annotations():
    ner = module("slue_ner")
    text = "the european parliament met in strasbourg on tuesday at the summit"
    spans = [("ORG", 4, 19), ("GPE", 31, 10), ("DATE", 45, 7), ("EVENT", 60, 6)]
    assert ner.tagged_text(text, spans) == (
        "the ` european parliament ] met in % strasbourg ] on @ tuesday ] at the summit")
    assert ner.tagged_text(text, spans, "raw") == (
        "the ` european parliament ] met in % strasbourg ] on @ tuesday ] at the # summit ]")
    with pytest.raises(ValueError, match="Unknown SLUE NER tag 'CITY'"):
        ner.tagged_text(text, [("CITY", 31, 10)])
    with pytest.raises(ValueError, match="overlaps another or lies outside"):
        ner.tagged_text(text, [("ORG", 4, 19), ("GPE", 10, 3)])
    with pytest.raises(ValueError, match=r"has the words \['\$'\], which the format reads as tag marks"):
        ner.tagged_text("it costs $ five", [])
    with pytest.raises(ValueError, match="label set must be one of"):
        ner.tagged_text(text, spans, "ontonotes")


def test_slue_ner_f1_and_label_f1():
    result = load("slue_ner").compute(
        predictions=["the ` eu parliament ] met on @ monday ]", "} anna ] and } anna ] spoke"],
        references=["the ` eu ] met on @ monday ]", "} anna ] and } anna ] and } ben ] spoke"],
    )
    # Pairs: predicted 4, reference 5; correct: (WHEN monday) and (PERSON anna) twice = 3.
    assert result["precision"] == pytest.approx(3 / 4) and result["recall"] == pytest.approx(3 / 5)
    assert result["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    # Tags only: ORG now matches too: 4 correct of 4 predicted and 5 reference.
    assert result["label_precision"] == 1.0 and result["label_recall"] == pytest.approx(4 / 5)
    assert (result["num_reference_entities"], result["num_predicted_entities"]) == (5, 4)


def test_slue_ner_reads_raw_characters_in_both_label_sets():
    # "$" is FAC in the raw characters the scorer reads; PERSON only in the combined characters, which it never reads.
    raw = load("slue_ner", config_name="raw").compute(predictions=["$ anna ]"], references=["} anna ]"])
    assert raw["f1"] == 0.0 and raw["num_predicted_entities"] == 1
    combined = load("slue_ner").compute(predictions=["$ anna ]"], references=["} anna ]"])
    assert combined["f1"] == 0.0 and combined["num_predicted_entities"] == 0  # FAC is discarded
    assert load("slue_ner").compute(predictions=["> noon ]"], references=["@ noon ]"])["f1"] == 1.0  # TIME, DATE: WHEN


@pytest.mark.parametrize("reference", ["} anna ` eu ] met", "met } anna", "} ] met", "met ] } anna ]"])
def test_slue_ner_refuses_a_reference_the_toolkit_would_read_with_loss(reference):
    with pytest.raises(ValueError, match="Reference 0 is not well-formed"):
        load("slue_ner").compute(predictions=["met"], references=[reference])


def test_slue_ner_refuses_references_in_the_combined_characters():
    combined_characters = ["$ anna ] met # the eu ] on & monday ]"] * 7  # 21 entities: PERSON, ORG, WHEN there
    with pytest.raises(ValueError, match="look written with combined_entity_to_spl_char"):
        load("slue_ner").compute(predictions=combined_characters, references=combined_characters)
    raw_characters = ["} anna ] met ` the eu ] on @ monday ]"] * 7
    assert load("slue_ner").compute(predictions=raw_characters, references=raw_characters)["f1"] == 1.0
    few = ["% paris ] on @ monday ]"] * 3  # a small set of GPE and DATE entities is legitimate raw text
    assert load("slue_ner").compute(predictions=few, references=few)["f1"] == 1.0
