"""`lst slue-stand-in`: build the offline SLUE-shaped stand-in (espeak-ng) in the `asapp/slue` schema."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lst_speech.model_cards.dataset_cards import STAND_IN_SPLITS as SPLITS

logger = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    from lst_speech.evaluation.slue.stand_in import build_slue_stand_in

    parser = subparsers.add_parser("slue-stand-in", help="build the offline SLUE-shaped stand-in (espeak-ng)")
    parser.add_argument("--output_dir", type=Path, required=True)
    for split, default in zip(SPLITS, (600, 150, 150)):
        parser.add_argument(f"--{split}", type=int, default=default, help=f"{split} rows per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=lambda a: logger.info("%s", json.dumps(build_slue_stand_in(
        a.output_dir, {split: getattr(a, split) for split in SPLITS}, a.seed), indent=2)))
