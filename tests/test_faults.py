"""Faults: a command killed with SIGKILL part-way (no exception, no clean-up, as the OOM killer or a pre-empted
node would) and run again gives what one uninterrupted run gives. Each case starts the real command in a child
process, waits for a sign of progress on disk (a finished shard or checkpoint, a logged step), kills it, and
reruns the same command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from safetensors.torch import load_file

from lst_speech.training.checkpoints import read_log as read_log_file
from lst_speech.training.cli.main import main

from test_finetune_slue import stand_in_rows
from test_pretrain import read_log, workspace  # noqa: F401  (fixture)
from test_streaming_data import paired_rows, write_parts
from test_streaming_training import corpus, streamed_arguments  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def kill_when(command: list[str], ready, timeout: float = 240.0) -> None:
    """Runs `command` in a child process and SIGKILLs it as soon as `ready()` holds; fails if the child ends first
    (the case would then test nothing)."""
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the command ended (status {process.returncode}) before it could be killed:\n"
                        f"{process.stderr.read()[-3000:]}")
        assert time.time() < deadline, "no progress to kill at"
        time.sleep(0.002)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL


def lst(*argv: str) -> list[str]:
    return [sys.executable, "-m", "lst_speech.training.cli.main", *argv]


def run(command: list[str]) -> None:
    """Runs `command` to its end in a child process with the killed runs' environment (one thread), so that the
    reference, the killed run and its resume sum their floats in the same order."""
    finished = subprocess.run(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert finished.returncode == 0, finished.stderr[-3000:]


def parquet_rows(folder: Path, pattern: str) -> dict[str, list[dict]]:
    import pyarrow.parquet as pq

    return {path.name: pq.read_table(path).to_pylist() for path in sorted(folder.glob(pattern))}


def no_leftovers(folder: Path) -> bool:
    return not list(folder.parent.glob(".*.partial")) and not list(folder.glob(".*.partial"))


def test_sharded_extraction_killed_after_its_first_shard_resumes_to_the_same_shards(tmp_path):
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    rng = np.random.default_rng(0)
    waveforms = [(rng.normal(size=16000 * 2) * 0.1).astype(np.float32) for _ in range(60)]
    (tmp_path / "audio").mkdir()
    for index, waveform in enumerate(waveforms):
        soundfile.write(tmp_path / "audio" / f"utt{index:02d}.wav", waveform, 16000)
    MfccUnitExtractor(num_units=8).fit(waveforms[:4], 16000).save_pretrained(tmp_path / "extractor")
    command = ["units", "extract", "--extractor", str(tmp_path / "extractor"), "--audio", str(tmp_path / "audio"),
               "--shard_size", "2", "--deduplicate"]
    main([*command, "--output", str(tmp_path / "whole")])
    killed = tmp_path / "killed"
    kill_when(lst(*command, "--output", str(killed)), lambda: any(killed.glob("units-*.parquet")))
    assert not (killed / "index.json").exists(), "the extraction must be killed mid-way"
    main([*command, "--output", str(killed)])
    whole, resumed = parquet_rows(tmp_path / "whole", "units-*.parquet"), parquet_rows(killed, "units-*.parquet")
    assert len(whole) == 30 and resumed == whole
    index = [json.loads((folder / "index.json").read_text()) for folder in (tmp_path / "whole", killed)]
    assert index[1]["shards"] == index[0]["shards"] and index[1]["rows"] == 60 and no_leftovers(killed)


def test_streaming_data_killed_mid_write_is_rebuilt_to_the_same_rows(tokenizer, sample_verses, tmp_path):
    shards = tmp_path / "corpus"
    write_parts(list(paired_rows(sample_verses[:200])), shards, 2)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "text.txt").write_text("\n".join(sample_verses[100:1000]))
    command = ["data", "--recipe", "lst", "--tokenizer", str(tmp_path / "tokenizer"), "--paired", str(shards),
               "--text", str(tmp_path / "text.txt"), "--sequence_length", "64", "--streaming",
               "--rows_per_shard", "1"]
    main([*command, "--output", str(tmp_path / "whole")])
    killed = tmp_path / "killed"
    # Shards are written inside a temporary folder that is renamed into place when whole: kill while it fills.
    kill_when(lst(*command, "--output", str(killed)), lambda: any(tmp_path.glob(".killed.*/killed/data-00000.parquet")))
    assert not killed.exists() and list(tmp_path.glob(".killed.*.partial"))
    main([*command, "--output", str(killed)])
    whole, rebuilt = parquet_rows(tmp_path / "whole", "data-*.parquet"), parquet_rows(killed, "data-*.parquet")
    assert len(whole) > 200 and rebuilt == whole
    assert (json.loads((killed / "index.json").read_text()) == json.loads((tmp_path / "whole" / "index.json")
                                                                          .read_text()))
    assert no_leftovers(killed)  # the killed writer's temporary is removed by the next writer


def same_logs(resumed: list[dict], expected: list[dict]) -> None:
    assert [row["step"] for row in resumed] == [row["step"] for row in expected]
    for before, after in zip(expected, resumed):
        for key, value in before.items():
            if isinstance(value, float) and key in ("loss", "mel", "duration", "discriminator", "adversarial",
                                                    "feature_matching", "learning_rate", "loss_text",
                                                    "loss_speech"):
                assert after[key] == pytest.approx(value, abs=1e-5, nan_ok=True), (before["step"], key)


def same_weights(resumed: Path, expected: Path) -> None:
    first, second = load_file(expected), load_file(resumed)
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(second[name], first[name], atol=1e-5, rtol=1e-5, msg=name)


def test_vocoder_training_killed_after_a_checkpoint_resumes_to_the_same_losses_and_weights(tmp_path):
    command = ["vocoder", "train", "--num_utterances", "4", "--held_out_utterances", "1", "--num_units", "12",
               "--preset", "tiny", "--deduplicated", "true", "--segment_frames", "12", "--batch_size", "2",
               "--max_steps", "12", "--adversarial_from_step", "6", "--logging_steps", "2", "--save_steps", "4"]
    run(lst(*command, "--output_dir", str(tmp_path / "whole")))
    killed = tmp_path / "killed"
    kill_when(lst(*command, "--output_dir", str(killed)), lambda: (killed / "checkpoint-4").is_dir())
    assert not (killed / "vocoder").exists() and not (killed / "checkpoint-12").exists()
    run(lst(*command, "--output_dir", str(killed)))  # --resume_from_checkpoint latest is the default
    same_logs(read_log_file(killed / "log.jsonl"), read_log_file(tmp_path / "whole" / "log.jsonl"))
    same_weights(killed / "vocoder" / "model.safetensors", tmp_path / "whole" / "vocoder" / "model.safetensors")


def test_fine_tuning_killed_mid_way_resumes_to_the_same_losses_best_step_and_adapter(tokenizer, tmp_path):
    from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM

    torch.manual_seed(0)
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    for split, count, seed in (("train", 24, 0), ("validation", 6, 1)):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stand_in_rows(count, seed)))
    command = ["finetune", "--model_name_or_path", str(tmp_path / "base"), "--train_data",
               str(tmp_path / "train.jsonl"), "--validation_data", str(tmp_path / "validation.jsonl"),
               "--max_steps", "8", "--eval_steps", "4", "--per_device_batch_size", "4", "--learning_rate", "3e-3",
               "--warmup_steps", "2", "--lora_dropout", "0.0", "--resume_from_checkpoint", "latest"]
    run(lst(*command, "--output_dir", str(tmp_path / "whole")))
    killed = tmp_path / "killed"
    kill_when(lst(*command, "--output_dir", str(killed)), lambda: (killed / "checkpoint-4").is_dir())
    assert not (killed / "results.json").exists(), "the fine-tuning must be killed mid-way"
    run(lst(*command, "--output_dir", str(killed)))
    same_logs(read_log_file(killed / "log.jsonl"), read_log_file(tmp_path / "whole" / "log.jsonl"))
    results = [json.loads((folder / "results.json").read_text()) for folder in (tmp_path / "whole", killed)]
    for key in ("step", "macro_f1", "f1_per_label"):
        assert results[1]["best"][key] == pytest.approx(results[0]["best"][key]), key
    assert [row["macro_f1"] for row in results[1]["log"]] == pytest.approx([row["macro_f1"] for row in results[0]["log"]])
    same_weights(killed / "best" / "adapter_model.safetensors", tmp_path / "whole" / "best" / "adapter_model.safetensors")


def test_streamed_pretraining_killed_and_resumed_twice_gives_the_losses_of_one_run(workspace, corpus, tmp_path):  # noqa: F811
    window = ["--shuffle_buffer_size", "16", "--save_steps", "3", "--max_steps", "9"]
    reference = tmp_path / "reference"
    run([sys.executable, "-m", "lst_speech.training.pretrain", *streamed_arguments(workspace, corpus, reference,
                                                                                   *window)])
    killed = tmp_path / "killed"
    argv = streamed_arguments(workspace, corpus, killed, *window, "--resume_from_checkpoint", "latest")
    pretrain = [sys.executable, "-m", "lst_speech.training.pretrain", *argv]
    for steps in (4, 8):  # killed after checkpoint-3, resumed from it, killed after checkpoint-6 (a resumed stream's)
        kill_when(pretrain, lambda steps=steps: (killed / "log.jsonl").exists() and len(read_log(killed)) >= steps)
        assert not (killed / "final").exists()
    assert (killed / "checkpoint-6").is_dir()
    run(pretrain)
    same_logs(read_log(killed), read_log(reference))
    assert [row["step"] for row in read_log(killed)] == list(range(1, 10))
    same_weights(killed / "final" / "model.safetensors", reference / "final" / "model.safetensors")
