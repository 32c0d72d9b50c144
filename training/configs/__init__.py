"""Accelerate configs (FSDP, DeepSpeed ZeRO-2, multi-node DDP) and the transfer matrix's YAML recipes.

They ship in the wheel beside this file; `config_path` (or `python -m lst_speech.training.configs NAME`) finds
one through the installed package: `accelerate launch --config_file "$(python -m lst_speech.training.configs
fsdp)" -m lst_speech.training.pretrain ...`.
"""

from __future__ import annotations

from pathlib import Path

CONFIGS = tuple(sorted(path.stem for path in Path(__file__).resolve().parent.glob("*.yaml")))


def config_path(name: str) -> str:
    """The path of a shipped config, by its name without `.yaml` (one of `CONFIGS`)."""
    if name not in CONFIGS:
        raise ValueError(f"Unknown config {name!r}; the package ships {CONFIGS}.")
    return str(Path(__file__).resolve().parent / f"{name}.yaml")
