"""The main job's report: markdown tables, a JSON dump and two plots, all from the run's own numbers."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lst_speech.evaluation.multiple_choice_data import DIRECTIONS  # noqa: E402
from lst_speech.evaluation.uncertainty import (  # noqa: E402
    format_accuracy,
    format_difference,
    paired_difference_interval,
    proportion_interval,
)
from lst_speech.training.arguments import direction_tag  # noqa: E402
from lst_speech.training.loss_plot import plot_losses  # noqa: E402

PROTOCOLS = {
    "compute": "compute-controlled: the same steps, and the baseline's tokens per step equal LST's global positions "
               "(patches) per step, so LST sees more data",
    "data": "data-controlled: the same steps over the same sequences (the same tokens), so LST spends less compute",
}

NAMES = {"lst": "LST ({preset}, curriculum patching)", "llama": "Llama baseline (same global shape)"}
NORMALIZATIONS = ("context_gain", "sum", "per_token")


def training_summary(log: list[dict]) -> dict:
    """Totals over the run from the logged windows (each row holds its window's counts); FLOPs are training
    FLOPs, three times the accounting's forward FLOPs. Evaluation rows (`--eval_steps`) are left out."""
    log = [row for row in log if "loss" in row]
    final = log[-1]
    seconds = sum(r.get("window_seconds", 0) for r in log)
    tokens, positions = sum(r["tokens"] for r in log), sum(r["global_positions"] for r in log)
    return {"steps": final["step"], "final_train_loss": final["loss"], "tokens": tokens,
            "global_positions": positions, "global_positions_per_step": positions / final["step"],
            "tokens_per_step": tokens / final["step"], "training_flops": 3 * sum(r["flops"] for r in log),
            "tokens_per_second": tokens / seconds, "global_positions_per_second": positions / seconds,
            "mfu": sum(r["mfu"] for r in log) / len(log), "train_seconds": seconds}


def paired_cloze_differences(first: dict, second: dict) -> dict[str, tuple[float, tuple[float, float]]]:
    """Per direction, the first model's context-gain accuracy minus the second's on the same cloze items."""
    return {direction: paired_difference_interval(first[direction]["correct_context_gain"],
                                                  second[direction]["correct_context_gain"])
            for direction in first if direction in second}


def during_training(results: dict, num_items: int) -> dict[str, list[dict]]:
    """Per model, the evaluations logged while it trained (`--eval_steps`), in step order: the step, the held-out
    speech loss and, per direction, the cloze accuracy by context gain with its 95% Wilson interval over the
    `num_items` items."""
    evaluations = {}
    for model, result in results.items():
        rows = sorted((row for row in result["log"] if any(key.startswith("eval_mc_") for key in row)),
                      key=lambda row: row["step"])
        evaluations[model] = []
        for row in rows:
            cloze = {}
            for direction in DIRECTIONS:
                accuracy = row[f"eval_mc_{direction_tag(direction)}_accuracy_context_gain"]
                cloze[direction] = (accuracy, proportion_interval(round(accuracy * num_items), num_items))
            evaluations[model].append({"step": row["step"], "loss_speech": row.get("eval_loss_speech", float("nan")),
                                       "cloze": cloze})
    return evaluations


def during_training_lines(evaluations: dict, names: dict[str, str], num_items: int) -> list[str]:
    """The evaluations during training as a table; none if nothing was logged."""
    if not any(evaluations.values()):
        return []
    lines = ["", f"## During training: the first {num_items} cloze items and the held-out loss", "",
             "Scored every few steps while each model trained, so the curves show when a direction leaves chance "
             "(50%); cloze accuracy by context gain with its 95% Wilson interval.", "",
             "![cloze during training](cloze_during_training.png)", "",
             "| model | step | held-out speech loss | " + " | ".join(DIRECTIONS) + " |",
             "|---|---|---|" + "---|" * len(DIRECTIONS)]
    for model, rows in evaluations.items():
        for row in rows:
            cells = [format_accuracy(*row["cloze"][direction], digits=0) for direction in DIRECTIONS]
            lines.append(f"| {names[model]} | {row['step']} | {row['loss_speech']:.3f} | " + " | ".join(cells) + " |")
    return lines


def _during_training_plot(evaluations: dict, names: dict[str, str], path: Path) -> None:
    """A panel per direction: each model's cloze accuracy against the step, with its interval, and chance."""
    figure, axes = plt.subplots(1, len(DIRECTIONS), figsize=(3.2 * len(DIRECTIONS), 3.2), sharey=True)
    for axis, direction in zip(axes, DIRECTIONS):
        for index, (model, rows) in enumerate(evaluations.items()):
            steps = [row["step"] + (index - 0.5) * 0.01 * rows[-1]["step"] for row in rows]  # apart, not hidden
            values = [row["cloze"][direction][0] for row in rows]
            errors = [[v - row["cloze"][direction][1][0] for v, row in zip(values, rows)],
                      [row["cloze"][direction][1][1] - v for v, row in zip(values, rows)]]
            axis.errorbar(steps, values, yerr=errors, marker="o", capsize=3, label=names[model])
        axis.axhline(0.5, color="grey", linestyle="--", linewidth=1)
        axis.set_title(direction)
        axis.set_xlabel("step")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("cloze accuracy (context gain), 95% CI")
    axes[0].legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _names(results: dict, preset: str) -> dict[str, str]:
    return {model: NAMES.get(model, model).format(preset=preset) for model in results}


def _cloze_plot(results: dict, names: dict[str, str], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 3.4))
    width = 0.8 / len(results)
    for index, (model, result) in enumerate(results.items()):
        values = [result["topic_cloze"][d]["accuracy_context_gain"] for d in DIRECTIONS]
        intervals = [result["topic_cloze"][d]["accuracy_context_gain_ci95"] for d in DIRECTIONS]
        errors = [[v - low for v, (low, _) in zip(values, intervals)], [high - v for v, (_, high) in zip(values, intervals)]]
        positions = [i + (index - (len(results) - 1) / 2) * width for i in range(len(DIRECTIONS))]
        axis.bar(positions, values, width, yerr=errors, capsize=3, label=names[model])
    axis.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    axis.set_xticks(range(len(DIRECTIONS)), DIRECTIONS)
    axis.set_ylim(0, 1)
    axis.set_ylabel("accuracy (context gain), 95% CI")
    axis.set_title("Spoken topic cloze on held-out chapters")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(output_dir: Path, arguments: dict, facts: dict, results: dict) -> None:
    summaries = {model: training_summary(result["log"]) for model, result in results.items()}
    names = _names(results, arguments["preset"])
    logs = {names[m]: r["log"] for m, r in results.items()}
    plot_losses([], output_dir / "loss_curves.png", title="Training loss: LST vs Llama baseline", runs=logs)
    plot_losses([], output_dir / "loss_curves_tokens.png", title="Training loss against the tokens seen", runs=logs,
                x="tokens")
    _cloze_plot(results, names, output_dir / "topic_cloze.png")
    mixture = facts["train_mixture"]
    lines = [
        "# LST vs Llama baseline: the offline main job", "",
        f"Everything below was measured in this run ({facts['total_minutes']:.1f} minutes in all), on the built-in",
        "King James Bible: verses spoken with espeak-ng, MFCC k-means units, every "
        f"{facts['held_out_chapters_every']}th chapter held out.", "",
        "## Data", "",
        "| | |", "|---|---|",
        f"| spoken verses (train / held-out) | {facts['spoken_train_utterances']} / {facts['spoken_held_out_utterances']} |",
        f"| speech | {facts['speech_minutes']:.1f} minutes, {facts['num_units']} units at 50 Hz |",
        f"| text-only training verses | {facts['text_train_verses']} |",
        f"| vocabulary | {facts['vocab_size']} |",
        f"| packed training sequences | {facts['packed_train_sequences']} x {arguments['sequence_length']} global positions |",
        f"| mixture (examples) | {', '.join(f'{k}: {v:.1%}' for k, v in mixture['source_shares'].items())} |",
        f"| speech : text tokens | {mixture['speech_per_text']:.2f} : 1 |", "",
        "## Training", "",
        f"Protocol: **{arguments['protocol']}** ({PROTOCOLS[arguments['protocol']]}). The budget is "
        f"{arguments['max_steps']} optimizer steps for each model; the wall-clock time is what they took on this "
        "machine, reported, not used to decide how much to train.", "",
        "| model | parameters | steps | global positions / step | tokens / step | tokens in all | training FLOPs | "
        "final train loss | minutes | MFU (vs measured matmul peak) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, summary in summaries.items():
        lines.append(f"| {names[model]} | {results[model]['parameters'] / 1e6:.1f}M | {summary['steps']} | "
                     f"{summary['global_positions_per_step']:.0f} | {summary['tokens_per_step']:.0f} | "
                     f"{summary['tokens']:,.0f} | {summary['training_flops']:.3g} | "
                     f"{summary['final_train_loss']:.3f} | {summary['train_seconds'] / 60:.1f} | "
                     f"{summary['mfu']:.1%} |")
    lines += ["", "## Held-out loss (nats per token)", "", "| model | all tokens | text tokens | speech tokens |",
              "|---|---|---|---|"]
    for model, result in results.items():
        loss = result["held_out_loss"]
        lines.append(f"| {names[model]} | {loss['loss']:.3f} | {loss['loss_text']:.3f} | {loss['loss_speech']:.3f} |")
    count = next(iter(results.values()))["topic_cloze"]["T->T"]["num_items"]
    lines += ["", f"## Spoken topic cloze ({count} items from held-out chapters, chance 50%)", "",
              "The prompt is the first half of a held-out verse; the right ending is its second half, the wrong one",
              "the second half of another item's verse (TWIST's TopicStoryCloze construction, within verses).",
              "Accuracy when endings are ranked by context gain (log p(ending | prompt) - log p(ending), the",
              "GPT-3 paper's unconditional normalisation) / by the summed log-likelihood / by it per token;",
              "the context-gain accuracy comes with its 95% Wilson interval.", "",
              "| model | " + " | ".join(DIRECTIONS) + " |", "|---|" + "---|" * len(DIRECTIONS)]
    for model, result in results.items():
        cells = []
        for direction in DIRECTIONS:
            cloze = result["topic_cloze"][direction]
            gain = format_accuracy(cloze["accuracy_context_gain"], cloze["accuracy_context_gain_ci95"], digits=0)
            cells.append(" / ".join([gain] + [f"{cloze[f'accuracy_{n}']:.0%}" for n in NORMALIZATIONS[1:]]))
        lines.append(f"| {names[model]} | " + " | ".join(cells) + " |")
    differences = paired_cloze_differences(results["lst"]["topic_cloze"], results["llama"]["topic_cloze"])
    lines += ["", f"{names['lst']} minus {names['llama']} on the same items (context gain), with the 95% paired "
              "bootstrap interval over items (the items both get right or wrong cancel out): "
              + "; ".join(f"{d} {format_difference(*differences[d])}" for d in DIRECTIONS) + "."]
    evaluations = during_training(results, min(arguments["eval_cloze_items"], count))
    if any(evaluations.values()):
        _during_training_plot(evaluations, names, output_dir / "cloze_during_training.png")
        lines += during_training_lines(evaluations, names, min(arguments["eval_cloze_items"], count))
    lines += ["", "![training loss](loss_curves.png)", "",
              "![training loss against tokens](loss_curves_tokens.png)", "", "![topic cloze](topic_cloze.png)", ""]
    (output_dir / "report.md").write_text("\n".join(lines))
    (output_dir / "report.json").write_text(json.dumps(
        {"arguments": arguments, "data": facts, "training": summaries, "during_training": evaluations,
         "results": {m: {k: v for k, v in r.items() if k != "log"} for m, r in results.items()},
         "lst_minus_llama": {d: {"difference": value, "ci95": list(interval)}
                             for d, (value, interval) in differences.items()}}, indent=2))
