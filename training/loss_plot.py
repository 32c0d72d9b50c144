"""The training-loss figure: overall, text-token and speech-token losses against the step, or against the
tokens or FLOPs trained on so far (PNG): runs that see different amounts per step compare on those. A run's
evaluations during training (log rows with `eval_` keys, `--eval_steps`) are drawn beside them: the held-out
losses dashed on the same panels, and on a panel of its own the multiple-choice accuracy per direction
(by context gain where the run logged it, else per token: one ranking, though the log holds several) and CRA per
direction."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402

CURVES = (("loss", "all tokens"), ("loss_text", "text tokens"), ("loss_speech", "speech tokens"))
X_AXES = {"step": "step", "tokens": "tokens trained on", "flops": "training FLOPs"}
CLOZE_RANKINGS = ("context_gain", "per_token")  # the first a run logged is drawn


def _x_values(log: list[dict], x: str) -> list[float]:
    if x == "step":
        return [row["step"] for row in log]
    total, values = 0.0, []
    for row in log:  # each log row holds its window's tokens and FLOPs
        total += row[x]
        values.append(total)
    return values


def _eval_x_values(training: list[dict], evaluations: list[dict], x: str) -> list[float]:
    """An evaluation's x: its step, or the tokens or FLOPs of the training rows up to its step."""
    if x == "step":
        return [row["step"] for row in evaluations]
    totals = dict(zip((row["step"] for row in training), _x_values(training, x)))
    return [max((total for step, total in totals.items() if step <= row["step"]), default=0.0) for row in evaluations]


def _accuracy_labels(keys: set[str]) -> dict[str, str]:
    """The accuracies to draw, key -> label: 'cloze s2t' for eval_mc_s2t_accuracy_<ranking>, 'CRA u2t' for
    eval_cra_u2t."""
    ranking = next((r for r in CLOZE_RANKINGS if any(k.endswith(f"_accuracy_{r}") for k in keys)), "per_token")
    patterns = {"cloze": re.compile(rf"eval_mc_(\w+)_accuracy_{ranking}"), "CRA": re.compile(r"eval_cra_(\w+)")}
    return {key: f"{name} {match[1]}" for key in sorted(keys) for name, pattern in patterns.items()
            if (match := pattern.fullmatch(key))}


def _points(xs, rows, key):
    # NaN (a window without tokens of that kind) is not a point
    return [(at, row[key]) for at, row in zip(xs, rows) if key in row and row[key] == row[key]]


def plot_losses(rows: list[dict], path: str | Path, title: str = "pretraining",
                runs: dict[str, list[dict]] | None = None, x: str = "step"):
    """One panel per loss kind; `runs` (name -> log rows) overlays several runs, e.g. LST and its baseline."""
    if x not in X_AXES:
        raise ValueError(f"x must be one of {sorted(X_AXES)}, got {x!r}.")
    runs = runs or {"": rows}
    training = {name: [row for row in log if "loss" in row] for name, log in runs.items()}
    evaluations = {name: [row for row in log if any(key.startswith("eval_") for key in row)]
                   for name, log in runs.items()}
    eval_x = {name: _eval_x_values(training[name], evaluations[name], x) for name in runs}
    accuracies = _accuracy_labels({key for log in evaluations.values() for row in log for key in row})
    panels = len(CURVES) + bool(accuracies)
    figure, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4), sharex=True)
    for axis, (key, label) in zip(axes, CURVES):
        for index, name in enumerate(runs):
            color = f"C{index}"  # a run's held-out curve in its training curve's colour
            points = _points(_x_values(training[name], x), training[name], key)
            if points:
                axis.plot(*zip(*points), color=color, label=name or "training")
            held_out = _points(eval_x[name], evaluations[name], f"eval_{key}")
            if held_out:
                axis.plot(*zip(*held_out), "--", marker=".", color=color, label=f"{name} held-out".strip())
        axis.set_title(label)
    if accuracies:
        axis = axes[-1]
        for index, name in enumerate(runs):  # a colour per direction, a line style per run
            for slot, (key, label) in enumerate(accuracies.items()):
                points = _points(eval_x[name], evaluations[name], key)
                if points:
                    axis.plot(*zip(*points), ("-", ":", "-.")[index % 3], marker=".", color=f"C{slot}",
                              label=f"{name} {label}".strip())
        ranking = "context gain" if any(key.endswith("_context_gain") for key in accuracies) else "per token"
        axis.set_title(f"held-out accuracy (cloze by {ranking}, CRA)")
        axis.set_ylabel("accuracy")
    for axis in axes:
        axis.set_xlabel(X_AXES[x])
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0] and (any(runs) or any(evaluations.values())):
            axis.legend()
    axes[0].set_ylabel("cross-entropy (nats)")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
