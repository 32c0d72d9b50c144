"""Pretraining with real processes: exact resume after SIGKILL, and two processes (gloo) equal to one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import datasets
import numpy as np
import pytest

from lst_speech.training.checkpoints import latest_checkpoint

from conftest import save_packed_lst_data

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tokenizer, sample_verses):
    """A saved tokenizer and packed LST-recipe data (interleaved stand-in speech + text)."""
    root = tmp_path_factory.mktemp("pretrain")
    tokenizer.save_pretrained(root / "tokenizer")
    save_packed_lst_data(tokenizer, sample_verses, root / "data", paired=300, text=slice(1000, 1600))
    return root


def arguments(workspace, output_dir, *extra):
    return ["--tokenizer", str(workspace / "tokenizer"), "--train_data", str(workspace / "data"),
            "--output_dir", str(output_dir), "--preset", "tiny", "--max_steps", "40", "--warmup_steps", "4",
            "--logging_steps", "1", "--report_to", "none", "--seed", "3", *extra]


def run_pretraining(*argv):
    """`python -m lst_speech.training.pretrain ARGV`; a failure shows the child's own error, not just its exit status."""
    result = subprocess.run([sys.executable, "-m", "lst_speech.training.pretrain", *argv], env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"lst_speech.training.pretrain exited with {result.returncode}; its stderr ends with:\n{result.stderr[-4000:]}")


def read_log(output_dir):
    return [json.loads(line) for line in (output_dir / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_resume_after_sigkill_repeats_every_loss(workspace, tmp_path):
    extra = ["--per_device_batch_size", "4", "--gradient_accumulation_steps", "2", "--save_steps", "5",
             "--patching_mode", "curriculum", "--curriculum_aligned_until", "10", "--curriculum_static_from", "30"]
    reference = tmp_path / "reference"
    run_pretraining(*arguments(workspace, reference, *extra))
    expected = {row["step"]: row for row in read_log(reference)}
    assert sorted(expected) == list(range(1, 41))

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen([sys.executable, "-m", "lst_speech.training.pretrain", *arguments(workspace, interrupted, *extra)],
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        log = interrupted / "log.jsonl"
        if log.exists() and len(log.read_text().splitlines()) >= 13:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    steps_done = len(read_log(interrupted))
    assert 13 <= steps_done < 40, "the run must be killed mid-way"
    # A checkpoint that was being written when the process died is never picked up.
    (interrupted / ".checkpoint-35.partial").mkdir(exist_ok=True)
    (interrupted / "checkpoint-99").mkdir()  # a directory without trainer_state.json is no checkpoint
    resumed_from = latest_checkpoint(interrupted)
    assert resumed_from is not None and resumed_from.name == f"checkpoint-{(steps_done // 5) * 5}"

    run_pretraining(*arguments(workspace, interrupted, *extra, "--resume_from_checkpoint", "latest"))
    resumed = read_log(interrupted)
    assert [row["step"] for row in resumed] == list(range(1, 41))
    for row in resumed:
        for key in ("loss", "loss_text", "loss_speech", "learning_rate"):
            assert row[key] == pytest.approx(expected[row["step"]][key], abs=1e-5, nan_ok=True), (row["step"], key)
    assert (interrupted / "final" / "model.safetensors").exists() and (interrupted / "loss.png").exists()
    # The final checkpoint carries its code (it loads where lst is not installed) and the run records its setup.
    assert (interrupted / "final" / "modeling_lst.py").is_file()
    assert json.loads((interrupted / "final" / "tokenizer_config.json").read_text())["auto_map"]["AutoTokenizer"]
    assert json.loads((interrupted / "run.json").read_text())["preset"] == "tiny"
    assert all("flops" in row and row["tokens"] > 0 for row in resumed)


@pytest.mark.slow
def test_the_final_checkpoint_loads_without_the_package(workspace, tmp_path, tokenizer):
    from test_release import load_without_the_package, reference

    from lst_speech.modeling_lst import LSTForCausalLM

    run_pretraining(*arguments(workspace, tmp_path / "run", "--max_steps", "2", "--per_device_batch_size", "2"))
    ids = tokenizer(segments=["In the beginning", np.arange(8) % 50])["input_ids"]
    logits, generated = reference(LSTForCausalLM.from_pretrained(tmp_path / "run" / "final").eval(), ids)
    loaded = load_without_the_package(tmp_path / "run" / "final", ids)
    assert (loaded["config"], loaded["tokenizer"], loaded["base"]) == ("LSTConfig", "SpeechUnitTextTokenizer",
                                                                       "LSTModel")
    np.testing.assert_allclose(loaded["logits"], logits, atol=1e-5)
    assert loaded["generated"] == generated


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(workspace, tmp_path):
    one = tmp_path / "one"
    run_pretraining(*arguments(workspace, one, "--per_device_batch_size", "4", "--max_steps", "8"))
    two = tmp_path / "two"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lst_speech.training.pretrain"]
    result = subprocess.run([*launch, *arguments(workspace, two, "--per_device_batch_size", "2", "--max_steps", "8")],
                            env={**ENV, "ACCELERATE_USE_CPU": "true"}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((two / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["num_processes"] for r in ranks] == [2, 2] and all(r["micro_batches"] == 8 for r in ranks)
    for single, double in zip(read_log(one), read_log(two), strict=True):
        assert double["loss"] == pytest.approx(single["loss"], abs=1e-4)
        assert double["tokens_per_second"] > 0


def test_arguments_from_yaml_and_their_checks(tmp_path, monkeypatch):
    from lst_speech.training.pretrain import parse_arguments

    monkeypatch.chdir(tmp_path)  # the file's relative paths: a saved dataset "data" and "d"
    for name in ("data", "d"):
        datasets.Dataset.from_dict({"input_ids": [[1]], "modality_mask": [[0]]}).save_to_disk(tmp_path / name)
    (tmp_path / "run.yaml").write_text(
        "tokenizer: tok\ntrain_data: data\noutput_dir: out\nmodel_type: llama\nmax_steps: 7\n"
        "patching_mode: curriculum\ncurriculum_aligned_until: 2\ncurriculum_static_from: 5\n"
    )
    model, data, training = parse_arguments([str(tmp_path / "run.yaml")])
    assert (model.model_type, data.train_data, training.max_steps) == ("llama", "data", 7)
    assert (training.curriculum_aligned_until, training.curriculum_static_from) == (2, 5)
    # flags after the file override its entries
    _, _, overridden = parse_arguments([str(tmp_path / "run.yaml"), "--max_steps", "9", "--curriculum_static_from", "6"])
    assert (overridden.max_steps, overridden.curriculum_static_from, overridden.curriculum_aligned_until) == (9, 6, 2)
    with pytest.raises(ValueError, match="curriculum_static_from \\(t2, 2\\) must not come before"):
        parse_arguments(["--tokenizer", "t", "--train_data", "d", "--output_dir", "o",
                         "--curriculum_aligned_until", "5", "--curriculum_static_from", "2"])
    with pytest.raises(ValueError, match="model_type must be one of"):
        parse_arguments(["--tokenizer", "t", "--train_data", "d", "--output_dir", "o", "--model_type", "gpt"])
