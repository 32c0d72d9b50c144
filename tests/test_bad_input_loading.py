"""Bad input to loading: local directories that lack files, damaged files, paths that do not exist. Each error
names the file and what to do; nothing falls back to defaults, nothing large is built first."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM, LSTForSequenceClassification
from lst_speech.tokenization import SpeechUnitTextTokenizer, UnitFeatureExtractor
from lst_speech.tokenization.feature_extraction_units import encode_centroids
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor


@pytest.fixture(scope="module")
def saved(tokenizer, tmp_path_factory):
    """A saved tiny model and its tokenizer; each test copies what it damages."""
    directory = tmp_path_factory.mktemp("saved")
    torch.manual_seed(0)
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def copy_of(saved, tmp_path):
    import shutil

    shutil.copytree(saved, tmp_path / "copy")
    return tmp_path / "copy"


@pytest.mark.parametrize("load", [LSTConfig.from_pretrained, LSTForCausalLM.from_pretrained,
                                  LSTForSequenceClassification.from_pretrained])
def test_a_directory_without_config_json_is_not_read_as_the_default_config(load, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(OSError, match=r"has no config.json \(it holds notes.txt\): it is not a saved model"):
        load(tmp_path)


def test_the_model_check_runs_before_any_model_is_built(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(LSTForCausalLM, "__init__", lambda self, config: built.append(config))
    with pytest.raises(OSError, match="has no config.json"):
        LSTForCausalLM.from_pretrained(tmp_path)
    assert built == []


@pytest.mark.parametrize("damage, words", [
    (lambda d: os.remove(d / "model.safetensors"), r"has no weights: none of model.safetensors.*\(it holds config.json"),
    (lambda d: open(d / "model.safetensors", "r+b").truncate(100),
     r"model.safetensors \(100 bytes\) is damaged or truncated"),
    (lambda d: (d / "model.safetensors").write_bytes(b""), r"is damaged or truncated"),
    (lambda d: (d / "config.json").write_text("{broken"), r"config.json.*is not a valid JSON file"),
])
def test_damaged_model_files_are_named(saved, tmp_path, damage, words):
    directory = copy_of(saved, tmp_path)
    damage(directory)
    with pytest.raises(OSError, match=words):
        LSTForCausalLM.from_pretrained(directory)


def test_a_missing_shard_of_a_sharded_save_is_named(tokenizer, tmp_path):
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(tmp_path, max_shard_size="100KB")
    shard = sorted(tmp_path.glob("model-*.safetensors"))[1]
    shard.unlink()
    with pytest.raises(OSError, match=rf"The weights file .*{shard.name} is missing"):
        LSTForCausalLM.from_pretrained(tmp_path)


@pytest.mark.parametrize("path", ["/no/such/model", "./no-such-model", "../no/such/model", "a/b/c"])
@pytest.mark.parametrize("load", [LSTConfig.from_pretrained, LSTForCausalLM.from_pretrained,
                                  SpeechUnitTextTokenizer.from_pretrained])
def test_a_local_path_that_does_not_exist_is_not_called_a_repo_id(load, path):
    with pytest.raises(OSError, match=rf"There is no directory {path!r} \(it reads as a local path"):
        load(path)


@pytest.mark.parametrize("damage, words, through_auto", [
    (lambda d: os.remove(d / "text_spm.model"), r"has no text_spm.model \(it holds config.json, .*tokenizer.json", True),
    (lambda d: (d / "tokenizer.json").write_text("{broken"), r"tokenizer.json is not valid JSON", True),
    # AutoTokenizer parses tokenizer_config.json itself to find the class, before LST's code runs.
    (lambda d: (d / "tokenizer_config.json").write_text("[1,"), r"tokenizer_config.json is not valid JSON", False),
])
def test_damaged_tokenizer_files_are_named(saved, tmp_path, damage, words, through_auto):
    directory = copy_of(saved, tmp_path)
    damage(directory)
    with pytest.raises(OSError, match=words):
        SpeechUnitTextTokenizer.from_pretrained(directory)
    if through_auto:
        with pytest.raises(OSError, match=words):
            AutoTokenizer.from_pretrained(directory)


def test_an_empty_directory_is_not_a_tokenizer(tmp_path):
    with pytest.raises(OSError, match=r"has no text_spm.model \(it holds nothing\)"):
        SpeechUnitTextTokenizer.from_pretrained(tmp_path)


def test_a_unit_piece_tokenizer_without_its_unit_model_does_not_load_as_raw_units(piece_tokenizer, tmp_path):
    piece_tokenizer.save_pretrained(tmp_path)
    (tmp_path / "unit_spm.model").unlink()
    with pytest.raises(OSError, match=r"has no unit_spm.model, but its tokenizer.json holds unit pieces"):
        SpeechUnitTextTokenizer.from_pretrained(tmp_path)


@pytest.fixture(scope="module")
def fitted_extractor():
    rng = np.random.default_rng(0)
    return MfccUnitExtractor(num_units=4).fit([rng.normal(size=16000).astype(np.float32)], 16000)


@pytest.mark.parametrize("damage, error, words", [
    (None, FileNotFoundError, r"There is no unit extractor directory"),
    (lambda d: (d / "centroids.npy").unlink(), FileNotFoundError, r"lacks \['centroids.npy'\]"),
    (lambda d: (d / "unit_extractor.json").write_text("{"), ValueError, r"a saved extractor file is damaged"),
    (lambda d: (d / "unit_extractor.json").write_text("{}"), ValueError, r"lacks \['extractor', 'num_units'\]"),
    (lambda d: (d / "unit_extractor.json").write_text(json.dumps({"extractor": "wavlm", "num_units": 4})), ValueError,
     r"unknown extractor 'wavlm'"),
    (lambda d: np.save(d / "centroids.npy", np.zeros((3, 39))), ValueError, r"Centroids of shape \(3, 39\) do not "
                                                                            r"match 4 units"),
])
def test_damaged_unit_extractors_are_named(fitted_extractor, tmp_path, damage, error, words):
    directory = tmp_path / "extractor"
    if damage is not None:
        fitted_extractor.save_pretrained(directory)
        damage(directory)
    with pytest.raises(error, match=words):
        load_unit_extractor(directory)


def test_a_feature_extractor_whose_centroids_do_not_match_its_units_is_named(fitted_extractor, tmp_path):
    features = UnitFeatureExtractor.from_unit_extractor(fitted_extractor)
    features.save_pretrained(tmp_path)
    config_file = tmp_path / "preprocessor_config.json"
    saved = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**saved, "centroids": encode_centroids(np.zeros((7, 39)))}))
    with pytest.raises(ValueError, match=r"centroids have shape \(7, 39\), but 4 units need one row each"):
        UnitFeatureExtractor.from_pretrained(tmp_path)
    config_file.write_text(json.dumps({**saved, "centroids": saved["centroids"][:-8]}))
    with pytest.raises(ValueError, match=r"centroids are damaged"):
        UnitFeatureExtractor.from_pretrained(tmp_path)
    # A save from before the centroids moved into preprocessor_config.json keeps them in unit_centroids.npy.
    config_file.write_text(json.dumps({**saved, "centroids": None}))
    np.save(tmp_path / "unit_centroids.npy", np.zeros((7, 39), dtype=np.float32))
    with pytest.raises(ValueError, match=r"unit_centroids.npy in .* holds 7 centroids for 4 units"):
        UnitFeatureExtractor.from_pretrained(tmp_path)
    np.save(tmp_path / "unit_centroids.npy", fitted_extractor.centroids)
    np.testing.assert_array_equal(UnitFeatureExtractor.from_pretrained(tmp_path).centroids, fitted_extractor.centroids)
