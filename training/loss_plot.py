"""The training-loss figure: overall, text-token and speech-token losses against the step, or against the
tokens or FLOPs trained on so far (PNG): runs that see different amounts per step compare on those."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402

CURVES = (("loss", "all tokens"), ("loss_text", "text tokens"), ("loss_speech", "speech tokens"))
X_AXES = {"step": "step", "tokens": "tokens trained on", "flops": "training FLOPs"}


def _x_values(log: list[dict], x: str) -> list[float]:
    if x == "step":
        return [row["step"] for row in log]
    total, values = 0.0, []
    for row in log:  # each log row holds its window's tokens and FLOPs
        total += row[x]
        values.append(total)
    return values


def plot_losses(rows: list[dict], path: str | Path, title: str = "pretraining",
                runs: dict[str, list[dict]] | None = None, x: str = "step"):
    """One panel per loss kind; `runs` (name -> log rows) overlays several runs, e.g. LST and its baseline."""
    if x not in X_AXES:
        raise ValueError(f"x must be one of {sorted(X_AXES)}, got {x!r}.")
    runs = runs or {"": rows}
    figure, axes = plt.subplots(1, len(CURVES), figsize=(4.2 * len(CURVES), 3.4), sharex=True)
    for axis, (key, label) in zip(axes, CURVES):
        for name, log in runs.items():
            # NaN (a window without tokens of that kind) is not a point
            points = [(at, row[key]) for at, row in zip(_x_values(log, x), log) if row.get(key) == row.get(key)]
            if points:
                axis.plot(*zip(*points), label=name or None)
        axis.set_title(label)
        axis.set_xlabel(X_AXES[x])
        axis.grid(alpha=0.3)
        if any(runs):
            axis.legend()
    axes[0].set_ylabel("cross-entropy (nats)")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
