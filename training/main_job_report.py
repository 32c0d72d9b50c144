"""The main job's report: markdown tables, a JSON dump and two plots, all from the run's own numbers."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from evaluation.multiple_choice_data import DIRECTIONS  # noqa: E402
from evaluation.uncertainty import format_accuracy  # noqa: E402
from training.loss_plot import plot_losses  # noqa: E402

NAMES = {"lst": "LST ({preset}, curriculum patching)", "llama": "Llama baseline (same global shape)"}
NORMALIZATIONS = ("context_gain", "sum", "per_token")


def _training_summary(log: list[dict]) -> dict:
    final = log[-1]
    seconds = sum(r.get("window_seconds", 0) for r in log)
    return {"steps": final["step"], "final_train_loss": final["loss"],
            "tokens_per_second": sum(r["tokens_per_second"] for r in log) / len(log),
            "global_positions_per_second": sum(r["global_positions_per_second"] for r in log) / len(log),
            "mfu": sum(r["mfu"] for r in log) / len(log), "train_seconds": seconds}


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
    summaries = {model: _training_summary(result["log"]) for model, result in results.items()}
    names = _names(results, arguments["preset"])
    plot_losses([], output_dir / "loss_curves.png", title="Training loss: LST vs Llama baseline",
                runs={names[m]: r["log"] for m, r in results.items()})
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
        "| model | parameters | steps | final train loss | tokens/s | global positions/s | MFU (vs measured matmul peak) |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, summary in summaries.items():
        lines.append(f"| {names[model]} | {results[model]['parameters'] / 1e6:.1f}M | {summary['steps']} | "
                     f"{summary['final_train_loss']:.3f} | {summary['tokens_per_second']:.0f} | "
                     f"{summary['global_positions_per_second']:.0f} | {summary['mfu']:.1%} |")
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
    lines += ["", "![training loss](loss_curves.png)", "", "![topic cloze](topic_cloze.png)", ""]
    (output_dir / "report.md").write_text("\n".join(lines))
    (output_dir / "report.json").write_text(json.dumps(
        {"arguments": arguments, "data": facts, "training": summaries,
         "results": {m: {k: v for k, v in r.items() if k != "log"} for m, r in results.items()}}, indent=2))
