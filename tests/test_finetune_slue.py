"""SLUE-SA fine-tuning with LoRA (lst_speech.training.finetuning.finetune): what trains, what is saved, what reloads, what it learns.

The data is a separable stand-in in the voxceleb schema: each sentiment has its own words (text) and its own
range of unit ids (speech), so a tiny model from scratch can learn it in a few dozen steps.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import evaluate
import numpy as np
import peft
import pytest
import torch
from transformers import AutoTokenizer

from lst_speech.evaluation.slue.data import SENTIMENT_LABELS
from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM, LSTForSequenceClassification
from lst_speech.training.checkpoints import read_log
from lst_speech.training.finetuning.adapters import load_finetuned
from lst_speech.training.finetuning.loop import FinetuningArguments, build_model, finetune
from lst_speech.training.finetuning.lora_presets import LORA_PRESETS, lora_config
from lst_speech.training.finetuning.slue_sentiment import SLUE_SA_METRIC, SentimentTask

SENTIMENT = SentimentTask()

WORDS = {"Negative": ["evil", "death", "wrath", "sin"], "Neutral": ["the", "and", "of", "unto"],
         "Positive": ["love", "joy", "peace", "light"]}


def stand_in_rows(count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        label = SENTIMENT_LABELS[index % 3]
        words = list(rng.choice(WORDS[label], size=4)) + list(rng.choice(WORDS["Neutral"], size=2))
        rng.shuffle(words)
        offset = 16 * SENTIMENT_LABELS.index(label)
        rows.append({"id": f"{seed}-{index}", "normalized_text": " ".join(words), "sentiment": label,
                     "units": rng.integers(offset, offset + 16, size=int(rng.integers(8, 14))).tolist()})
    return rows


@pytest.fixture(scope="module")
def workspace(tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("slue")
    torch.manual_seed(0)
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    for split, count, seed in (("train", 96, 0), ("validation", 48, 1)):
        (root / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in stand_in_rows(count, seed)))
    return root


def arguments(workspace, output_dir, **overrides) -> FinetuningArguments:
    values = dict(model_name_or_path=str(workspace / "base"), train_data=str(workspace / "train.jsonl"),
                  validation_data=str(workspace / "validation.jsonl"), output_dir=str(output_dir), max_steps=40,
                  eval_steps=20, per_device_batch_size=16, learning_rate=3e-3, warmup_steps=4, lora_dropout=0.0)
    return FinetuningArguments(**{**values, **overrides})


@pytest.mark.slow
@pytest.mark.parametrize("modality", ["text", "speech"])
def test_lora_fine_tuning_learns_a_separable_task_in_modality(workspace, tmp_path, modality):
    results = finetune(arguments(workspace, tmp_path / modality, train_modality=modality, eval_modality=modality,
                                 merge=True))
    best = results["best"]
    assert best["macro_f1_ci95"][0] > 0.5, best  # chance is 1/3
    assert 0 < results["trainable_parameters"] < results["parameters"] / 2
    assert results["train_examples_per_second"] > 0

    # The saved adapter, with its head, reproduces the best step's validation score (a lost head would score
    # near chance), and the merged checkpoint gives the adapter's logits.
    args = arguments(workspace, tmp_path / modality, eval_modality=modality)
    reloaded = peft.PeftModel.from_pretrained(SENTIMENT.load_model(args.model_name_or_path)[0], tmp_path / modality / "best").eval()
    merged = LSTForSequenceClassification.from_pretrained(tmp_path / modality / "best-merged").eval()
    batch, labels = reloaded_batch(workspace, args, modality, rows=None, with_labels=True)
    with torch.no_grad():
        adapter_logits = reloaded(**batch).logits
        torch.testing.assert_close(merged(**batch).logits, adapter_logits, atol=1e-4, rtol=1e-4)
    predicted = [SENTIMENT_LABELS[i] for i in adapter_logits.argmax(-1).tolist()]
    gold = [SENTIMENT_LABELS[i] for i in labels.tolist()]
    rescored = evaluate.load(SLUE_SA_METRIC).compute(predictions=predicted, references=gold)
    assert rescored["macro_f1"] == pytest.approx(best["macro_f1"], abs=1e-9)


def reloaded_batch(workspace, args, modality, rows=8, with_labels=False):
    """The first `rows` validation rows (all with None) as one padded batch, and their label indices."""
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    examples = SENTIMENT.encode(SENTIMENT.rows(args.validation_data)[:rows], tokenizer, modality, 2048)
    batch = SENTIMENT.collate(tokenizer)(examples)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    return (inputs, batch["labels"]) if with_labels else inputs


def test_lora_trains_only_adapters_and_head_and_leaves_the_base_bit_identical(workspace, tmp_path):
    args = arguments(workspace, tmp_path)
    model, model_type, _ = build_model(args, SENTIMENT)
    assert model_type == "lst"
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or ".score." in name for name in trainable)
    assert any(".global_transformer." in n for n in trainable) and any(".decoder." in n for n in trainable)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    batch = reloaded_batch(workspace, args, "text")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        model(**batch, labels=torch.arange(8) % 3).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[name], value) for name, value in before.items())


def test_presets_target_the_named_parts(tokenizer):
    config = LSTConfig.from_tokenizer(tokenizer, preset="tiny", num_labels=3)
    counts = {}
    for preset in LORA_PRESETS["lst"]:
        model = peft.get_peft_model(LSTForSequenceClassification(config), lora_config("lst", preset, "classification"))
        adapted = {name.split(".lora_A")[0] for name, _ in model.named_parameters() if ".lora_A." in name}
        counts[preset] = len(adapted)
        if preset == "global":
            assert all(".global_transformer." in name for name in adapted)
    # global: 2 layers x 7 projections; + encoder (7) and decoder (7 + 4 cross); all: + pooling (4) and 2 projections
    assert counts == {"global": 14, "global+local": 32, "all": 38}
    with pytest.raises(ValueError, match="does not exist for llama"):
        lora_config("llama", "global", "classification")


def test_gradient_checkpointing_with_lora_reaches_the_adapters(workspace, tmp_path):
    model, _, _ = build_model(arguments(workspace, tmp_path), SENTIMENT)
    model.activation_checkpointing_enable()
    model.enable_input_require_grads()
    model.train()
    batch = reloaded_batch(workspace, arguments(workspace, tmp_path), "text")
    model(**batch, labels=torch.arange(8) % 3).loss.backward()
    grads = [p.grad for name, p in model.named_parameters() if "lora_B" in name]
    assert grads and all(grad is not None and grad.abs().sum() > 0 for grad in grads)


def test_bad_input_is_named(workspace, tmp_path, tokenizer):
    rows = [{"id": "u1", "text": "joy", "label": "Positive", "units": None}]
    with pytest.raises(ValueError, match="has no units, but speech input was asked for"):
        SENTIMENT.encode(rows, tokenizer, "speech", 2048)
    with pytest.raises(ValueError, match="over --max_length 3"):
        SENTIMENT.encode(rows, tokenizer, "text", 3)
    with pytest.raises(ValueError, match="train_modality must be one of"):
        arguments(workspace, tmp_path, train_modality="audio")
    with pytest.raises(ValueError, match="LoRA preset 'everything' does not exist for lst"):
        build_model(arguments(workspace, tmp_path, lora_preset="everything"), SENTIMENT)


@pytest.mark.slow
def test_the_llama_baseline_fine_tunes_through_the_same_recipe(workspace, tokenizer, tmp_path):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    base = tmp_path / "llama"
    LlamaForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny").global_llama_config()).save_pretrained(base)
    tokenizer.save_pretrained(base)
    results = finetune(arguments(workspace, tmp_path / "run", model_name_or_path=str(base), lora_preset="all"))
    assert results["model_type"] == "llama" and results["best"]["macro_f1_ci95"][0] > 0.5, results["best"]


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def command_line(args: FinetuningArguments) -> list[str]:
    return [f"--{name}={value}" for name, value in vars(args).items() if value is not None and value is not False]


@pytest.mark.slow
def test_resume_after_sigkill_repeats_every_loss_and_the_best_step(workspace, tmp_path):
    reference = finetune(arguments(workspace, tmp_path / "reference", eval_steps=5))
    expected_log = read_log(tmp_path / "reference" / "log.jsonl")
    expected = {row["step"]: row for row in expected_log if "loss" in row}
    interrupted = tmp_path / "interrupted"
    args = arguments(workspace, interrupted, eval_steps=5)
    process = subprocess.Popen([sys.executable, "-m", "lst_speech.training.finetuning.finetune", *command_line(args)], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log, deadline = interrupted / "log.jsonl", time.time() + 120
    while time.time() < deadline and not (log.exists() and log.read_text().count('"loss"') >= 13):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    steps_done = sum("loss" in row for row in read_log(log))
    assert 13 <= steps_done < 40, "the run must be killed mid-way"
    assert eval_rows(read_log(log)), "evaluations were logged before the kill"
    resumed = finetune(replace(args, resume_from_checkpoint="latest"))
    rows = read_log(log)
    assert [row["step"] for row in rows if "loss" in row] == list(range(1, 41))
    for row in rows:
        if "loss" in row:
            assert row["loss"] == pytest.approx(expected[row["step"]]["loss"], abs=1e-5), row["step"]
    # The evaluation rows logged before the kill are kept up to the checkpoint, and those after are logged again:
    # one per eval step, with the uninterrupted run's scores.
    assert [row["step"] for row in eval_rows(rows)] == list(range(5, 41, 5))
    for row, wanted in zip(eval_rows(rows), eval_rows(expected_log), strict=True):
        assert row == pytest.approx(wanted, abs=1e-6), row["step"]
    assert resumed["best"]["step"] == reference["best"]["step"]
    with pytest.raises(ValueError, match="written by a run with other arguments \\(learning_rate\\)"):
        finetune(replace(args, resume_from_checkpoint="latest", learning_rate=1e-4))
    assert resumed["best"]["macro_f1"] == pytest.approx(reference["best"]["macro_f1"])


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(workspace, tmp_path):
    one = finetune(arguments(workspace, tmp_path / "one", max_steps=8, eval_steps=4))
    args = arguments(workspace, tmp_path / "two", max_steps=8, eval_steps=4, per_device_batch_size=8)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lst_speech.training.finetuning.finetune"]
    result = subprocess.run([*launch, *command_line(args)], env={**ENV, "ACCELERATE_USE_CPU": "true"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert two["num_processes"] == 2
    logs = [read_log(tmp_path / run / "log.jsonl") for run in ("one", "two")]
    for single, double in zip(*([row for row in log if "loss" in row] for log in logs), strict=True):
        assert double["loss"] == pytest.approx(single["loss"], abs=1e-4)
    assert [row["step"] for row in eval_rows(logs[1])] == [row["step"] for row in eval_rows(logs[0])] == [4, 8]
    assert [entry["macro_f1"] for entry in two["log"]] == pytest.approx([entry["macro_f1"] for entry in one["log"]])


def eval_rows(log: list[dict]) -> list[dict]:
    """The log's validation rows (keys eval_<score>), as pretraining's evaluations are logged."""
    return [row for row in log if any(key.startswith("eval_") for key in row)]


def test_each_validation_is_a_log_row_and_a_tensorboard_point_at_its_step(workspace, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    results = finetune(arguments(workspace, tmp_path / "run", max_steps=5, eval_steps=2,
                                 metric_for_best_model="eval_macro_recall"))
    rows = read_log(tmp_path / "run" / "log.jsonl")
    assert [row["step"] for row in rows if "loss" in row] == [1, 2, 3, 4, 5]
    evaluations = eval_rows(rows)
    assert [row["step"] for row in evaluations] == [2, 4, 5]  # every 2 steps, and the last
    assert all("loss" in rows[rows.index(row) - 1] for row in evaluations), "each follows its step's loss row"
    for row, entry in zip(evaluations, results["log"], strict=True):
        assert row == {"step": entry["step"], **{f"eval_{name}": entry[name] for name in (
            "macro_f1", "macro_recall", "num_scored", "num_excluded", "num_invalid_predictions")}}
    # The log key names the metric for best/ as well as the score's own name does.
    recalls = [entry["macro_recall"] for entry in results["log"]]
    assert results["best"]["step"] == results["log"][recalls.index(max(recalls))]["step"]

    events = EventAccumulator(str(tmp_path / "run" / "finetune"))
    events.Reload()
    assert [event.step for event in events.Scalars("loss")] == [1, 2, 3, 4, 5]
    for key in ("eval_macro_f1", "eval_macro_recall"):
        logged = events.Scalars(key)
        assert [event.step for event in logged] == [2, 4, 5]
        assert [event.value for event in logged] == pytest.approx([row[key] for row in evaluations], abs=1e-6)


def test_eval_steps_0_validates_at_the_last_step_only(workspace, tmp_path):
    results = finetune(arguments(workspace, tmp_path / "run", max_steps=4, eval_steps=0, report_to="none"))
    rows = read_log(tmp_path / "run" / "log.jsonl")
    assert [row["step"] for row in rows if "loss" in row] == [1, 2, 3, 4]
    assert [row["step"] for row in eval_rows(rows)] == [4] == [entry["step"] for entry in results["log"]]
    assert results["best"]["step"] == 4 and (tmp_path / "run" / "best").is_dir()
    assert not (tmp_path / "run" / "finetune").exists(), "--report_to none writes no TensorBoard files"


def test_added_tokens_are_trained_and_reload_onto_the_unresized_base(workspace, tmp_path, tokenizer):
    grown = copy.deepcopy(tokenizer)
    grown.add_tokens(["<joy>"], special_tokens=True)
    grown.save_pretrained(tmp_path / "grown")
    args = arguments(workspace, tmp_path / "run", tokenizer=str(tmp_path / "grown"), max_steps=4, eval_steps=4)
    new_id = grown.convert_tokens_to_ids("<joy>")
    ids = torch.tensor([[grown.bos_token_id, grown.text_marker_id, new_id, 300]])
    # The new token's embedding trains (LoRA alone leaves embeddings frozen); the pretrained rows do not.
    model, _, _ = build_model(args, SENTIMENT, len(grown))
    embed = model.get_input_embeddings()
    before = embed(torch.tensor([new_id, 300])).detach().clone()
    model(input_ids=ids, labels=torch.tensor([2])).loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()
    after = embed(torch.tensor([new_id, 300])).detach()
    assert not torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])

    results = finetune(args)
    assert results["best"]["step"] == 4
    logits = []
    for seed in (1, 2):  # resizing draws the new row at random: only the adapter's trained row makes them agree
        torch.manual_seed(seed)
        model, loaded_tokenizer = load_finetuned(SENTIMENT, tmp_path / "run" / "best")
        assert len(loaded_tokenizer) == len(grown) == model.get_base_model().config.vocab_size
        with torch.no_grad():
            logits.append(model.eval()(input_ids=ids).logits)
    torch.testing.assert_close(logits[0], logits[1])


def test_an_adapter_on_another_base_is_refused(workspace, tmp_path, tokenizer):
    finetune(arguments(workspace, tmp_path / "run", max_steps=2, eval_steps=2))
    torch.manual_seed(1)
    LSTForCausalLM(LSTConfig.from_tokenizer(tokenizer, preset="tiny")).save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="trained on another base model than .*other"):
        load_finetuned(SENTIMENT, tmp_path / "run" / "best", base_model=str(tmp_path / "other"))
    (tmp_path / "run" / "best" / "base_model.json").unlink()
    with pytest.raises(ValueError, match="without base_model.json"):
        load_finetuned(SENTIMENT, tmp_path / "run" / "best")
