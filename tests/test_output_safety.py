"""Outputs never destroy what the command did not create: an output that is, holds or lies inside one of the
command's inputs, or a folder another command (or the user) made, is refused in one line before any work, with
every file left byte for byte; a command's own earlier output is replaced whole; concurrent writers of one
destination leave one whole output and no temporaries; a writer killed mid-write leaves nothing behind."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal

import numpy as np
import pytest
import soundfile

from lst_speech.tokenization.atomic_files import atomic_directory, atomic_path
from lst_speech.tokenization.output_safety import (
    MARKER,
    ForeignOutputError,
    OutputOverlapsInput,
    check_apart,
    claim_directory,
)
from lst_speech.training.cli.main import main

from test_streaming_data import PAIRED_FEATURES, paired_rows


def snapshot(folder) -> dict[str, bytes]:
    """Every file under `folder`, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv: list, capsys) -> str:
    """Runs `lst ARGV`, which must end in one error line (exit status 2); returns that line."""
    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in argv])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "no error line"
    return lines[-1]


@pytest.fixture
def saved_tokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    return tmp_path / "tokenizer"


@pytest.fixture
def sources(tmp_path, sample_verses):
    """A user's folder of sources: a text file, a paired corpus and notes of their own."""
    import datasets

    folder = tmp_path / "sources"
    folder.mkdir()
    (folder / "verses.txt").write_text("\n".join(sample_verses[:300]) + "\n")
    datasets.Dataset.from_list(list(paired_rows(sample_verses[300:400])), features=PAIRED_FEATURES).save_to_disk(
        folder / "paired")
    (folder / "notes.md").write_text("my notes, not in any backup\n")
    return folder


@pytest.fixture
def run_dir(tmp_path):
    """A trained run as pretraining leaves it: checkpoints, log, run.json and final/ (contents stand-ins)."""
    run = tmp_path / "run"
    for name, data in {"checkpoint-2/model.safetensors": b"weights", "checkpoint-2/trainer_state.json": b"{}",
                       "log.jsonl": b'{"step": 1}\n', "run.json": b'{"preset": "tiny"}\n',
                       "final/config.json": b"{}", MARKER: b'{"written_by": "lst_speech.training.pretrain"}'}.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(data)
    return run


# --- lst data ---------------------------------------------------------------------------------------------------

def data_command(tokenizer_dir, sources, output, *extra):
    return [str(a) for a in ("data", "--recipe", "lst", "--tokenizer", tokenizer_dir, "--text",
                             sources / "verses.txt", "--paired", sources / "paired", "--sequence_length", "64",
                             "--output", output, *extra)]


def test_lst_data_into_the_folder_of_its_sources_is_refused_and_deletes_nothing(saved_tokenizer, sources, capsys):
    before = snapshot(sources)
    line = refused(data_command(saved_tokenizer, sources, sources), capsys)
    assert line == (f"lst data: error: --output {sources} holds --paired {sources / 'paired'}: the output would "
                    "replace or mix with what the command reads; choose an output outside its inputs.")
    assert snapshot(sources) == before


def test_lst_data_output_inside_a_source_or_holding_the_tokenizer_is_refused(saved_tokenizer, sources, tmp_path,
                                                                             capsys):
    before = snapshot(sources)
    line = refused(data_command(saved_tokenizer, sources, sources / "paired" / "packed"), capsys)
    assert f"--output {sources / 'paired' / 'packed'} lies inside --paired {sources / 'paired'}" in line
    line = refused(data_command(saved_tokenizer, sources, tmp_path), capsys)
    assert f"--output {tmp_path} holds --tokenizer {saved_tokenizer}" in line
    assert snapshot(sources) == before


