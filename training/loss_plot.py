"""The training-loss figure: overall, text-token and speech-token losses against the step (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402

CURVES = (("loss", "all tokens"), ("loss_text", "text tokens"), ("loss_speech", "speech tokens"))


def plot_losses(rows: list[dict], path: str | Path, title: str = "pretraining", runs: dict[str, list[dict]] | None = None):
    """One panel per loss kind; `runs` (name -> log rows) overlays several runs, e.g. LST and its baseline."""
    runs = runs or {"": rows}
    figure, axes = plt.subplots(1, len(CURVES), figsize=(4.2 * len(CURVES), 3.4), sharex=True)
    for axis, (key, label) in zip(axes, CURVES):
        for name, log in runs.items():
            points = [(row["step"], row[key]) for row in log if row.get(key) == row.get(key)]  # skip NaN
            if points:
                axis.plot(*zip(*points), label=name or None)
        axis.set_title(label)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if any(runs):
            axis.legend()
    axes[0].set_ylabel("cross-entropy (nats)")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
