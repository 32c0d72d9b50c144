"""Bad input to the data pipeline (formats, recipes, mixing, packing): each is refused with the row, source or
argument named, before anything is built; nothing is truncated or dropped without a word."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from lst_speech.training.data.formats import AstConfig, SpanSampler, document_segments
from lst_speech.training.data.mixing import mix
from lst_speech.training.data.packing import pack
from lst_speech.training.data.pipeline import build_format
from lst_speech.training.data.recipes import RECIPES, DataRecipe, build_pretraining_data

ROW = {
    "text": "Alpha beta, gamma delta.",
    "words": ["Alpha", "beta", "gamma", "delta"],
    "units": [7, 1, 1, 2, 3, 9, 4, 4, 8, 5, 6, 7],
    "word_spans": [[1, 3], [3, 5], [6, 8], [9, 11]],
}


def rows(**changes_of_row_2):
    """Four good rows, the third changed."""
    out = [dict(ROW) for _ in range(4)]
    out[2].update(changes_of_row_2)
    return out


@pytest.mark.parametrize("format, change, words", [
    ("ulm", {"units": [1, 2, 500], "word_spans": [[0, 2]]}, r"row 2: (sequence 0, )?segment 0: unit id 500 at index 2 is outside"),
    ("tlm", {"text": ""}, r"row 2: segment 0: text segment is empty"),
    ("tlm", {"text": "   "}, r"row 2: segment 0: text segment is empty"),
    ("tlm", {"text": None}, r"row 2: segment 0 is None \(NoneType\): a segment is text"),
    ("cst_text_speech", {"text": None}, r"row 2: segment 0 is None"),
    ("ast", {"word_spans": [[1, 3], [2, 5], [6, 8], [9, 11]]}, r"row 2: word spans must be ordered"),
    ("ast", {"word_spans": [[1, 3], [3, 5], [6, 8], [9, 40]]}, r"row 2: word spans must be .*inside the 12 unit"),
    ("interleave", {"words": ["Alpha", "beta"]}, r"row 2: format 'interleave' needs one word span per word"),
])
def test_bad_rows_are_named_by_their_dataset_row(tokenizer, format, change, words):
    with pytest.raises(ValueError, match=words):
        build_format(datasets.Dataset.from_list(rows(**change)), tokenizer, format, batch_size=4)


@pytest.mark.parametrize("units, words", [
    ([1.5, 2.0, 3.0], r"row 7: unit ids must be integers, got dtype float64"),
    ([1.0, 2.0, 3.0], r"row 7: unit ids must be integers"),  # whole floats too: they are not unit ids
    ([[1, 2], [3, 4]], r"row 7: unit array must be 1-D, got shape \(2, 2\)"),
    ([], r"row 7: unit array is empty"),
])
def test_units_that_are_not_ids_are_refused_not_truncated(units, words):
    with pytest.raises(ValueError, match=words):
        document_segments("ulm", {**ROW, "units": units, "word_spans": None}, np.random.default_rng(0), where="row 7")


def test_float_units_are_refused_even_when_the_whole_column_is_float(tokenizer):
    dataset = datasets.Dataset.from_list([{**ROW, "units": [float(u) for u in ROW["units"]]} for _ in range(2)])
    with pytest.raises(ValueError, match=r"row 0: unit ids must be integers, got dtype float64"):
        build_format(dataset, tokenizer, "ulm")


@pytest.mark.parametrize("format, columns, words", [
    ("ast", ["text", "units"], r"Format 'ast' needs columns \['units', 'word_spans', 'words'\]; the dataset lacks"),
    ("tlm", ["units"], r"lacks \['text'\]"),
    ("cst", ["text", "units"], r"Unknown format 'cst'"),
])
def test_missing_columns_and_formats_are_named(tokenizer, format, columns, words):
    dataset = datasets.Dataset.from_list([{c: ROW[c] for c in columns}])
    with pytest.raises(ValueError, match=words):
        build_format(dataset, tokenizer, format)


@pytest.mark.parametrize("changes, words", [
    ({"source_weights": {"speech": -0.5, "text": 1.0}}, r"the weight of 'speech' is -0.5; weights are finite numbers >= 0"),
    ({"source_weights": {"speach": 1.0, "text": 1.0}}, r"unknown name\(s\) \['speach'\]; choose from \['speech'"),
    ({"source_weights": {"speech": 0.0, "text": 0.0}}, r"every weight is 0"),
    ({"source_weights": {}}, r"must be a non-empty mapping"),
    ({"source_weights": {"text": float("nan")}}, r"the weight of 'text' is nan"),
    ({"source_weights": {"text": "1/3"}}, r"the weight of 'text' is '1/3'"),
    ({"source_weights": {"paired": 1.0}, "paired_formats": {"interleave": -1.0}}, r"paired_formats: the weight of"),
    ({"source_weights": {"paired": 1.0}, "paired_formats": {"tlm": 1.0}}, r"paired_formats: unknown name\(s\) \['tlm'\]"),
    ({"pack_unit": "frames"}, r"pack_unit must be one of \('tokens', 'patches'\)"),
    ({"sequence_length": 0}, r"sequence_length must be a positive integer, got 0"),
    ({"patch_size": 0}, r"patch_size must be a positive integer, got 0"),
    ({"speech_per_text": 0.0}, r"speech_per_text must be a positive ratio"),
    ({"speech_per_text": -2.0}, r"speech_per_text must be a positive ratio"),
])
def test_bad_recipes_are_refused_when_made(changes, words):
    with pytest.raises(ValueError, match=words):
        RECIPES["lst"].replace(**changes)


def test_a_zero_weight_leaves_its_source_out_on_purpose():
    recipe = RECIPES["sutlm"].replace(source_weights={"speech": 0.0, "paired": 0.5, "text": 0.5})
    assert "speech" not in recipe.weights() and set(recipe.weights()) > {"text"}


def test_a_recipe_that_needs_a_source_says_which(tokenizer):
    with pytest.raises(ValueError, match=r"draws 67% of its examples from 'text' data; pass text="):
        build_pretraining_data(RECIPES["lst"], tokenizer, paired=datasets.Dataset.from_list([ROW]))
    with pytest.raises(ValueError, match=r"expects a tokenizer with deduplicate_units=True"):
        build_pretraining_data(RECIPES["sutlm"], tokenizer)


def test_mixing_checks_names_and_weights(tokenizer):
    built = build_format(datasets.Dataset.from_list([ROW]), tokenizer, "tlm")
    with pytest.raises(ValueError, match=r"Weights are for \['speech'\] but the sources are \['text'\]"):
        mix({"text": built}, {"speech": 1.0})
    with pytest.raises(ValueError, match=r"mix weights: the weight of 'text' is -1"):
        mix({"text": built}, {"text": -1})


@pytest.mark.parametrize("arguments, words", [
    ({"sequence_length": 0}, r"sequence_length must be a positive integer, got 0"),
    ({"sequence_length": 2.5}, r"sequence_length must be a positive integer, got 2.5"),
    ({"sequence_length": 8, "unit": "frames"}, r"Packing unit must be one of"),
    ({"sequence_length": 8, "unit": "patches", "patch_size": 0}, r"patch_size must be a positive integer when packing"),
    ({"sequence_length": 8, "unit": "patches", "patch_size": -1}, r"patch_size must be a positive integer"),
])
def test_bad_packing_arguments_are_refused_before_packing(tokenizer, arguments, words):
    built = build_format(datasets.Dataset.from_list([ROW]), tokenizer, "ulm")
    with pytest.raises(ValueError, match=words):
        pack(built, **arguments)


@pytest.mark.parametrize("kind, values, words", [
    ("nope", {}, r"Span sampler kind must be one of"),
    ("poisson", {"length": 0}, r"Bad span sampler parameters"),
    ("uniform", {"low": 5, "high": 2}, r"Bad span sampler parameters"),
])
def test_bad_span_samplers_are_refused(kind, values, words):
    with pytest.raises(ValueError, match=words):
        SpanSampler(kind, **values)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5])
def test_ast_needs_a_speech_fraction_strictly_between_0_and_1(fraction):
    with pytest.raises(ValueError, match=r"speech_fraction must be in \(0, 1\)"):
        AstConfig(SpanSampler(), speech_fraction=fraction)


def test_recipe_fields_are_checked_on_construction_too():
    with pytest.raises(ValueError, match=r"Recipe 'mine': source_weights: unknown name"):
        DataRecipe(name="mine", source_weights={"audio": 1.0}, paired_formats={})