def test_lst_data_into_a_folder_it_did_not_write_is_refused_before_any_work(saved_tokenizer, sources, tmp_path,
                                                                             capsys, monkeypatch):
    from lst_speech.training.data import recipes

    monkeypatch.setattr(recipes, "build_pretraining_data", lambda *a, **k: pytest.fail("work began"))
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    line = refused(data_command(saved_tokenizer, sources, photos), capsys)
    assert line == (f"lst data: error: {photos} exists and was not written by lst data (it has no {MARKER}): "
                    "choose another output path or remove it yourself.")
    assert snapshot(photos) == {"cat.jpg": b"\xff\xd8 a cat"}


def test_lst_data_run_again_replaces_its_own_output(saved_tokenizer, sources, tmp_path):
    import datasets

    output = tmp_path / "packed"
    main(data_command(saved_tokenizer, sources, output))
    (output / "stale.txt").write_text("left by the first build")
    main(data_command(saved_tokenizer, sources, output, "--seed", "1"))
    assert not (output / "stale.txt").exists() and len(datasets.load_from_disk(str(output))) > 0
    assert json.loads((output / MARKER).read_text())["written_by"] == "lst data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packed", "sources", "tokenizer"]  # no temporaries


def test_parts_given_one_output_each_survive(saved_tokenizer, sources, tmp_path, capsys):
    output = tmp_path / "packed"
    for part in ("0/2", "1/2"):
        main(data_command(saved_tokenizer, sources, output, "--streaming", "--part", part))
    assert sorted(p.name for p in output.iterdir()) == ["part-00000-of-00002", "part-00001-of-00002"]
    for name in ("part-00000-of-00002", "part-00001-of-00002"):
        assert json.loads((output / name / "index.json").read_text())["rows"] > 0
    first = snapshot(output / "part-00000-of-00002")
    main(data_command(saved_tokenizer, sources, output, "--streaming", "--part", "1/2"))  # a rerun
    assert snapshot(output / "part-00000-of-00002") == first
    line = refused(data_command(saved_tokenizer, sources, output, "--streaming", "--part", "0/3"),
                   capsys)
    assert f"--output {output} holds parts of another --part split (part-00000-of-00002" in line


# --- lst export -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("where, words", [("run", "is source"), ("run/release", "lies inside source")])
def test_lst_export_into_its_run_is_refused_and_the_run_kept(run_dir, tmp_path, capsys, where, words):
    before = snapshot(run_dir)
    line = refused(["export", run_dir, "--output_dir", tmp_path / where], capsys)
    assert line.startswith(f"lst export: error: --output_dir {tmp_path / where} {words} {run_dir}")
    assert snapshot(run_dir) == before


