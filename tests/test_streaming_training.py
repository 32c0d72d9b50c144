"""Pretraining from a stream (Parquet shards read as an IterableDataset): the same losses as memory-mapped
training on the same rows, an exact resume from each process's stream position, and two processes splitting
the shards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import datasets
import pytest
from test_pretrain import ENV, arguments, read_log, run_pretraining, workspace  # noqa: F401  (fixture)

from lst_speech.tokenization.output_safety import MARKER
from lst_speech.training.data.dataset_files import open_dataset, write_parquet_shards
from lst_speech.training.data.packing import PACKED_FEATURES

pytestmark = pytest.mark.slow  # subprocesses, several processes or whole jobs: `-m "not slow"` skips them

ROWS = 60  # a small corpus, so that 12 steps of 8 rows cross into the second epoch
TRAINING = ["--per_device_batch_size", "4", "--gradient_accumulation_steps", "2", "--max_steps", "12",
            "--patching_mode", "curriculum", "--curriculum_aligned_until", "4", "--curriculum_static_from", "9"]


@pytest.fixture(scope="module")
def corpus(workspace, tmp_path_factory):  # noqa: F811
    """The first ROWS packed rows in the order memory-mapped training draws its first epoch (seed 3, as
    `arguments` sets), saved both ways: with save_to_disk and as 4 Parquet shards."""
    root = tmp_path_factory.mktemp("streaming")
    rows = datasets.load_from_disk(str(workspace / "data")).select(range(ROWS))
    rows.save_to_disk(root / "mapped")
    write_parquet_shards(iter(rows.shuffle(seed=3)), root / "shards", PACKED_FEATURES, rows_per_shard=ROWS // 4,
                         owner="lst data")
    return root


def streamed_arguments(workspace, corpus, output_dir, *extra):  # noqa: F811
    argv = arguments(workspace, output_dir, *TRAINING, *extra)
    argv[argv.index("--train_data") + 1] = str(corpus / "shards")
    return [*argv, "--streaming"]


def test_the_shards_read_back_as_a_stream_and_in_memory(corpus):
    index = json.loads((corpus / "shards" / "index.json").read_text())
    assert [shard["rows"] for shard in index["shards"]] == [15, 15, 15, 15] and index["rows"] == ROWS
    stream = open_dataset(str(corpus / "shards"), streaming=True)
    assert isinstance(stream, datasets.IterableDataset) and stream.n_shards == 4
    mapped = open_dataset(str(corpus / "shards"))
    expected = datasets.load_from_disk(str(corpus / "mapped")).shuffle(seed=3)
    assert mapped["input_ids"] == expected["input_ids"] == [row["input_ids"] for row in stream]


def test_streamed_training_gives_the_losses_of_memory_mapped_training(workspace, corpus, tmp_path):  # noqa: F811
    mapped = tmp_path / "mapped"
    argv = arguments(workspace, mapped, *TRAINING)
    argv[argv.index("--train_data") + 1] = str(corpus / "mapped")
    run_pretraining(*argv)
    streamed = tmp_path / "streamed"
    run_pretraining(*streamed_arguments(workspace, corpus, streamed, "--shuffle_buffer_size", "0"))
    # The first epoch (7 steps of 8 of the 60 rows) is the same rows in the same order; later epochs are
    # shuffled differently by the two readers.
    for expected, row in list(zip(read_log(mapped), read_log(streamed), strict=True))[:7]:
        for key in ("loss", "loss_text", "loss_speech", "tokens"):
            assert row[key] == pytest.approx(expected[key], abs=1e-5, nan_ok=True), (row["step"], key)


def test_a_streamed_run_resumes_mid_window_and_across_epochs_to_the_same_losses(workspace, corpus, tmp_path):  # noqa: F811
    window = ["--shuffle_buffer_size", "16", "--save_steps", "5", "--save_total_limit", "3"]
    reference = tmp_path / "reference"
    run_pretraining(*streamed_arguments(workspace, corpus, reference, *window))
    expected = read_log(reference)
    state = json.loads((reference / "checkpoint-5" / "trainer_state.json").read_text())
    # 5 steps of 8 rows: 2 windows of 16 read, 8 rows into the third.
    assert state["streams"] == [{**state["streams"][0], "micro_batches": 10, "epoch": 0, "window": 2, "taken": 8}]
    assert state["streams"][0]["window_start"] is not None

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copy(reference / MARKER, resumed / MARKER)  # a copy of the run, up to its fifth step
    shutil.copytree(reference / "checkpoint-5", resumed / "checkpoint-5")
    (resumed / "log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in expected[:5]))
    run_pretraining(*streamed_arguments(workspace, corpus, resumed, *window, "--resume_from_checkpoint", "latest"))
    assert [row["step"] for row in read_log(resumed)] == list(range(1, 13))
    for expected_row, row in zip(expected, read_log(resumed), strict=True):
        for key in ("loss", "loss_text", "loss_speech", "learning_rate", "tokens"):
            assert row[key] == pytest.approx(expected_row[key], abs=1e-5, nan_ok=True), (row["step"], key)
    final = json.loads((reference / "checkpoint-12" / "trainer_state.json").read_text())["streams"][0]
    assert final["epoch"] == 1 and final["micro_batches"] == 24  # 96 rows: the stream wrapped once


def test_two_processes_split_the_shards_and_record_both_streams(workspace, corpus, tmp_path):  # noqa: F811
    two = tmp_path / "two"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lst_speech.training.pretrain"]
    argv = streamed_arguments(workspace, corpus, two, "--max_steps", "4", "--per_device_batch_size", "2",
                              "--save_steps", "2")
    result = subprocess.run([*launch, *argv], env={**ENV, "ACCELERATE_USE_CPU": "true"}, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    streams = json.loads((two / "checkpoint-4" / "trainer_state.json").read_text())["streams"]
    # Each process reads 2 of the 4 shards (30 rows): 4 steps of 2 micro-batches of 2 rows each stay in epoch 0.
    assert [stream["micro_batches"] for stream in streams] == [8, 8]
    assert all(stream["epoch"] == 0 for stream in streams)
    assert len(read_log(two)) == 4


def test_a_checkpoint_resumes_only_with_the_data_reading_it_was_made_with(workspace, corpus, tmp_path):  # noqa: F811
    from accelerate import Accelerator

    from lst_speech.training.arguments import DataArguments
    from lst_speech.training.batches import make_batches
    from lst_speech.training.data.collator import PackedCollator
    from lst_speech.training.pretrain import parse_arguments

    _, _, args = parse_arguments(streamed_arguments(workspace, corpus, tmp_path / "run"))
    accelerator, collator = Accelerator(cpu=True), PackedCollator(0)
    streamed = DataArguments(train_data=str(corpus / "shards"), streaming=True)
    mapped = DataArguments(train_data=str(corpus / "mapped"))
    stream = open_dataset(str(corpus / "shards"), streaming=True)
    two = {"step": 3, "micro_batches": 6, "streams": [{"micro_batches": 6}, {"micro_batches": 6}]}
    with pytest.raises(ValueError, match="stream positions of 2 processes and this run has 1"):
        make_batches(stream, streamed, accelerator, collator, args, two)
    with pytest.raises(ValueError, match="memory-mapped its data: resume it without --streaming"):
        make_batches(stream, streamed, accelerator, collator, args, {"step": 3, "micro_batches": 6})
    with pytest.raises(ValueError, match="streamed its data: resume it with --streaming"):
        make_batches(open_dataset(str(corpus / "mapped")), mapped, accelerator, collator, args, two)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_on_two_machines(argv, port):
    """`accelerate launch` as two machines of one process each (machine ranks 0 and 1, rendezvous on loopback):
    the multi-node path of the README, on one host."""
    processes = [subprocess.Popen(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "2", "--machine_rank",
         str(rank), "--main_process_ip", "127.0.0.1", "--main_process_port", str(port), "--num_processes", "2",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lst_speech.training.pretrain", *argv],
        env={**ENV, "ACCELERATE_USE_CPU": "true"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for rank in (0, 1)]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]


def test_two_machines_stream_their_shares_and_resume_from_a_shared_folder(workspace, corpus, tmp_path):  # noqa: F811
    run = tmp_path / "shared-disk" / "run"
    argv = streamed_arguments(workspace, corpus, run, "--per_device_batch_size", "2", "--save_steps", "3")
    launch_on_two_machines([*argv, "--max_steps", "3"], free_port())  # the last --max_steps counts
    first = json.loads((run / "checkpoint-3" / "trainer_state.json").read_text())["streams"]
    assert [stream["micro_batches"] for stream in first] == [6, 6]
    launch_on_two_machines([*argv, "--max_steps", "5", "--resume_from_checkpoint", "latest"], free_port())
    assert [row["step"] for row in read_log(run)] == [1, 2, 3, 4, 5]
    ranks = [json.loads((run / "ranks" / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
    assert [rank["micro_batches"] for rank in ranks] == [10, 10] and all(r["num_processes"] == 2 for r in ranks)
