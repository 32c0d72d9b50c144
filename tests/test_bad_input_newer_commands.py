"""Bad input to the newer `lst` commands (sharded unit extraction, streaming data, generate, fine-tuning, the
transfer matrix, experiments): one line `lst <command>: error: ...` naming the flag, file, row or field, exit
status 2, no traceback, and nothing written (no output folder is made before the input is known to be good)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

from lst_speech.training.cli.main import main

ROW = {"id": "a", "normalized_text": "joy love", "sentiment": "Positive", "units": [1, 2, 3]}


@pytest.fixture(scope="module")
def work(tokenizer, tmp_path_factory):
    """A tiny LST with its tokenizer, a 50-unit MFCC extractor, audio, and good and bad SLUE-SA rows."""
    from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    root = tmp_path_factory.mktemp("newer_commands")
    waveform = (np.random.default_rng(0).normal(size=16000) * 0.1).astype(np.float32)
    (root / "audio").mkdir()
    soundfile.write(root / "audio" / "a.wav", waveform, 16000)
    MfccUnitExtractor(num_units=50).fit([waveform], 16000).save_pretrained(root / "extractor")
    torch.manual_seed(0)
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(root / "model")
    for folder in ("model", "tokenizer"):
        tokenizer.save_pretrained(root / folder)
    (root / "empty").mkdir()
    (root / "empty.wav").write_bytes(b"")
    (root / "empty.txt").write_text("")
    (root / "text.txt").write_text("In the beginning God created the heaven and the earth.\n")
    rows = {"sa": [ROW] * 4, "nolabel": [{k: v for k, v in ROW.items() if k != "sentiment"}],
            "badlabel": [{**ROW, "sentiment": "Happy"}], "strunits": [{**ROW, "units": ["x", "y"]}],
            "floatunits": [{**ROW, "units": [1.5, 2.0]}], "numtext": [{**ROW, "normalized_text": 5}],
            "bigunits": [{**ROW, "units": [1, 999]}]}
    for name, content in rows.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in content))
    (root / "badjson.jsonl").write_text('{"id": "a", "normalized_text": "joy"\n')
    return root


def tree(root) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def ends_in_one_line(work, capsys, argv: list[str], words: str) -> None:
    before = tree(work)
    with pytest.raises(SystemExit) as exited:
        main([a.format(W=work) for a in argv])
    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert words.format(W=work) in error.strip().splitlines()[-1], error[-2000:]
    assert "Traceback" not in error
    assert tree(work) == before  # nothing written, not even an empty output folder


EXTRACT = ["units", "extract", "--extractor", "{W}/extractor", "--audio", "{W}/audio"]


@pytest.mark.parametrize("argv, words", [
    ([*EXTRACT, "--output", "{W}/u", "--shard_size", "0"], "shard_size must be at least 1 file, got 0"),
    ([*EXTRACT, "--output", "{W}/u", "--shard_size", "-1"], "shard_size must be at least 1 file, got -1"),
    ([*EXTRACT, "--output", "{W}/u", "--num_processes", "0"], "--num_processes must be at least 1, got 0"),
    ([*EXTRACT, "--output", "{W}/u", "--batch_seconds", "-1"], "batch_seconds must be at least 0"),
    ([*EXTRACT, "--output", "{W}/u", "--alignments", "{W}/nope"], "--alignments {W}/nope does not exist"),
    ([*EXTRACT, "--output", "{W}/u", "--aligner", "pocketsphinx", "--transcripts", "{W}/nope.txt"],
     "--transcripts {W}/nope.txt does not exist"),
    ([*EXTRACT, "--output", "{W}/u", "--transcripts", "{W}/text.txt"], "--transcripts are for --aligner"),
    ([*EXTRACT, "--output", "{W}/text.txt"], "{W}/text.txt exists and is a file, where lst units extract writes"),
    ([*EXTRACT, "--output", "{W}/u.jsonl", "--num_processes", "2"], "give --output a folder name"),
    (["units", "extract", "--extractor", "{W}/extractor", "--audio", "{W}/empty", "--output", "{W}/u"],
     "No audio files ("),
    (["units", "extract", "--extractor", "{W}/audio/a.wav", "--audio", "{W}/audio", "--output", "{W}/u"],
     "There is no unit extractor directory '{W}/audio/a.wav'"),
])
def test_sharded_extraction(work, capsys, argv, words):
    ends_in_one_line(work, capsys, argv, words)


DATA = ["data", "--recipe", "lst", "--tokenizer", "{W}/tokenizer", "--output", "{W}/d"]


@pytest.mark.parametrize("argv, words", [
    ([*DATA, "--text", "{W}/text.txt", "--streaming", "--rows_per_shard", "-5"],
     "--rows_per_shard must be at least 1, got -5"),
    ([*DATA, "--text", "{W}/empty", "--streaming"], "{W}/empty is neither a dataset saved with save_to_disk nor"),
    ([*DATA, "--paired", "{W}/empty", "--streaming"], "{W}/empty is neither a dataset saved with save_to_disk nor"),
    ([*DATA, "--text", "{W}/empty.txt", "--streaming"], "{W}/empty.txt holds no text"),
    ([*DATA, "--text", "{W}/nope.txt", "--streaming"], "--text {W}/nope.txt does not exist"),
    ([*DATA, "--text", "{W}/text.txt", "--streaming", "--part", "a/b"], "--part 'a/b': write I/N with 0 <= I < N"),
    ([*DATA, "--text", "{W}/text.txt", "--streaming", "--part", "1/0"], "--part '1/0': write I/N with 0 <= I < N"),
    ([*DATA, "--text", "{W}/text.txt", "--part", "0/2"], "--part splits streamed sources: add --streaming"),
    ([*DATA, "--text", "{W}/text.txt", "--sequence_length", "-3"], "sequence_length must be a positive integer"),
    ([*DATA, "--text", "{W}/text.txt", "--streaming"], "draws 33% of its examples from 'paired' data"),
    (["data", "--recipe", "lst", "--tokenizer", "{W}/text.txt", "--text", "{W}/text.txt", "--output", "{W}/d"],
     "--tokenizer {W}/text.txt is a file: pass the folder"),
])
def test_streaming_data(work, capsys, argv, words):
    ends_in_one_line(work, capsys, argv, words)


GENERATE = ["generate", "--model", "{W}/model"]


@pytest.mark.parametrize("argv, words", [
    ([*GENERATE, "--text", "hi", "--max_new_tokens", "0"], "--max_new_tokens must be at least 1, got 0"),
    ([*GENERATE, "--text", "hi", "--max_new_tokens", "-4"], "--max_new_tokens must be at least 1, got -4"),
    ([*GENERATE, "--text", "hi", "--do_sample", "--temperature", "0"], "--temperature must be positive when sampling"),
    ([*GENERATE, "--text", "hi", "--do_sample", "--top_p", "1.5"], "--top_p must be in (0, 1] and --top_k at least 0"),
    ([*GENERATE, "--text", "hi", "--do_sample", "--top_k", "-1"], "--top_p must be in (0, 1] and --top_k at least 0"),
    ([*GENERATE, "--text", ""], "The --text prompt is empty"),
    ([*GENERATE, "--audio", "{W}/audio/a.wav"], "An --audio prompt needs --extractor"),
    ([*GENERATE, "--audio", "{W}/nope.wav", "--extractor", "{W}/extractor"], "{W}/nope.wav' does not exist"),
    ([*GENERATE, "--audio", "{W}/empty.wav", "--extractor", "{W}/extractor"], "Cannot read audio file '{W}/empty.wav'"),
    ([*GENERATE, "--audio", "{W}/audio/a.wav", "--extractor", "{W}/audio/a.wav"],
     "There is no unit extractor directory '{W}/audio/a.wav'"),
    ([*GENERATE, "--text", "hi", "--output_json", "{W}/empty"], "{W}/empty is a folder, where a file is written"),
    (["generate", "--model", "{W}/text.txt", "--text", "hi"], "--model {W}/text.txt: there is no such directory"),
    ([*GENERATE, "--text", "hi", "--output_modality", "speech", "--vocoder", "{W}/extractor"],
     "--vocoder {W}/extractor is not a unit vocoder"),
    ([*GENERATE, "--text", "hi", "--transcribe"], "--transcribe listens to the WAV, so it needs --vocoder"),
    ([*GENERATE, "--text", "hi", "--vocoder", "{W}/extractor"], "--vocoder turns speech output into audio"),
])
def test_generate(work, capsys, argv, words):
    ends_in_one_line(work, capsys, argv, words)


def finetune(train: str, *extra: str) -> list[str]:
    return ["finetune", "--model_name_or_path", "{W}/model", "--train_data", f"{{W}}/{train}", "--validation_data",
            "{W}/sa.jsonl", "--output_dir", "{W}/run", "--max_steps", "1", *extra]


@pytest.mark.parametrize("argv, words", [
    (finetune("badjson.jsonl"), "{W}/badjson.jsonl, line 1: not valid JSON"),
    (finetune("nolabel.jsonl"), "SLUE voxceleb data lacks the columns ['sentiment']"),
    (finetune("badlabel.jsonl"), "Row 'a' has sentiment 'Happy', which is not a SLUE-SA class"),
    (finetune("strunits.jsonl", "--train_modality", "speech"), "Row 'a': units must be a list of integer unit ids"),
    (finetune("floatunits.jsonl", "--train_modality", "speech"), "Row 'a': units must be a list of integer unit ids"),
    (finetune("numtext.jsonl"), "Row 'a': its transcript is 5 (int), not text"),
    (finetune("bigunits.jsonl", "--train_modality", "speech"), "unit id 999 at index 1 is outside 0..49"),
    (finetune("empty.txt"), "Cannot read '{W}/empty.txt': use parquet, jsonl or csv files"),
    (finetune("nope.jsonl"), "--train_data {W}/nope.jsonl does not exist"),
    (finetune("sa.jsonl", "--max_steps", "0"), "max_steps and per_device_batch_size must be positive"),
    (finetune("sa.jsonl", "--eval_steps", "-1"), "eval_steps must be at least 0 (0: validation at the last step only)"),
    (finetune("sa.jsonl", "--per_device_batch_size", "0"), "must be positive"),
    (finetune("sa.jsonl", "--output_dir", "{W}/text.txt"), "{W}/text.txt exists and is a file, where lst finetune"),
])
def test_fine_tuning(work, capsys, argv, words):
    ends_in_one_line(work, capsys, argv, words)


def transfer(*models: str, extra=()) -> list[str]:
    return ["transfer", "--output_dir", "{W}/transfer", "--models", *models, "--train_data", "{W}/sa.jsonl",
            "--validation_data", "{W}/sa.jsonl", "--test_data", "{W}/sa.jsonl", *extra]


@pytest.mark.parametrize("argv, words", [
    (transfer("lst={W}/nope"), "{W}/nope is not a saved model (no config.json)"),
    (transfer("lst={W}/model", "lst={W}/model"), "--models names ['lst'] more than once"),
    (transfer("={W}/model"), "Each of --models is name=path"),
    (transfer("lst="), "Each of --models is name=path"),
    (transfer("lst={W}/model", extra=("--max_steps", "0")), "max_steps and per_device_batch_size must be positive"),
    (transfer("lst={W}/model", extra=("--train_data", "{W}/nope.jsonl")), "--train_data {W}/nope.jsonl does not exist"),
    (transfer("lst={W}/model", extra=("--selection_modality", "audio")), "selection_modality must be 'train'"),
    (transfer("lst={W}/model", extra=("--task", "slue-asr")), "task must be one of"),
])
def test_transfer(work, capsys, argv, words):
    ends_in_one_line(work, capsys, argv, words)


@pytest.mark.parametrize("argv, words", [
    (["--speech_per_text", "0"], "speech_per_text values must be positive"),
    (["--patching", "words"], "Unknown patching mode 'words' in variant 'words'"),
    (["--patching", "bpe:fast"], "Unknown option(s) ['fast'] in variant 'bpe:fast'"),
    (["--directions", "X->Y"], "directions must be some of"),
])
def test_experiment(work, capsys, argv, words):
    ends_in_one_line(work, capsys, ["experiment", "--output_dir", "{W}/experiment", *argv], words)


@pytest.mark.parametrize("argv, words", [
    ([], "Name the recordings: --asterisk LANG, or --audio_dir with --transcripts"),
    (["--asterisk", "xx"], "No Asterisk prompt set 'xx'"),
    (["--asterisk", "en", "--audio_dir", "{W}/audio"], "Give --asterisk LANG or --audio_dir with --transcripts, not both"),
    (["--audio_dir", "{W}/nope", "--transcripts", "{W}/text.txt"], "--audio_dir {W}/nope does not exist"),
    (["--audio_dir", "{W}/audio", "--transcripts", "{W}/nope.txt"], "Transcript file {W}/nope.txt does not exist"),
    (["--audio_dir", "{W}/audio", "--transcripts", "{W}/text.txt"], "{W}/text.txt, row 1"),
    (["--asterisk", "en", "--num_train_epochs", "0"], "--num_train_epochs must be at least 1, got 0"),
    (["--asterisk", "en", "--held_out_every", "1"], "Holding out one prompt in every 1 leaves nothing to train on"),
])
def test_aligner_training(work, capsys, argv, words):
    ends_in_one_line(work, capsys, ["aligner", "train", "--output_dir", "{W}/ctc", *argv], words)
