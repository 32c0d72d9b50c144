"""Bad input to the scripts and commands (argument files and flags, pretraining's data, tokenizer and resume
arguments, `lst` subcommands): refused before a model is built or anything is written, in one line naming the
problem; a command that fails leaves no partial output behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from lst_speech.tokenization.atomic_files import atomic_directory
from lst_speech.training.arguments import DataArguments, ModelArguments, PretrainingArguments, parse_script_arguments
from lst_speech.training.cli.main import main

TYPES = (ModelArguments, DataArguments, PretrainingArguments)


@pytest.fixture
def saved_tokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    return str(tmp_path / "tokenizer")


@pytest.fixture
def packed(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"input_ids": [[1, 2, 3]], "modality_mask": [[0, 0, 0]]}).save_to_disk(tmp_path / "data")
    return str(tmp_path / "data")


@pytest.mark.parametrize("text, words", [
    ("max_steps: [1, 2\n", r"is not valid YAML"),
    ("- max_steps\n- 3\n", r"must be a mapping of argument names to values, got a list"),
    ("max_stepz: 3\n", r"names unknown arguments \['max_stepz'\]; the arguments are: .*max_steps"),
])
def test_bad_argument_files_are_named(tmp_path, text, words):
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(ValueError, match=rf"run.yaml {words}" if "YAML" in words else words):
        parse_script_arguments(TYPES, [str(tmp_path / "run.yaml")])


def arguments(saved_tokenizer, packed, tmp_path, **changes):
    values = {"tokenizer": saved_tokenizer, "train_data": packed, "output_dir": str(tmp_path / "out"),
              "max_steps": 2, **changes}
    return [f"--{k}={v}" for k, v in values.items()]


@pytest.mark.parametrize("changes, words", [
    ({"tokenizer": "/no/such/tokenizer"}, r"--tokenizer /no/such/tokenizer does not exist"),
    ({"model_name_or_path": "./no-such-model"}, r"--model_name_or_path ./no-such-model does not exist"),
    ({"config_overrides": "{num_hidden_layers: 2}"}, r"--config_overrides is not valid JSON"),
    ({"config_overrides": "[2]"}, r"--config_overrides must be a JSON object"),
    ({"model_type": "gpt"}, r"model_type must be one of"),
    ({"preset": "lst-2b"}, r"preset must be one of"),
    ({"train_data": "/no/such/data"}, r"--train_data /no/such/data does not exist: build packed sequences"),
    ({"eval_data": "TOKENIZER"}, r"--eval_data .* is neither a dataset saved with save_to_disk nor a folder of Parquet shards"),
    ({"learning_rate": 0}, r"learning_rate must be positive"),
    ({"warmup_steps": -1}, r"warmup_steps and save_steps at least 0"),
    ({"logging_steps": 0}, r"logging_steps at least 1"),
    ({"max_steps": 0}, r"max_steps, per_device_batch_size and gradient_accumulation_steps must be positive"),
    ({"mixed_precision": "fp8"}, r"mixed_precision must be one of \('no', 'bf16', 'fp16'\)"),
    ({"patching_mode": "words"}, r"patching_mode must be one of"),
    ({"curriculum_aligned_until": 10, "curriculum_static_from": 5}, r"curriculum_static_from \(t2, 5\) must not come"),
])
def test_bad_pretraining_arguments_are_refused_when_parsed(saved_tokenizer, packed, tmp_path, changes, words):
    changes = {k: saved_tokenizer if v == "TOKENIZER" else v for k, v in changes.items()}
    with pytest.raises(ValueError, match=words):
        parse_script_arguments(TYPES, arguments(saved_tokenizer, packed, tmp_path, **changes))


def test_resume_and_data_are_checked_before_a_model_is_built(saved_tokenizer, packed, tmp_path, monkeypatch):
    from lst_speech.training import pretrain

    monkeypatch.setattr(pretrain, "build_model", lambda *a: pytest.fail("a model was built before the checks"))
    parsed = parse_script_arguments(TYPES, arguments(saved_tokenizer, packed, tmp_path, report_to="none",
                                                     resume_from_checkpoint=str(tmp_path / "missing-checkpoint")))
    with pytest.raises(ValueError, match=r"--resume_from_checkpoint .*missing-checkpoint: there is no such directory"):
        pretrain.run(*parsed)
    parsed = parse_script_arguments(TYPES, arguments(saved_tokenizer, packed, tmp_path, report_to="none",
                                                     patching_mode="aligned"))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['word_spans'\].*with word spans"):
        pretrain.run(*parsed)


def test_a_failed_unit_extraction_leaves_no_output_and_says_why_in_one_line(tmp_path, capsys):
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    rng = np.random.default_rng(0)
    MfccUnitExtractor(num_units=4).fit([rng.normal(size=16000).astype(np.float32)], 16000).save_pretrained(
        tmp_path / "extractor")
    soundfile.write(tmp_path / "good.wav", rng.normal(size=8000).astype(np.float32) * 0.1, 16000)
    with pytest.raises(SystemExit) as exited:
        main(["units", "extract", "--extractor", str(tmp_path / "extractor"), "--audio", str(tmp_path / "good.wav"),
              str(tmp_path / "missing.wav"), "--output", str(tmp_path / "units.jsonl")])
    assert exited.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert message.startswith("lst units: error: Audio file") and "missing.wav' does not exist" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extractor", "good.wav"]


@pytest.mark.parametrize("argv, words", [
    (["units", "extract", "--extractor", "{tmp}/nope", "--audio", "a.wav", "--output", "{tmp}/u.jsonl"],
     "There is no unit extractor directory"),
    (["push", "{tmp}", "--repo_id", "org/x", "--dry_run"], "is not a release folder"),
    (["eval", "mc", "--model", "{tmp}/none", "--data", "x.csv", "--format", "storycloze", "--output", "{tmp}/o"],
     "--model {tmp}/none: there is no such directory"),
    (["eval", "cra", "--model", "{tmp}", "--corpus", "c", "--output", "{tmp}/o"], "has no config.json"),
    (["export", "{tmp}", "--output_dir", "{tmp}/release"], "is not a trained run"),
    (["data", "--recipe", "lst", "--tokenizer", "{tmp}/nope", "--text", "t.txt", "--output", "{tmp}/o"],
     "--tokenizer {tmp}/nope does not exist: pass the path of a saved SpeechUnitTextTokenizer"),
    (["data", "--recipe", "lst", "--tokenizer", "{tmp}", "--paired", "no-corpus", "--output", "{tmp}/o"],
     "--paired no-corpus does not exist: pass the path of a saved dataset"),
    (["data", "--recipe", "lst", "--tokenizer", "{tmp}", "--output", "{tmp}/o"], "No sources: pass at least one"),
    (["data", "--recipe", "vall-e", "--tokenizer", "{tmp}", "--output", "{tmp}/o"], "Unknown recipe 'vall-e'"),
    (["corpus", "--output", "{tmp}/c", "--texts", "{tmp}/none.txt"], "--texts {tmp}/none.txt is not a file"),
    (["corpus", "--output", "{tmp}/c", "--num_utterances", "-3"], "--num_utterances must be at least 1, got -3"),
    (["corpus", "--output", "{tmp}/c", "--num_units", "0"], "num_units must be a whole number of at least 2"),
    (["units", "fit", "--audio", "{tmp}/none.wav", "--output", "{tmp}/x"], "none.wav' does not exist"),
    (["generate", "--model", "{tmp}", "--text", "a", "--output_modality", "speech", "--vocoder", "{tmp}/runs/vocoder"],
     "--vocoder {tmp}/runs/vocoder does not exist: pass the path of a unit vocoder"),
])
def test_subcommands_end_bad_input_in_one_line(tmp_path, capsys, argv, words):
    with pytest.raises(SystemExit) as exited:
        main([a.format(tmp=tmp_path) for a in argv])
    assert exited.value.code == 2 and words.format(tmp=tmp_path) in capsys.readouterr().err


def test_an_atomic_output_that_fails_leaves_the_old_one_and_no_partial(tmp_path):
    target = tmp_path / "release"
    with atomic_directory(target, "lst export") as partial:
        (partial / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target, "lst export") as partial:
        (partial / "half.txt").write_text("half")
        raise RuntimeError("killed mid-write")
    assert [p.name for p in tmp_path.iterdir()] == ["release"] and (target / "old.txt").read_text() == "old"
    with atomic_directory(target, "lst export") as partial:
        (partial / "new.txt").write_text(json.dumps(1))
    assert sorted(p.name for p in target.iterdir()) == [".lst-output.json", "new.txt"]


@pytest.mark.parametrize("max_length", [-1, 0, 2.5, True])
def test_truncation_to_a_non_positive_length_is_refused(tokenizer, max_length):
    with pytest.raises(ValueError, match=rf"max_length must be a positive number of tokens to truncate to, got"):
        tokenizer(segments=["In the beginning"], truncation=True, max_length=max_length)


@pytest.mark.parametrize("segment, words", [
    (None, r"segment 1 is None \(NoneType\)"),
    (3.5, r"segment 1 is 3.5 \(float\)"),
    (object, r"segment 1 is <class 'object'> \(type\)"),
])
def test_a_segment_that_is_neither_text_nor_units_is_named(tokenizer, segment, words):
    with pytest.raises(ValueError, match=words):
        tokenizer(segments=["In the beginning", segment])


@pytest.mark.parametrize("changes, words", [
    ({"model_name_or_path": "/no/such/model"}, r"--model_name_or_path /no/such/model does not exist"),
    ({"train_data": "no-such-train.parquet"}, r"--train_data no-such-train.parquet does not exist: pass the path of"),
    ({"validation_data": "missing/validation.parquet"}, r"--validation_data missing/validation.parquet does not"),
    ({"unit_extractor": "no-extractor"}, r"--unit_extractor no-extractor does not exist"),
    ({"task": "slue-asr"}, r"task must be one of"),
    ({"train_modality": "audio"}, r"train_modality must be one of"),
    ({"ner_tag_set": "ontonotes"}, r"ner_tag_set must be 'raw' or 'combined'"),
    ({"learning_rate": -1}, r"learning_rate must be positive"),
])
def test_bad_finetuning_arguments_are_refused_when_parsed(saved_tokenizer, tmp_path, changes, words):
    from lst_speech.training.finetuning.loop import FinetuningArguments

    (tmp_path / "train.parquet").write_bytes(b"")
    values = {"model_name_or_path": saved_tokenizer, "train_data": str(tmp_path / "train.parquet"),
              "validation_data": str(tmp_path / "train.parquet"), "output_dir": str(tmp_path / "out"), **changes}
    with pytest.raises(ValueError, match=words):
        parse_script_arguments((FinetuningArguments,), [f"--{k}={v}" for k, v in values.items()])
