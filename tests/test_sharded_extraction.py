"""Sharded, resumable unit extraction (`lst units extract --output folder`): the same shards whatever the
number of processes, resumption after a kill, failures reported, foreign shard folders refused."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from lst_speech.tokenization.corpora import sharded_extraction
from lst_speech.tokenization.corpora.sharded_extraction import ShardedExtraction, run_extraction
from lst_speech.training.cli.main import main


@pytest.fixture
def audio_tree(tmp_path):
    """Seven short noise recordings in a LibriSpeech-like tree, and a 4-unit MFCC extractor fitted on them."""
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    rng = np.random.default_rng(0)
    waveforms = [(rng.normal(size=int(16000 * (0.3 + 0.1 * i))) * 0.1).astype(np.float32) for i in range(7)]
    for index, waveform in enumerate(waveforms):
        path = tmp_path / "audio" / f"speaker{index % 2}" / "chapter" / f"utt{index}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, waveform, 16000)
    MfccUnitExtractor(num_units=4).fit(waveforms, 16000).save_pretrained(tmp_path / "extractor")
    return tmp_path


def _job(root, output, **options):
    return ShardedExtraction(root / "extractor", [root / "audio"], root / output, shard_size=3, **options)


def _tables(folder):
    import pyarrow.parquet as pq

    return {path.name: pq.read_table(path).to_pylist() for path in sorted(folder.glob("units-*.parquet"))}


def test_two_processes_write_the_same_shards_as_one(audio_tree):
    one = _job(audio_tree, "one")
    index = run_extraction(one)
    assert [s["rows"] for s in index["shards"]] == [3, 3, 1] and index["rows"] == 7 and index["failures"] == []
    assert index["hours"] == pytest.approx(sum(0.3 + 0.1 * i for i in range(7)) / 3600, rel=1e-6)
    two = _job(audio_tree, "two")
    two.prepare_output()
    assert two.run_process(1, 2) == [1] and two.run_process(0, 2) == [0, 2]
    two.write_index()
    assert _tables(audio_tree / "one") == _tables(audio_tree / "two")
    rows = [row for table in _tables(audio_tree / "one").values() for row in table]
    assert [row["path"].rsplit("/", 1)[-1] for row in rows] == [f"utt{i}.wav" for i in (0, 2, 4, 6, 1, 3, 5)]
    assert all(len(row["units"]) > 0 and max(row["units"]) < 4 for row in rows)


@pytest.mark.slow
def test_spawned_local_workers_equal_one_process(audio_tree):
    run_extraction(_job(audio_tree, "one"))
    run_extraction(_job(audio_tree, "spawned"), num_processes=2)
    assert _tables(audio_tree / "one") == _tables(audio_tree / "spawned")


def test_a_job_killed_mid_shard_resumes_to_the_uninterrupted_output(audio_tree, monkeypatch):
    run_extraction(_job(audio_tree, "whole"))
    real_row, calls = sharded_extraction.unit_row, []

    def killed_on_the_fifth_file(*arguments):
        calls.append(arguments[0])
        if len(calls) == 5:  # the second file of the second shard
            raise KeyboardInterrupt("killed")
        return real_row(*arguments)

    monkeypatch.setattr(sharded_extraction, "unit_row", killed_on_the_fifth_file)
    with pytest.raises(KeyboardInterrupt):
        run_extraction(_job(audio_tree, "resumed"))
    folder = audio_tree / "resumed"
    assert sorted(p.name for p in folder.glob("units-*.parquet")) == ["units-00000-of-00003.parquet"]
    assert not list(folder.glob(".*partial")) and not (folder / "index.json").exists()
    # A hard kill (SIGKILL) leaves its temporary behind: it must be neither read nor kept.
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # a writer on this host that no longer runs
    leftover = folder / f".units-00001-of-00003.parquet.{socket.gethostname()}-{killed.pid}.x1y2z3.partial"
    leftover.mkdir()
    (leftover / "units-00001-of-00003.parquet").write_bytes(b"half a shard")
    monkeypatch.setattr(sharded_extraction, "unit_row", real_row)
    job = _job(audio_tree, "resumed")
    job.prepare_output()
    assert job.run_process() == [1, 2]  # the finished shard is skipped
    job.write_index()
    assert _tables(folder) == _tables(audio_tree / "whole") and not list(folder.glob(".*partial"))


def test_unreadable_files_stop_the_job_or_are_listed_with_their_reason(audio_tree):
    broken = audio_tree / "audio" / "speaker0" / "chapter" / "utt9.wav"
    broken.write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="Cannot read audio file .*utt9.wav"):
        run_extraction(_job(audio_tree, "stopped"))
    index = run_extraction(_job(audio_tree, "skipped", on_error="skip"))
    assert index["rows"] == 7 and len(index["failures"]) == 1
    assert index["failures"][0]["path"] == str(broken) and "Cannot read audio file" in index["failures"][0]["error"]
    assert json.loads((audio_tree / "skipped" / "index.json").read_text())["failures"] == index["failures"]


def test_a_shard_whose_files_all_failed_leaves_no_unreadable_parquet_and_counts_as_done(audio_tree):
    import datasets

    for path in sorted((audio_tree / "audio").rglob("*.wav"))[:3]:  # the first shard's three files
        path.write_bytes(b"not audio at all")
    job = _job(audio_tree, "skipped", on_error="skip")
    index = run_extraction(job)
    assert [shard["file"] for shard in index["shards"]] == ["units-00001-of-00003.parquet",
                                                           "units-00002-of-00003.parquet"]
    assert index["rows"] == 4 and len(index["failures"]) == 3
    assert not (audio_tree / "skipped" / "units-00000-of-00003.parquet").exists()
    assert job.run_process() == []  # a resume has nothing left to do
    loaded = datasets.load_dataset("parquet", data_files=str(audio_tree / "skipped" / "units-*.parquet"),
                                   split="train")
    assert len(loaded) == 4


def test_a_folder_from_another_configuration_is_refused(audio_tree):
    run_extraction(_job(audio_tree, "units"))
    with pytest.raises(ValueError, match="another extraction configuration .*deduplicate"):
        run_extraction(_job(audio_tree, "units", deduplicate=True))
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    MfccUnitExtractor(num_units=5).fit([np.random.default_rng(1).normal(size=16000).astype(np.float32)],
                                       16000).save_pretrained(audio_tree / "extractor")
    with pytest.raises(ValueError, match="differs in extractor_sha256"):
        run_extraction(_job(audio_tree, "units"))
    (audio_tree / "units" / "extraction_config.json").write_text('{"extractor_sha256": "ab')
    with pytest.raises(ValueError, match=r"units/extraction_config.json is damaged \(Unterminated string"):
        run_extraction(_job(audio_tree, "units"))


def test_shards_load_with_datasets_and_carry_a_card(audio_tree):
    import datasets

    main(["units", "extract", "--extractor", str(audio_tree / "extractor"), "--audio", str(audio_tree / "audio"),
          "--output", str(audio_tree / "units"), "--shard_size", "3", "--deduplicate"])  # the command writes the card
    folder = audio_tree / "units"
    by_pattern = datasets.load_dataset("parquet", data_files=str(folder / "units-*.parquet"), split="train")
    by_card = datasets.load_dataset(str(folder), split="train")
    assert by_pattern.num_rows == by_card.num_rows == 7
    assert set(by_card.column_names) == {"path", "duration", "units", "durations"}
    assert all(sum(d) > 0 and len(d) == len(u) for d, u in zip(by_card["durations"], by_card["units"]))
    assert "**files**: 7 (7 extracted, 0 failed" in (folder / "README.md").read_text()


def test_the_command_writes_shards_and_keeps_json_lines_to_one_process(audio_tree, capsys):
    from lst_speech.training.cli.main import main

    main(["units", "extract", "--extractor", str(audio_tree / "extractor"), "--audio", str(audio_tree / "audio"),
          "--output", str(audio_tree / "units"), "--shard_size", "4"])
    assert json.loads((audio_tree / "units" / "index.json").read_text())["rows"] == 7
    with pytest.raises(SystemExit):
        main(["units", "extract", "--extractor", str(audio_tree / "extractor"), "--audio", str(audio_tree / "audio"),
              "--output", str(audio_tree / "u.jsonl"), "--num_processes", "2"])
    assert "give --output a folder name" in capsys.readouterr().err


@pytest.mark.slow
def test_accelerate_launch_with_two_processes_equals_one_process(audio_tree):
    run_extraction(_job(audio_tree, "one"))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lst_speech.training.cli.main"]
    command = ["units", "extract", "--extractor", str(audio_tree / "extractor"), "--audio", str(audio_tree / "audio"),
               "--output", str(audio_tree / "launched"), "--shard_size", "3"]
    environment = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([*launch, *command], env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "extracting (process 1)" in result.stderr  # the shards were split, not written twice
    assert _tables(audio_tree / "launched") == _tables(audio_tree / "one")
    assert json.loads((audio_tree / "launched" / "index.json").read_text())["rows"] == 7


@pytest.fixture
def hubert_tree(tmp_path, sample_verses):
    """Four espeak utterances, one 0.01 s clip (shorter than HuBERT's receptive field) and a fitted tiny
    layer-norm HuBERT extractor (one that takes padded batches)."""
    from test_hubert_units import tiny_hubert

    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
    from lst_speech.tokenization.speech.hubert_units import HubertUnitExtractor

    root, synthesizer, waveforms = tmp_path / "hubert_tree", EspeakSynthesizer(), []
    (root / "audio").mkdir(parents=True)
    for index, verse in enumerate(sample_verses[:4]):
        speech = synthesizer.synthesize(verse)
        soundfile.write(root / "audio" / f"utt{index}.wav", speech.waveform, speech.sampling_rate)
        waveforms.append(speech.waveform)
    soundfile.write(root / "audio" / "utt2b.wav", waveforms[0][:220], speech.sampling_rate)
    extractor = HubertUnitExtractor(tiny_hubert(root / "hubert", norm="layer"), layer=2, num_units=8)
    extractor.fit(waveforms, speech.sampling_rate).save_pretrained(root / "extractor")
    return root


def test_hubert_batches_by_duration_give_the_units_of_one_file_at_a_time(hubert_tree):
    one_by_one = run_extraction(_job(hubert_tree, "single", on_error="skip"))
    batched = run_extraction(_job(hubert_tree, "batched", on_error="skip", batch_seconds=30.0))
    # The clip too short for HuBERT fails alone: its batch is redone file by file, and only it is listed.
    for index in (one_by_one, batched):
        assert [f["path"].rsplit("/", 1)[1] for f in index["failures"]] == ["utt2b.wav"] and index["rows"] == 4
        assert "shorter than one analysis window" in index["failures"][0]["error"]
    assert _tables(hubert_tree / "single") == _tables(hubert_tree / "batched")


def test_hubert_in_bf16_keeps_most_units_and_mfcc_refuses_it(hubert_tree, audio_tree):
    run_extraction(_job(hubert_tree, "fp32", on_error="skip", batch_seconds=30.0))
    run_extraction(_job(hubert_tree, "bf16", on_error="skip", batch_seconds=30.0, dtype="bf16"))
    full = [u for table in _tables(hubert_tree / "fp32").values() for row in table for u in row["units"]]
    half = [u for table in _tables(hubert_tree / "bf16").values() for row in table for u in row["units"]]
    assert len(full) == len(half) > 500
    # bf16 rounds the features (8 bits of mantissa): frames near a k-means boundary may change unit, most do not.
    assert np.mean(np.array(full) == np.array(half)) > 0.8
    with pytest.raises(ValueError, match="bf16 is for neural feature models"):
        run_extraction(_job(audio_tree, "mfcc-bf16", dtype="bf16"))
