"""`LSTConfig` is the one home of patching settings: training arguments override it once, a run's final config
says how it was patched, and data packed for one static patch size is refused for a model of another."""

from __future__ import annotations

import json

import datasets
import pytest
import torch

from lst_speech.modeling_lst import LSTConfig
from lst_speech.modeling_lst.patching import config_patch_starts, patch_starts
from lst_speech.training import pretrain
from lst_speech.training.arguments import DataArguments, ModelArguments, PretrainingArguments, parse_script_arguments
from lst_speech.training.data.checks import check_packed_patch_size
from lst_speech.training.data.recipes import RECIPES

from conftest import save_packed_lst_data

TYPES = (ModelArguments, DataArguments, PretrainingArguments)


def test_with_patching_replaces_only_patching_and_checks_it():
    config = LSTConfig(patching_mode="aligned", aligned_silences="merged", patch_size=6)
    bpe = config.with_patching(patching_mode="bpe")
    assert (bpe.patching_mode, bpe.aligned_by, bpe.aligned_silences, bpe.patch_size) == ("bpe", "piece", "merged", 6)
    assert config.patching_mode == "aligned"  # a copy
    with pytest.raises(ValueError, match=r"\['patch_size'\] are not patching settings"):
        config.with_patching(patch_size=2)
    with pytest.raises(ValueError, match=r"curriculum_static_from \(t2, 1\) must not come before"):
        config.with_patching(curriculum_aligned_until=3, curriculum_static_from=1)


def test_config_patch_starts_follow_every_setting_of_the_config():
    generator = torch.Generator().manual_seed(0)
    mask = torch.rand(6, 40, generator=generator) < 0.7
    boundaries = torch.rand(6, 40, generator=generator) < 0.3
    config = LSTConfig(patching_mode="curriculum", patch_size=3, max_patch_length=5, curriculum_aligned_until=10,
                       curriculum_static_from=20)
    for step in (0, 15, 30):
        expected = patch_starts("curriculum", mask, 3, 5, boundaries, step=step, aligned_until=10, static_from=20,
                                generator=torch.Generator().manual_seed(step))
        assert torch.equal(config_patch_starts(config, mask, boundaries, step, torch.Generator().manual_seed(step)),
                           expected)
    assert torch.equal(config_patch_starts(config, mask, boundaries, 0), patch_starts("aligned", mask, 3, 5, boundaries))
    assert torch.equal(config_patch_starts(config, mask, boundaries, 30), patch_starts("static", mask, 3, 5))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tokenizer, sample_verses, bases):
    """A saved tokenizer, a saved static-patching LST (`bases/lst`), and packed LST-recipe data with word spans."""
    root = tmp_path_factory.mktemp("patching")
    tokenizer.save_pretrained(root / "tokenizer")
    save_packed_lst_data(tokenizer, sample_verses, root / "data", paired=60, text=slice(100, 160))
    return root


def _arguments(workspace, output_dir, *extra):
    return ["--tokenizer", str(workspace / "tokenizer"), "--train_data", str(workspace / "data"),
            "--output_dir", str(output_dir), "--max_steps", "2", "--warmup_steps", "1", "--logging_steps", "1",
            "--per_device_batch_size", "2", "--save_steps", "0", "--report_to", "none", *extra]


def test_the_data_records_its_patch_size(workspace):
    data = datasets.load_from_disk(str(workspace / "data"))
    assert set(data.unique("packed_patch_size")) == {RECIPES["lst"].patch_size}
    check_packed_patch_size(data, "data/", 4)
    check_packed_patch_size(data, "data/", None)  # a saved Llama baseline: nothing to compare
    with pytest.raises(ValueError, match=r"data/ was packed for static patches of \[4\] speech tokens but the "
                                         r"model's patch_size is 8: pack it again with `lst data --patch_size 8`"):
        check_packed_patch_size(data, "data/", 8)
    check_packed_patch_size(data.to_iterable_dataset(), "data/", 4)
    with pytest.raises(ValueError, match="packed for static patches of"):
        check_packed_patch_size(data.to_iterable_dataset(), "data/", 8)


def test_a_model_of_another_patch_size_is_refused_before_it_is_built(workspace, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrain, "build_model", lambda *a: pytest.fail("a model was built before the checks"))
    parsed = parse_script_arguments(TYPES, _arguments(workspace, tmp_path / "run", "--preset", "tiny",
                                                      "--config_overrides", '{"patch_size": 8}'))
    with pytest.raises(ValueError, match="patch_size is 8"):
        pretrain.run(*parsed)


@pytest.mark.slow
def test_a_run_from_a_saved_model_trains_and_saves_the_patching_it_was_given(workspace, bases, tmp_path):
    saved = json.loads((bases / "lst" / "config.json").read_text())
    assert saved["patching_mode"] == "static"
    parsed = parse_script_arguments(TYPES, _arguments(
        workspace, tmp_path / "run", "--model_name_or_path", str(bases / "lst"), "--patching_mode",
        "curriculum", "--curriculum_aligned_until", "1", "--curriculum_static_from", "2", "--aligned_silences",
        "merged"))
    final = pretrain.run(*parsed)
    config = json.loads((final / "config.json").read_text())
    assert (config["patching_mode"], config["curriculum_aligned_until"], config["curriculum_static_from"],
            config["aligned_by"], config["aligned_silences"]) == ("curriculum", 1, 2, "word", "merged")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (run["patching_mode"], run["aligned_by"], run["aligned_silences"]) == ("curriculum", "word", "merged")
    # The weights are the saved model's, trained on: only the patching came from the arguments.
    assert config["global_hidden_size"] == saved["global_hidden_size"] and config["vocab_size"] == saved["vocab_size"]