def test_lst_export_over_another_commands_folder_is_refused(run_dir, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    with atomic_directory(corpus, "lst corpus") as partial:
        (partial / "rows.arrow").write_bytes(b"rows")
    line = refused(["export", run_dir, "--output_dir", corpus], capsys)
    assert line == (f"lst export: error: {corpus} was written by lst corpus, not lst export: choose another output "
                    "path or remove it yourself.")
    assert (corpus / "rows.arrow").read_bytes() == b"rows"


def test_lst_export_run_again_replaces_its_own_release(tokenizer, tmp_path):
    import torch

    from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM

    torch.manual_seed(0)
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    for repo_id in ("org/first", "org/second"):
        main(["export", str(tmp_path / "model"), "--output_dir", str(tmp_path / "release"), "--repo_id", repo_id])
    assert "org/second" in (tmp_path / "release" / "README.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "release"]
    from lst_speech.model_cards.release import upload_plan

    assert MARKER not in {f["path"] for f in upload_plan(tmp_path / "release", "org/second")["files"]}


# --- the other commands that write ------------------------------------------------------------------------------

def test_lst_vocoder_synthesize_into_the_audio_folder_is_refused(tmp_path, capsys):
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    soundfile.write(wavs / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    (tmp_path / "units.jsonl").write_text(json.dumps({"path": str(wavs / "a.wav"), "units": [1, 2]}) + "\n")
    before = snapshot(wavs)
    line = refused(["vocoder", "synthesize", "--vocoder", tmp_path / "no-vocoder-needed", "--units",
                    tmp_path / "units.jsonl", "--output_dir", wavs], capsys)
    assert line.startswith(f"lst vocoder: error: {wavs} exists and was not written by lst vocoder synthesize")
    assert snapshot(wavs) == before


def test_lst_vocoder_synthesize_run_again_replaces_its_own_folder(tmp_path):
    from test_vocoder import tiny_vocoder

    tiny_vocoder().save_pretrained(tmp_path / "vocoder")
    for units in ([1, 2, 3], [4, 5]):
        (tmp_path / "units.jsonl").write_text(json.dumps({"path": f"x{len(units)}.wav", "units": units}) + "\n")
        main(["vocoder", "synthesize", "--vocoder", str(tmp_path / "vocoder"), "--units",
              str(tmp_path / "units.jsonl"), "--output_dir", str(tmp_path / "out")])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "x2.wav"]


def test_lst_generate_never_writes_over_its_prompt(tmp_path, capsys):
    soundfile.write(tmp_path / "prompt.wav", np.zeros(1600, dtype=np.float32), 16000)
    before = snapshot(tmp_path)
    line = refused(["generate", "--model", tmp_path / "model", "--audio", tmp_path / "prompt.wav", "--extractor",
                    tmp_path / "extractor", "--output_modality", "speech", "--vocoder", tmp_path / "vocoder",
                    "--wav", tmp_path / "prompt.wav"], capsys)
    assert line.startswith(f"lst generate: error: --wav {tmp_path / 'prompt.wav'} is --audio {tmp_path / 'prompt.wav'}")
    assert snapshot(tmp_path) == before


def test_lst_eval_never_writes_over_its_data(tmp_path, capsys):
    (tmp_path / "pairs.json").write_text("[]")
    line = refused(["eval", "mc", "--model", tmp_path / "model", "--data", tmp_path / "pairs.json", "--format", "pairs",
                    "--output", tmp_path / "pairs"], capsys)
    assert f"--output {tmp_path / 'pairs.json'} is --data {tmp_path / 'pairs.json'}" in line
    assert (tmp_path / "pairs.json").read_text() == "[]"


@pytest.fixture
def extractor_and_audio(tmp_path):
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    rng = np.random.default_rng(0)
    MfccUnitExtractor(num_units=4).fit([rng.normal(size=16000).astype(np.float32)], 16000).save_pretrained(
        tmp_path / "extractor")
    (tmp_path / "audio").mkdir()
    soundfile.write(tmp_path / "audio" / "a.wav", rng.normal(size=8000).astype(np.float32) * 0.1, 16000)
    return tmp_path / "extractor", tmp_path / "audio"


def test_lst_units_extract_and_fit_refuse_outputs_among_their_inputs(extractor_and_audio, tmp_path, capsys):
    extractor, audio = extractor_and_audio
    before = snapshot(tmp_path)
    line = refused(["units", "extract", "--extractor", extractor, "--audio", audio, "--output", audio / "units"],
                   capsys)
    assert f"--output {audio / 'units'} lies inside --audio {audio}" in line
    line = refused(["units", "extract", "--extractor", extractor, "--audio", audio, "--output", tmp_path], capsys)
    assert f"--output {tmp_path} holds --extractor {extractor}" in line
    line = refused(["units", "fit", "--audio", audio / "a.wav", "--output", audio], capsys)
    assert f"--output {audio} holds --audio {audio / 'a.wav'}" in line
    line = refused(["units", "fit", "--audio", audio / "a.wav", "--output", extractor], capsys)
    assert f"{extractor} exists and was not written by lst units fit" in line  # saved by the library, unmarked
    assert snapshot(tmp_path) == before


def test_lst_units_extract_into_a_foreign_folder_is_refused_and_resumes_its_own(extractor_and_audio, tmp_path,
                                                                                 capsys):
    extractor, audio = extractor_and_audio
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("mine\n")
    line = refused(["units", "extract", "--extractor", extractor, "--audio", audio, "--output", mine], capsys)
    assert f"{mine} exists and was not written by lst units extract" in line
    assert snapshot(mine) == {"README.md": b"mine\n"}
    for _ in range(2):  # the second run takes up its own folder again
        main(["units", "extract", "--extractor", str(extractor), "--audio", str(audio), "--output",
              str(tmp_path / "units")])
    assert json.loads((tmp_path / "units" / "index.json").read_text())["rows"] == 1


@pytest.mark.parametrize("argv", [
    ["corpus", "--output", "{user}"],
    ["slue-stand-in", "--output_dir", "{user}"],
    ["vocoder", "train", "--output_dir", "{user}"],
    ["experiment", "--output_dir", "{user}"],
])
def test_commands_refuse_a_folder_they_did_not_write(tmp_path, capsys, argv):
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("\\section{Results}\n")
    line = refused([a.format(user=user) for a in argv], capsys)
    assert f"{user} exists and was not written by lst {argv[0]}" in line
    assert snapshot(user) == {"thesis.tex": b"\\section{Results}\n"}


def test_a_training_run_folder_is_not_taken_over_by_another_command(run_dir, tmp_path, capsys):
    before = snapshot(run_dir)
    line = refused(["vocoder", "train", "--output_dir", run_dir], capsys)  # would rotate the run's checkpoints
    assert line.startswith(f"lst vocoder: error: {run_dir} was written by lst_speech.training.pretrain, not lst "
                           "vocoder train")
    (tmp_path / "train.jsonl").write_text("")
    line = refused(["finetune", "--model_name_or_path", run_dir / "final", "--train_data", tmp_path / "train.jsonl",
                    "--validation_data", tmp_path / "train.jsonl", "--output_dir", run_dir], capsys)
    assert f"--output_dir {run_dir} holds --model_name_or_path {run_dir / 'final'}" in line
    assert snapshot(run_dir) == before


def test_pretraining_refuses_a_folder_it_did_not_write(saved_tokenizer, tmp_path):
    import datasets

    from lst_speech.training import pretrain

    datasets.Dataset.from_dict({"input_ids": [[1, 2, 3]], "modality_mask": [[0, 0, 0]]}).save_to_disk(tmp_path / "d")
    user = tmp_path / "user"
    user.mkdir()
    (user / "log.jsonl").write_text("my own log\n")
    argv = [f"--tokenizer={saved_tokenizer}", f"--train_data={tmp_path / 'd'}", "--max_steps=1", "--report_to=none"]
    with pytest.raises(ForeignOutputError, match="was not written by lst_speech.training.pretrain"):
        pretrain.main([*argv, f"--output_dir={user}"])
    with pytest.raises(OutputOverlapsInput, match="holds --tokenizer"):
        pretrain.main([*argv, f"--output_dir={tmp_path}"])
    assert snapshot(user) == {"log.jsonl": b"my own log\n"}


# --- the mechanism ----------------------------------------------------------------------------------------------

def test_check_apart_names_how_an_output_meets_an_input(tmp_path):
    (tmp_path / "data" / "part").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data")
    for output, words in ((tmp_path / "data", "is"), (tmp_path / "data" / "part" / "out", "lies inside"),
                          (tmp_path, "holds"), (tmp_path / "link" / "out", "lies inside")):
        with pytest.raises(OutputOverlapsInput, match=f"--output {output} {words} --data {tmp_path / 'data'}"):
            check_apart(("--output", output), ("--data", tmp_path / "data"))
    check_apart(("--output", tmp_path / "elsewhere"), ("--data", tmp_path / "data"), ("--model", "org/repo-id"),
                ("--extractor", None))
    (tmp_path / "prompt.wav").write_bytes(b"RIFF")  # a file written by name may sit among the inputs, not on one
    check_apart(("--wav", tmp_path / "data" / "out.wav"), ("--data", tmp_path / "data"), file=True)
    with pytest.raises(OutputOverlapsInput, match="--wav .*prompt.wav is --audio"):
        check_apart(("--wav", tmp_path / "link" / ".." / "prompt.wav"), ("--audio", tmp_path / "prompt.wav"), file=True)


def test_claimed_folders_are_taken_up_by_their_owner_only(tmp_path):
    claim_directory(tmp_path / "run", "lst finetune")
    (tmp_path / "run" / "log.jsonl").write_text("1\n")
    claim_directory(tmp_path / "run", "lst finetune")
    with pytest.raises(ForeignOutputError, match="was written by lst finetune, not lst vocoder train"):
        claim_directory(tmp_path / "run", "lst vocoder train")
    (tmp_path / "empty").mkdir()
    claim_directory(tmp_path / "empty", "lst finetune")  # an empty folder holds nothing to lose


def test_a_file_output_replaces_its_file_but_never_a_folder(tmp_path):
    (tmp_path / "out.wav").write_bytes(b"old")
    with atomic_path(tmp_path / "out.wav") as partial:
        partial.write_bytes(b"new")
    assert (tmp_path / "out.wav").read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["out.wav"]
    (tmp_path / "folder").mkdir()
    with pytest.raises(ForeignOutputError, match="is a folder, where a file is written"), \
            atomic_path(tmp_path / "folder"):
        pass
    with pytest.raises(ForeignOutputError, match="is a file, where lst data writes a folder"), \
            atomic_directory(tmp_path / "out.wav", "lst data"):
        pass


def _write_folder(destination: str, writer: int, rounds: int, start) -> None:
    """Writes `rounds` whole outputs: 20 files each holding the writer's number."""
    start.wait()
    for _ in range(rounds):
        with atomic_directory(destination, "lst data") as partial:
            for index in range(20):
                (partial / f"shard-{index:02d}").write_bytes(bytes([writer]) * 10_000)


def _write_file(destination: str, writer: int, rounds: int, start) -> None:
    start.wait()
    for _ in range(rounds):
        with atomic_path(destination) as partial:
            partial.write_bytes(bytes([writer]) * 500_000)


@pytest.mark.parametrize("write", [_write_folder, _write_file])
def test_concurrent_writers_leave_one_whole_output_and_no_temporaries(tmp_path, write):
    context = multiprocessing.get_context("fork")  # this module's functions, without re-importing torch
    start = context.Barrier(3)
    destination = tmp_path / "out"
    writers = [context.Process(target=write, args=(str(destination), n, 40, start)) for n in (1, 2, 3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    assert [writer.exitcode for writer in writers] == [0, 0, 0]
    assert os.listdir(tmp_path) == ["out"]
    if destination.is_dir():
        files = snapshot(destination)
        assert sorted(files) == [MARKER, *(f"shard-{i:02d}" for i in range(20))]
        assert len({data for name, data in files.items() if name != MARKER}) == 1  # all from one writer
    else:
        assert len(set(destination.read_bytes())) == 1 and destination.stat().st_size == 500_000


def _write_until_killed(destination: str, halfway) -> None:
    with atomic_directory(destination, "lst data") as partial:
        (partial / "first-half").write_bytes(b"half")
        halfway.set()
        signal.pause()


def test_a_writer_killed_mid_write_leaves_the_old_output_and_its_temporary_is_cleared(tmp_path):
    destination = tmp_path / "out"
    with atomic_directory(destination, "lst data") as partial:
        (partial / "whole").write_bytes(b"old output")
    before = snapshot(destination)
    context = multiprocessing.get_context("fork")
    halfway = context.Event()
    writer = context.Process(target=_write_until_killed, args=(str(destination), halfway))
    writer.start()
    assert halfway.wait(60)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    assert snapshot(destination) == before  # the destination never saw the half-written output
    assert len(os.listdir(tmp_path)) == 2  # the killed writer's temporary, beside it
    with atomic_directory(destination, "lst data") as partial:
        (partial / "whole").write_bytes(b"new output")
    assert os.listdir(tmp_path) == ["out"] and (destination / "whole").read_bytes() == b"new output"
