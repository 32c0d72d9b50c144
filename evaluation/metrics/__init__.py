"""The `evaluate` metric modules: CRA, PELM, SLUE-SA and SLUE-NER, one folder and one script each.

`evaluate.load(folder)` runs a metric's script offline from its folder. The folders ship in the wheel as package
data, so `metric_path` finds them through the installed package, never through the repository's layout.
"""

from __future__ import annotations

from pathlib import Path

METRICS = ("cra", "pelm", "slue_sa", "slue_ner")


def metric_path(name: str) -> str:
    """The folder to pass to `evaluate.load` for one of our metrics."""
    if name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}; the package ships {METRICS}.")
    return str(Path(__file__).resolve().parent / name)
