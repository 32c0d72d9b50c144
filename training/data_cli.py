"""`lst data`: build packed pretraining data from saved sources with a paper's recipe.

    lst data --recipe lst --tokenizer tok/ --paired corpus/ --text verses.txt --output packed/ [--num_proc 2]
    lst data --recipe sutlm --tokenizer tok/ --speech units/ --paired corpus/ --text verses.txt --output packed/

Sources: `--paired` and `--speech` are datasets saved with `save_to_disk` (e.g. by `lst corpus`); `--text`
is a text file (one document per line) or a saved dataset with a `text` column. The output is saved with a
dataset card recording the recipe and the realised mixture; `--push_to_hub` uploads it too.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger("lst.data")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="build packed pretraining data with a paper's recipe")
    # Checked against data_recipes.RECIPES in run(): importing it here would load torch for `lst data --help`.
    parser.add_argument("--recipe", required=True, help="a recipe of data_recipes.RECIPES: lst or sutlm")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--paired", type=Path, help="saved dataset of {text, words, units, word_spans}")
    parser.add_argument("--speech", type=Path, help="saved dataset of {units} (speech-only)")
    parser.add_argument("--text", type=Path, help="text file (a document per line) or saved dataset with 'text'")
    parser.add_argument("--sequence_length", type=int, help="override the recipe's packed length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch", type=int, default=0, help="which epoch's random draws (LST interleaving)")
    parser.add_argument("--num_proc", type=int)
    parser.add_argument("--piece_timing", default="characters", choices=("characters", "proportional"),
                        help="piece spans (for bpe patching) from the rows' character_starts, or also split words "
                             "without them in proportion to their characters (no acoustic evidence)")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--push_to_hub", help="also push to this dataset repository")
    parser.set_defaults(run=run)


def _check_paths(arguments) -> None:
    """Named before the Auto classes read a missing path as a repo id, or `load_from_disk` fails deep inside."""
    from .arguments import check_local_path

    check_local_path(str(arguments.tokenizer), "--tokenizer", "a saved SpeechUnitTextTokenizer")
    if not any(getattr(arguments, flag) for flag in ("paired", "speech", "text")):
        raise ValueError("No sources: pass at least one of --paired, --speech and --text.")
    for flag, what in (("paired", "a saved dataset of {text, words, units, word_spans} (`lst corpus` makes one)"),
                       ("speech", "a saved dataset of {units}"),
                       ("text", "a text file or a saved dataset with a 'text' column")):
        if getattr(arguments, flag) is not None:
            check_local_path(str(getattr(arguments, flag)), f"--{flag}", what, local_only=True)


def _text_source(path: Path):
    import datasets

    if path.is_dir():
        return datasets.load_from_disk(str(path))
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path} holds no text.")
    return datasets.Dataset.from_dict({"text": lines})


def run(arguments) -> None:
    import datasets
    from transformers import AutoTokenizer

    import tokenization  # noqa: F401  (registers the joint tokenizer)

    from .data_mixing import realised_ratios
    from model_cards.dataset_cards import pretraining_data_card

    from .data_pipeline import push_with_card, save_with_card
    from .data_recipes import PROVENANCE, RECIPES, build_pretraining_data, pack_with_recipe

    if arguments.recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {arguments.recipe!r}; choose one of {sorted(RECIPES)}.")
    _check_paths(arguments)
    recipe = RECIPES[arguments.recipe]
    if arguments.sequence_length:
        recipe = recipe.replace(sequence_length=arguments.sequence_length)
    tokenizer = AutoTokenizer.from_pretrained(arguments.tokenizer)
    sources = {
        "paired": datasets.load_from_disk(str(arguments.paired)) if arguments.paired else None,
        "speech": datasets.load_from_disk(str(arguments.speech)) if arguments.speech else None,
        "text": _text_source(arguments.text) if arguments.text else None,
    }
    options = {"seed": arguments.seed, "epoch": arguments.epoch, "num_proc": arguments.num_proc,
               "piece_timing": arguments.piece_timing}
    mixed, weights = build_pretraining_data(recipe, tokenizer, **sources, pack_sequences=False, **options)
    packed = pack_with_recipe(mixed, recipe, arguments.num_proc)
    report = realised_ratios(mixed, tokenizer)
    statistics = {"packed sequences": len(packed), "documents": report["examples"],
                  "realised source shares": report.get("source_shares"),
                  "speech:text tokens": f"{report['speech_per_text']:.3f}", "source weights": weights}
    recipe_facts = {"recipe": arguments.recipe, "sequence length": f"{recipe.sequence_length} {recipe.pack_unit}",
                    "seed / epoch": f"{arguments.seed} / {arguments.epoch}", "piece timing": arguments.piece_timing,
                    "sources": ", ".join(f"{k}: {getattr(arguments, k)}" for k in sources if sources[k] is not None)}
    # each preset choice, and whether the paper or we made it
    card = pretraining_data_card(arguments.output.name, recipe_facts, statistics, PROVENANCE[arguments.recipe])
    save_with_card(packed, arguments.output, card)
    logger.info("saved %d packed sequences to %s; realised: %s", len(packed), arguments.output, report)
    if arguments.push_to_hub:
        push_with_card(packed, arguments.push_to_hub, card)
