"""The README's main job end to end on a tiny budget: every reported number comes from the run's files."""

from __future__ import annotations

import json

import pytest

from lst_speech.evaluation.uncertainty import format_accuracy, format_difference, proportion_interval
from lst_speech.training.experiments.main_job import main
from lst_speech.training.experiments.runs import split_bible, topic_cloze_items

pytestmark = pytest.mark.slow  # subprocesses, several processes or whole jobs: `-m "not slow"` skips them


def test_held_out_chapters_never_reach_training_and_cloze_pairs_are_consecutive():
    train, held_out = split_bible(held_out_every=10)
    assert abs(len(held_out) / (len(train) + len(held_out)) - 0.1) < 0.02
    assert not {(r["book"], r["chapter"]) for r in train} & {(r["book"], r["chapter"]) for r in held_out}
    items = topic_cloze_items(held_out, count=30, min_words=8, max_words=24, seed=0)
    assert len(items) == 30 and {item.label for item in items} == {0, 1}
    verses = {r["text"] for r in held_out}
    for item in items:
        assert f"{item.context} {item.endings[item.label]}" in verses  # prompt + right ending = a held-out verse
        assert f"{item.context} {item.endings[1 - item.label]}" not in verses


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_main_job_writes_a_report_from_its_own_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = tmp_path / "job"
    main(["--output_dir", str(output), "--preset", "tiny", "--max_steps", "6", "--spoken_utterances", "40",
          "--held_out_utterances", "10", "--cloze_items", "8", "--num_units", "20", "--vocab_size", "400",
          "--sequence_length", "48", "--batch_size", "4", "--eval_steps", "3", "--eval_cloze_items", "4"])
    for name in ("report.md", "report.json", "loss_curves.png", "loss_curves_tokens.png", "topic_cloze.png",
                 "cloze_during_training.png"):
        assert (output / name).stat().st_size > 0
    report = json.loads((output / "report.json").read_text())
    logs = {model: [json.loads(line) for line in (output / model / "log.jsonl").read_text().splitlines()]
            for model in ("lst", "llama")}
    markdown = (output / "report.md").read_text()
    for model, log in logs.items():  # the cloze in four directions and the held-out loss, every 3 steps
        evaluations = [row for row in log if "eval_loss" in row]
        assert [row["step"] for row in evaluations] == [3, 6]
        for row in evaluations:
            for direction in ("s2s", "t2t", "s2t", "t2s"):
                accuracy = row[f"eval_mc_{direction}_accuracy_context_gain"]
                assert accuracy in (0, 0.25, 0.5, 0.75, 1)  # four items, no ties expected from random weights
            cells = [format_accuracy(row[f"eval_mc_{d}_accuracy_context_gain"],
                                     proportion_interval(round(4 * row[f"eval_mc_{d}_accuracy_context_gain"]), 4),
                                     digits=0) for d in ("s2s", "t2t", "s2t", "t2s")]
            assert f"| {row['step']} | {row['eval_loss_speech']:.3f} | " + " | ".join(cells) + " |" in markdown
    assert "## During training: the first 4 cloze items" in markdown
    assert [row["step"] for row in report["during_training"]["lst"]] == [3, 6]
    logs = {model: [row for row in log if "loss" in row] for model, log in logs.items()}  # the training rows
    for model, log in logs.items():
        # the budget is the step count, whatever the machine's speed
        assert report["training"][model]["steps"] == log[-1]["step"] == 6
        assert report["training"][model]["final_train_loss"] == log[-1]["loss"]
        assert report["training"][model]["training_flops"] == pytest.approx(3 * sum(r["flops"] for r in log))
        held_out = json.loads((output / model / "eval_results.json").read_text())
        assert report["results"][model]["held_out_loss"] == held_out
        cloze = report["results"][model]["topic_cloze"]
        assert set(cloze) == {"S->S", "T->T", "S->T", "T->S"} and all(c["num_items"] == 8 for c in cloze.values())
    assert f"{report['results']['lst']['held_out_loss']['loss_speech']:.3f}" in markdown
    for model in ("lst", "llama"):  # each cloze accuracy is printed with its interval
        for cloze in report["results"][model]["topic_cloze"].values():
            low, high = cloze["accuracy_context_gain_ci95"]
            assert low <= cloze["accuracy_context_gain"] <= high
            assert format_accuracy(cloze["accuracy_context_gain"], (low, high), digits=0) in markdown
    for direction, comparison in report["lst_minus_llama"].items():  # paired over the same 8 items
        outcomes = {m: report["results"][m]["topic_cloze"][direction]["correct_context_gain"] for m in ("lst", "llama")}
        for model, correct in outcomes.items():
            assert len(correct) == 8
            assert sum(correct) / 8 == report["results"][model]["topic_cloze"][direction]["accuracy_context_gain"]
        assert comparison["difference"] == pytest.approx((sum(outcomes["lst"]) - sum(outcomes["llama"])) / 8)
        low, high = comparison["ci95"]
        assert low <= comparison["difference"] <= high
        assert f"{direction} {format_difference(comparison['difference'], (low, high))}" in markdown
    assert report["data"]["spoken_train_utterances"] == 40
    # The compute protocol: the baseline's tokens per step are LST's global positions per step under the static
    # patching its data was packed by (4 x 48, less where a packing batch ends in a shorter sequence): LST reads
    # more tokens for the same positions. The curriculum's aligned steps (before step 4) make longer patches.
    lst, llama = report["training"]["lst"], report["training"]["llama"]
    assert llama["global_positions_per_step"] == llama["tokens_per_step"] <= 4 * 48
    static_steps = [r["global_positions"] for r in logs["lst"] if r["step"] > 4]
    assert static_steps and all(abs(p - llama["global_positions_per_step"]) <= 0.15 * 4 * 48 for p in static_steps)
    assert lst["tokens_per_step"] > 1.2 * llama["tokens_per_step"]
    assert "Protocol: **compute**" in markdown
    # Each model is released beside its run, with a card carrying this run's numbers.
    from huggingface_hub import ModelCard

    for model in ("lst", "llama"):
        release = output / "releases" / model
        assert (release / "preprocessor_config.json").is_file() and (release / "extractor" / "centroids.npy").is_file()
        scores = {(r.task_name, r.dataset_config, r.metric_name): r.metric_value
                  for r in ModelCard.load(release / "README.md").data.eval_results}
        results = report["results"][model]
        assert scores[("held-out loss", None, "held-out loss (nats per token)")] == round(
            results["held_out_loss"]["loss"], 4)
        for direction, cloze in results["topic_cloze"].items():
            assert round(cloze["accuracy_context_gain"], 4) in [
                value for (task, config, _), value in scores.items() if config == direction]
    assert (output / "lst" / "final" / "modeling_lst.py").is_file()
