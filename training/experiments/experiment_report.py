"""The report of `lst experiment`: a markdown table of every cell (the baseline once per protocol), a JSON dump
and a plot against the speech:text ratio, from the runs' own results. A cell over several seeds gives the mean
and the spread (the lowest and highest seed); a single seed's accuracy gives its 95% Wilson interval. Each LST
variant is also compared with each protocol's baseline item by item, on the same cloze items and seeds."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lst_speech.evaluation.uncertainty import format_accuracy, format_difference, paired_difference_interval  # noqa: E402
from lst_speech.tokenization.atomic_files import write_text_atomically  # noqa: E402
from lst_speech.training.experiments.main_job_report import PROTOCOLS  # noqa: E402


def _cells(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    cells: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        cells.setdefault((run["ratio"], run["model"]), []).append(run)
    return dict(sorted(cells.items()))


def _accuracy(runs: list[dict], direction: str) -> tuple[float, tuple[float, float], str]:
    """Mean accuracy, its interval (Wilson for one seed, the seeds' range for several) and the cell's text."""
    scores = [r["topic_cloze"][direction] for r in runs]
    values = [s["accuracy_context_gain"] for s in scores]
    if len(runs) == 1:
        interval = tuple(scores[0]["accuracy_context_gain_ci95"])
        return values[0], interval, format_accuracy(values[0], interval, digits=0)
    mean, interval = float(np.mean(values)), (min(values), max(values))
    return mean, interval, f"{mean:.0%} (seeds {interval[0]:.0%}-{interval[1]:.0%}, n={len(runs)})"


def _protocol(model: str, baseline: str) -> str | None:
    """The protocol of a baseline's model name (`llama+data` -> `data`); None for an LST variant."""
    return model.removeprefix(f"{baseline}+") if model.startswith(f"{baseline}+") else None


def _paired_comparisons(cells: dict, directions: list[str], baseline: str) -> list[dict]:
    """Each LST variant minus each protocol's baseline of its mixture on the same cloze items, over the seeds
    both ran.

    The interval is the 95% paired bootstrap over the items, of each item's outcome averaged over those seeds
    (every run sees the same items, so the seeds' outcomes stack item by item); with several seeds the seeds'
    own differences give `seed_range`, the spread from training randomness that resampling items cannot show.
    """
    comparisons = []
    pairs = [(ratio, model, other) for ratio, model in cells for other_ratio, other in cells
             if other_ratio == ratio and _protocol(model, baseline) is None and _protocol(other, baseline)]
    for ratio, model, other in pairs:
        runs, baseline_runs = cells[(ratio, model)], {r["seed"]: r for r in cells[(ratio, other)]}
        seeds = sorted({r["seed"] for r in runs} & set(baseline_runs))
        if not seeds:
            continue
        by_seed = {r["seed"]: r for r in runs}
        comparison = {"mixture": ratio, "model": model, "baseline": other, "seeds": seeds, "difference": {},
                      "interval": {}, "text": {}, **({"seed_range": {}} if len(seeds) > 1 else {})}
        for direction in directions:
            # (seeds, items) outcomes of the variant and of the baseline
            lst, base = (np.array([run[s]["topic_cloze"][direction]["correct_context_gain"] for s in seeds], float)
                         for run in (by_seed, baseline_runs))
            difference, interval = paired_difference_interval(lst.mean(axis=0), base.mean(axis=0))
            comparison["difference"][direction] = difference
            comparison["interval"][direction] = list(interval)
            comparison["text"][direction] = format_difference(difference, interval)
            if len(seeds) > 1:
                per_seed = lst.mean(axis=1) - base.mean(axis=1)
                low, high = float(per_seed.min()), float(per_seed.max())
                comparison["seed_range"][direction] = [low, high]
                comparison["text"][direction] += f" (seeds {100 * low:+.0f} to {100 * high:+.0f})"
        comparisons.append(comparison)
    return comparisons


def _mean_and_spread(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _plot(cells: dict, directions: list[str], ratios: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, len(directions), figsize=(4.6 * len(directions), 3.4), squeeze=False)
    models = sorted({model for _, model in cells})
    for axis, direction in zip(axes[0], directions):
        for model in models:
            points = []
            for (ratio, cell_model), runs in cells.items():
                realised = ratios.get(ratio, {}).get("train_mixture", {}).get("speech_per_text")
                if cell_model == model and realised is not None:
                    mean, (low, high), _ = _accuracy(runs, direction)
                    points.append((realised, mean, mean - low, high - mean))
            if points:
                points.sort()
                x, y, below, above = zip(*points)
                axis.errorbar(x, y, yerr=[below, above], marker="o", capsize=3, label=model)
        axis.axhline(0.5, color="grey", linestyle="--", linewidth=1)
        axis.set_xscale("log")
        axis.set_xlabel("speech : text tokens (realised)")
        axis.set_ylabel(f"{direction} topic cloze accuracy")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_experiment_report(output_dir: Path, settings: dict, corpus: dict, ratios: dict, runs: list[dict],
                            baseline: str) -> None:
    if not runs:
        raise ValueError(f"{output_dir} holds no finished runs to report.")
    cells = _cells(runs)
    directions = list(settings["directions"])
    protocols = sorted({p for _, model in cells if (p := _protocol(model, baseline))})
    lines = [
        "# LST experiment", "",
        "Protocol" + ("s: " if len(protocols) > 1 else ": ")
        + "; ".join(f"**{p}** ({PROTOCOLS[p]}, baseline `{baseline}+{p}`)" for p in protocols)
        + ". LST trains on the same sequences under every protocol, so its runs serve all of them. Every run trains "
        f"{settings['max_steps']} optimizer steps of {settings['batch_size']} sequences of "
        f"{settings['sequence_length']} global positions (LST, static packing) on the `{settings['preset']}` shape, "
        f"from the same tokenizer ({corpus['vocab_size']} ids) and corpus ({corpus['spoken_train_utterances']} "
        f"spoken and {corpus['text_train_verses']} text verses; every {corpus['held_out_chapters_every']}th chapter "
        "held out). Training FLOPs are the accounting's, summed over every logged step.", "",
        "## Data", "", "| mixture | speech:text tokens asked | realised | packed sequences |", "|---|---|---|---|",
    ]
    for name, facts in ratios.items():
        asked = "the recipe's weights" if name == "recipe" else name.removeprefix("speech_per_text-")
        lines.append(f"| {name} | {asked} | {facts['train_mixture']['speech_per_text']:.3f} | "
                     f"{facts['packed_train_sequences']} |")
    header = ["mixture", "model", "seeds", "global positions / step", "tokens / step", "training FLOPs",
              "held-out loss: all", "text", "speech", *[f"{d} (context gain)" for d in directions]]
    lines += ["", "## Results", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    summary = []
    for (ratio, model), cell_runs in cells.items():
        losses = {k: [r["held_out_loss"][k] for r in cell_runs] for k in ("loss", "loss_text", "loss_speech")}
        accuracies = {d: _accuracy(cell_runs, d) for d in directions}
        row = [ratio, model, ", ".join(str(r["seed"]) for r in cell_runs),
               f"{np.mean([r['global_positions_per_step'] for r in cell_runs]):.0f}",
               f"{np.mean([r['tokens_per_step'] for r in cell_runs]):.0f}",
               f"{np.mean([r['training_flops'] for r in cell_runs]):.3g}",
               *[_mean_and_spread(losses[k]) for k in losses], *[accuracies[d][2] for d in directions]]
        lines.append("| " + " | ".join(row) + " |")
        summary.append({"mixture": ratio, "model": model, "seeds": [r["seed"] for r in cell_runs],
                        "held_out_loss": {k: float(np.mean(v)) for k, v in losses.items()},
                        "topic_cloze": {d: {"mean": a[0], "interval": list(a[1])} for d, a in accuracies.items()},
                        "training_flops": float(np.mean([r["training_flops"] for r in cell_runs]))})
    lines += ["", "Intervals: one seed, the 95% Wilson interval over the cloze items; several seeds, the lowest and",
              "highest seed (mean first). Chance is 50%."]
    comparisons = _paired_comparisons(cells, directions, baseline)
    if comparisons:
        lines += ["", "## LST minus the baseline, on the same items", "",
                  "Context-gain accuracy of each LST variant minus that of each protocol's baseline trained on the "
                  "same mixture "
                  "with the same seed, item by item, with the 95% paired bootstrap interval over the items (the "
                  "items both get right or wrong cancel). Several seeds: each item's outcomes are averaged over "
                  "the seeds first, and the lowest and highest seed's own difference follow in parentheses.", "",
                  "| mixture | model | baseline | seeds | " + " | ".join(directions) + " |",
                  "|" + "---|" * (4 + len(directions))]
        for comparison in comparisons:
            lines.append(f"| {comparison['mixture']} | {comparison['model']} | {comparison['baseline']} | "
                         f"{', '.join(map(str, comparison['seeds']))} | "
                         + " | ".join(comparison["text"][d] for d in directions) + " |")
    lines += ["", "![accuracy against the ratio](ratio_sweep.png)", ""]
    _plot(cells, directions, ratios, output_dir / "ratio_sweep.png")
    write_text_atomically(output_dir / "report.md", "\n".join(lines))
    write_text_atomically(output_dir / "report.json", json.dumps(
        {"settings": settings, "protocols": protocols, "corpus": corpus, "data": ratios, "cells": summary,
         "minus_baseline": [{k: v for k, v in c.items() if k != "text"} for c in comparisons],
         "runs": runs}, indent=2))
