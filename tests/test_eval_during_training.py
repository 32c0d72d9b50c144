"""Evaluation during pretraining (`--eval_steps`): the held-out loss per modality, a cloze accuracy and CRA in the
four directions logged at steps N, 2N, ... to log.jsonl and TensorBoard, `best/` holding the best step's
weights, and a run killed mid-way and resumed logging the same evaluations and keeping the same best."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time

import datasets
import numpy as np
import pytest
from safetensors.torch import load_file

from lst_speech.training.arguments import DataArguments, PretrainingArguments
from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor
from lst_speech.training.step_evaluation import StepEvaluation, check_evaluation

from conftest import NUM_UNITS, save_packed_lst_data

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
EVAL_STEPS, MAX_STEPS = 4, 12
LOSSES = ("eval_loss", "eval_loss_text", "eval_loss_speech")
ACCURACIES = tuple(f"eval_mc_{direction}_accuracy_{normalization}" for direction in ("s2s", "t2t", "s2t", "t2s")
                   for normalization in ("sum", "per_token", "per_unit")) + tuple(
    f"eval_cra_{direction}" for direction in ("u2u", "u2t", "t2u", "t2t"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tokenizer, sample_verses):
    """A tokenizer, packed training and held-out data, a six-story StoryCloze CSV made of verses, an MFCC unit
    extractor with the tokenizer's number of units (for the spoken directions), and a spoken corpus of six
    utterances (stand-in units in word spans) for CRA."""
    root = tmp_path_factory.mktemp("eval_during_training")
    tokenizer.save_pretrained(root / "tokenizer")
    save_packed_lst_data(tokenizer, sample_verses, root / "data", paired=200, text=slice(1000, 1400))
    save_packed_lst_data(tokenizer, sample_verses[2000:], root / "held_out", paired=20, text=slice(100, 140))
    columns = [f"InputSentence{i}" for i in range(1, 5)] + ["RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2",
                                                           "AnswerRightEnding"]
    with open(root / "cloze.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for story in range(6):
            verses = sample_verses[2500 + 6 * story: 2506 + 6 * story]
            writer.writerow([*verses, str(1 + story % 2)])
    noise = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    MfccUnitExtractor(NUM_UNITS).fit([noise], 16000).save_pretrained(root / "extractor")
    rng, utterances = np.random.default_rng(1), []
    for verse in sample_verses[2600:2606]:
        words = verse.split()[:8]
        ends = np.cumsum(rng.integers(2, 5, len(words)))
        utterances.append({"text": " ".join(words), "words": words,
                           "units": rng.integers(0, NUM_UNITS, ends[-1]).tolist(),
                           "word_spans": np.stack([np.r_[0, ends[:-1]], ends], 1).tolist()})
    datasets.Dataset.from_list(utterances).save_to_disk(str(root / "spoken_corpus"))
    return root


def arguments(workspace, output_dir, *extra):
    return ["--tokenizer", str(workspace / "tokenizer"), "--train_data", str(workspace / "data"),
            "--eval_data", str(workspace / "held_out"), "--eval_multiple_choice", str(workspace / "cloze.csv"),
            "--eval_multiple_choice_format", "topic-storycloze", "--eval_unit_extractor", str(workspace / "extractor"),
            "--eval_multiple_choice_directions", "S->S", "T->T", "S->T", "T->S",
            "--eval_context_retrieval", str(workspace / "spoken_corpus"),
            "--output_dir", str(output_dir), "--preset", "tiny", "--max_steps", str(MAX_STEPS), "--warmup_steps", "2",
            "--per_device_batch_size", "4", "--logging_steps", "1", "--eval_steps", str(EVAL_STEPS),
            "--save_steps", str(EVAL_STEPS), "--save_total_limit", "10", "--seed", "3", *extra]


def command(workspace, output_dir, *extra):
    return [sys.executable, "-m", "lst_speech.training.pretrain", *arguments(workspace, output_dir, *extra)]


def run_pretraining(*argv):
    result = subprocess.run(list(argv), env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"pretraining exited with {result.returncode}; its stderr ends with:\n{result.stderr[-4000:]}")


def eval_rows(output_dir):
    rows = [json.loads(line) for line in (output_dir / "log.jsonl").read_text().splitlines()]
    return [row for row in rows if "eval_loss" in row]


def best_of(rows, key, greater):
    """The first evaluation with the best value: a later equal one does not replace it."""
    best = None
    for row in rows:
        if best is None or (row[key] > best[key] if greater else row[key] < best[key]):
            best = row
    return best


@pytest.fixture(scope="module")
def reference(workspace, tmp_path_factory):
    """An uninterrupted run choosing its best model by the S->S cloze accuracy, with TensorBoard."""
    output_dir = tmp_path_factory.mktemp("reference") / "run"
    run_pretraining(*command(workspace, output_dir, "--metric_for_best_model", "mc_s2s_accuracy_sum",
                             "--report_to", "tensorboard"))
    return output_dir


@pytest.mark.slow
def test_evaluations_are_logged_at_every_eval_step(reference):
    rows = [json.loads(line) for line in (reference / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == list(range(1, MAX_STEPS + 1))
    evaluations = eval_rows(reference)
    assert [row["step"] for row in evaluations] == list(range(EVAL_STEPS, MAX_STEPS + 1, EVAL_STEPS))
    for row in evaluations:
        assert set(row) == {"step", *LOSSES, *ACCURACIES}
        assert all(math.isfinite(row[key]) and row[key] > 0 for key in LOSSES)
        assert all(0 <= row[key] <= 1 for key in ACCURACIES)
    assert evaluations[0]["eval_loss"] > evaluations[-1]["eval_loss"], "the held-out loss falls as it trains"
    # The loss figure is drawn from the log with its evaluation rows in it.
    assert (reference / "loss.png").stat().st_size > 0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next(reference.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    for key in (*LOSSES, *ACCURACIES):
        logged = events.Scalars(key)
        assert [event.step for event in logged] == [row["step"] for row in evaluations]
        assert [event.value for event in logged] == pytest.approx([row[key] for row in evaluations], abs=1e-6)


@pytest.mark.slow
def test_best_holds_the_weights_of_the_best_evaluation(reference):
    best = best_of(eval_rows(reference), "eval_mc_s2s_accuracy_sum", greater=True)
    recorded = json.loads((reference / "best" / "best_metric.json").read_text())
    assert (recorded["step"], recorded["metric_for_best_model"]) == (best["step"], "eval_mc_s2s_accuracy_sum")
    assert recorded["best_metric"] == best["eval_mc_s2s_accuracy_sum"]
    state = json.loads((reference / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())
    assert (state["best_step"], state["best_metric"]) == (best["step"], best["eval_mc_s2s_accuracy_sum"])
    # The checkpoint of the best step holds the same weights as best/.
    saved = load_file(reference / "best" / "model.safetensors")
    at_best = load_file(reference / f"checkpoint-{best['step']}" / "model.safetensors")
    shared = sorted(set(saved) & set(at_best))
    assert len(shared) > 10
    for name in shared:
        assert saved[name].equal(at_best[name]), name
    assert (reference / "best" / "modeling_lst.py").is_file(), "best/ loads without the package, as final/ does"


@pytest.mark.slow
def test_a_run_killed_and_resumed_logs_the_same_evaluations_and_best(workspace, reference, tmp_path):
    killed = tmp_path / "killed"
    extra = ("--metric_for_best_model", "mc_s2s_accuracy_sum", "--report_to", "none")
    process = subprocess.Popen(command(workspace, killed, *extra), env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (killed / f"checkpoint-{EVAL_STEPS}" / "trainer_state.json").exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "final").exists(), "the run must be killed mid-way"
    assert eval_rows(killed), "the first evaluation was logged before the kill"

    run_pretraining(*command(workspace, killed, *extra, "--resume_from_checkpoint", "latest"))
    expected, resumed = eval_rows(reference), eval_rows(killed)
    assert [row["step"] for row in resumed] == [row["step"] for row in expected]
    for row, wanted in zip(resumed, expected):
        for key in (*LOSSES, *ACCURACIES):
            assert row[key] == pytest.approx(wanted[key], abs=1e-5), (row["step"], key)
    assert (json.loads((killed / "best" / "best_metric.json").read_text())["step"]
            == json.loads((reference / "best" / "best_metric.json").read_text())["step"])


def test_the_flags_are_checked_before_training(tmp_path):
    data = tmp_path / "data"
    datasets.Dataset.from_dict({"input_ids": [[1]], "modality_mask": [[0]]}).save_to_disk(data)
    with pytest.raises(ValueError, match="needs --eval_steps"):
        PretrainingArguments(output_dir="o", metric_for_best_model="eval_loss")
    with pytest.raises(ValueError, match="eval_steps must be at least 0"):
        PretrainingArguments(output_dir="o", eval_steps=-1)
    with pytest.raises(ValueError, match="--eval_multiple_choice_format must be one of"):
        DataArguments(train_data=str(data), eval_multiple_choice_format="cloze")
    with pytest.raises(ValueError, match="--eval_multiple_choice .* does not exist"):
        DataArguments(train_data=str(data), eval_multiple_choice=str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="--eval_multiple_choice_directions takes some of"):
        DataArguments(train_data=str(data), eval_multiple_choice_directions=["S->X"])
    with pytest.raises(ValueError, match="eval_context_retrieval_num must be at least 2"):
        DataArguments(train_data=str(data), eval_context_retrieval=str(data), eval_context_retrieval_num=1)
    with pytest.raises(ValueError, match="Spoken --eval_multiple_choice_directions need --eval_unit_extractor"):
        DataArguments(train_data=str(data), eval_multiple_choice=str(data), eval_multiple_choice_directions=["S->T"])
    # as in transformers' Trainer the eval_ prefix may be left out; any loss is better when lower
    args = PretrainingArguments(output_dir="o", eval_steps=5, metric_for_best_model="loss_speech")
    assert (args.metric_for_best_model, args.greater_is_better) == ("eval_loss_speech", False)
    with pytest.raises(ValueError, match="needs --eval_data .* or --eval_multiple_choice"):
        check_evaluation(DataArguments(train_data=str(data)), PretrainingArguments(output_dir="o", eval_steps=5))
    with_gain = DataArguments(train_data=str(data), eval_multiple_choice=str(data), eval_multiple_choice_context_gain=True)
    assert with_gain.eval_metrics() == tuple(f"eval_mc_t2t_accuracy_{name}"
                                             for name in ("sum", "per_token", "per_unit", "context_gain"))
    with pytest.raises(ValueError, match="is not logged by this run's evaluation; it logs eval_loss, "):
        check_evaluation(DataArguments(train_data=str(data), eval_data=str(data)),
                         PretrainingArguments(output_dir="o", eval_steps=5,
                                              metric_for_best_model="mc_t2t_accuracy_sum"))


def test_only_a_strictly_better_value_is_the_new_best(tmp_path):
    data = tmp_path / "data"
    datasets.Dataset.from_dict({"input_ids": [[1]], "modality_mask": [[0]]}).save_to_disk(data)
    args = PretrainingArguments(output_dir="o", eval_steps=2, metric_for_best_model="eval_loss")
    evaluation = StepEvaluation(DataArguments(train_data=str(data), eval_data=str(data)), args, None, None,
                                {"best_step": 4, "best_metric": 3.0})  # resumed: compared with the saved best
    assert not evaluation.improves(6, {"eval_loss": 3.0})
    assert not evaluation.improves(8, {"eval_loss": float("nan")})
    assert evaluation.improves(10, {"eval_loss": 2.5})
    assert evaluation.state() == {"best_step": 10, "best_metric": 2.5, "metric_for_best_model": "eval_loss"}


def test_finetuning_picks_its_best_model_by_the_named_metric():
    from lst_speech.training.finetuning.loop import best_model_metric, improves
    from lst_speech.training.finetuning.speech_text_tasks import AsrTask

    class Args:
        metric_for_best_model = greater_is_better = None

    task, args = AsrTask(16), Args()
    assert best_model_metric(args, task) == ("wer", False)  # the task's own score and direction
    args.metric_for_best_model = "cer"
    assert best_model_metric(args, task) == ("cer", False)
    args.metric_for_best_model, args.greater_is_better = "unfinished_rate", False
    assert best_model_metric(args, task) == ("unfinished_rate", False)
    assert improves({"cer": 0.4}, None, "cer", False)
    assert not improves({"cer": 0.4}, {"cer": 0.4}, "cer", False) and improves({"cer": 0.3}, {"cer": 0.4}, "cer", False)
    with pytest.raises(ValueError, match="bleu is not a validation score of this task; its scores are cer, wer"):
        improves({"wer": 0.5, "cer": 0.4, "examples": []}, None, "bleu", True)
