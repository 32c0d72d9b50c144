"""`lst data`: build packed pretraining data from saved sources with a paper's recipe.

    lst data --recipe lst --tokenizer tok/ --paired corpus/ --text verses.txt --output packed/ [--num_proc 2]
    lst data --recipe sutlm --tokenizer tok/ --speech units/ --paired corpus/ --text verses.txt --output packed/

Sources: `--paired` and `--speech` are datasets saved with `save_to_disk` (e.g. by `lst corpus`) or folders of
Parquet shards (e.g. from `lst units extract --output FOLDER`); `--text` is a text file (one document per line)
or a saved dataset with a `text` column. The output is saved with a dataset card recording the recipe and the
realised mixture; `--push_to_hub` uploads it too.

`--streaming` builds without loading any source: every source is read as a stream, formatted, mixed and packed
on the fly, and the output is written as Parquet shards of `--rows_per_shard` rows (what `pretrain.py
--streaming` reads), with the realised mixture counted as the rows go by. `--part I/N` builds the I-th of N
disjoint parts of every source into `OUTPUT/part-I-of-N`, so N jobs given one `--output` build in parallel
without touching each other's part, and `pretrain.py` reads the parts together from `OUTPUT` (its Parquet files
are found recursively).

The output (or a part's folder) replaces only an earlier `lst data` output, and never lies inside a source or
holds one (`lst_speech.tokenization.output_safety`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger("lst.data")
OWNER = "lst data"
SOURCES = ("paired", "speech", "text")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="build packed pretraining data with a paper's recipe")
    # Checked against data_recipes.RECIPES in run(): importing it here would load torch for `lst data --help`.
    parser.add_argument("--recipe", required=True, help="a recipe of data_recipes.RECIPES: lst or sutlm")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--paired", type=Path, help="saved dataset of {text, words, units, word_spans}")
    parser.add_argument("--speech", type=Path, help="saved dataset of {units} (speech-only)")
    parser.add_argument("--text", type=Path, help="text file (a document per line) or saved dataset with 'text'")
    parser.add_argument("--sequence_length", type=int, help="override the recipe's packed length")
    parser.add_argument("--patch_size", type=int, help="override the recipe's static patch size (packing by patches: "
                                                      "the model's patch_size, checked when training starts)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch", type=int, default=0, help="which epoch's random draws (LST interleaving)")
    parser.add_argument("--num_proc", type=int)
    parser.add_argument("--piece_timing", default="characters", choices=("characters", "proportional"),
                        help="piece spans (for bpe patching) from the rows' character_starts, or also split words "
                             "without them in proportion to their characters (no acoustic evidence)")
    parser.add_argument("--streaming", action="store_true",
                        help="read the sources as streams and write Parquet shards (for corpora larger than memory)")
    parser.add_argument("--rows_per_shard", type=int, default=2000, help="with --streaming: packed rows per shard")
    parser.add_argument("--part", help="with --streaming: build part I of N (I/N, from 0) of every source into "
                                       "OUTPUT/part-I-of-N, so N jobs build a corpus in parallel into one --output")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--push_to_hub", help="also push to this dataset repository")
    parser.set_defaults(run=run)


def _check_paths(arguments) -> None:
    """Named before the Auto classes read a missing path as a repo id, or `load_from_disk` fails deep inside."""
    from lst_speech.training.arguments import check_local_path

    check_local_path(str(arguments.tokenizer), "--tokenizer", "a saved SpeechUnitTextTokenizer")
    if arguments.tokenizer.is_file():  # else transformers reads it as a config and says only "not valid JSON"
        raise ValueError(f"--tokenizer {arguments.tokenizer} is a file: pass the folder a SpeechUnitTextTokenizer "
                         "was saved to.")
    if not any(getattr(arguments, flag) for flag in SOURCES):
        raise ValueError("No sources: pass at least one of --paired, --speech and --text.")
    for flag, what in (("paired", "a saved dataset or Parquet shards of {text, words, units, word_spans} "
                                  "(`lst corpus` makes one)"),
                       ("speech", "a saved dataset or Parquet shards of {units}"),
                       ("text", "a text file or a saved dataset with a 'text' column")):
        if getattr(arguments, flag) is not None:
            check_local_path(str(getattr(arguments, flag)), f"--{flag}", what, local_only=True)


def _part(arguments) -> tuple[int, int] | None:
    """`--part I/N` as (I, N), checked."""
    if arguments.part is None:
        return None
    index, _, count = arguments.part.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise ValueError(f"--part {arguments.part!r}: write I/N with 0 <= I < N, e.g. 0/8 ... 7/8.")
    if not arguments.streaming:
        raise ValueError("--part splits streamed sources: add --streaming.")
    return int(index), int(count)


def _output(arguments, part: tuple[int, int] | None) -> Path:
    """Where this job writes, checked before any work: `--output`, or its part's folder in it. `--output` must be
    apart from the tokenizer and the sources, and parts of another N beside this part would split the sources
    twice (the same rows in two parts)."""
    from lst_speech.tokenization.output_safety import check_apart, check_replaceable

    check_apart(("--output", arguments.output), ("--tokenizer", arguments.tokenizer),
                *((f"--{flag}", getattr(arguments, flag)) for flag in SOURCES))
    output = arguments.output
    if part is not None:
        index, count = part
        others = sorted(p.name for p in output.glob("part-*-of-*") if not p.name.endswith(f"-of-{count:05d}"))
        if others:
            raise ValueError(f"--output {output} holds parts of another --part split ({', '.join(others)}): build "
                             f"all parts with one N, or choose another --output.")
        output = output / f"part-{index:05d}-of-{count:05d}"
    check_replaceable(output, OWNER)
    return output


def _text_source(path: Path, streaming: bool):
    import datasets

    from lst_speech.training.data.dataset_files import open_dataset

    if path.is_dir():
        return open_dataset(str(path), streaming=streaming)
    with open(path) as handle:  # reads up to the first line with text, not the file
        if not any(line.strip() for line in handle):
            raise ValueError(f"{path} holds no text.")
    if streaming:
        lines = datasets.load_dataset("text", data_files=str(path), split="train", streaming=True)
        stripped = lines.map(lambda row: {"text": row["text"].strip()}, features=lines.features)
        return stripped.filter(lambda row: bool(row["text"]))
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return datasets.Dataset.from_dict({"text": lines})


def run(arguments) -> None:
    from transformers import AutoTokenizer

    import lst_speech.tokenization  # noqa: F401  (registers the joint tokenizer)
    from lst_speech.model_cards.dataset_cards import pretraining_data_card
    from lst_speech.training.data.checks import LAYOUT_FILE
    from lst_speech.training.data.dataset_files import SHARD_PATTERN, open_dataset, write_parquet_shards
    from lst_speech.training.data.mixing import RealisedRatios
    from lst_speech.training.data.packing import PACKED_FEATURES
    from lst_speech.training.data.pipeline import push_with_card, save_with_card
    from lst_speech.training.data.recipes import PROVENANCE, RECIPES, build_pretraining_data, pack_with_recipe

    if arguments.recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {arguments.recipe!r}; choose one of {sorted(RECIPES)}.")
    if arguments.rows_per_shard < 1:
        raise ValueError(f"--rows_per_shard must be at least 1, got {arguments.rows_per_shard}.")
    if arguments.streaming and arguments.push_to_hub:
        raise ValueError("--push_to_hub uploads a saved dataset; upload a --streaming output folder with "
                         "`hf upload --repo-type dataset REPO FOLDER` (its card reads the shards).")
    part = _part(arguments)
    _check_paths(arguments)
    output = _output(arguments, part)
    recipe = RECIPES[arguments.recipe]
    if arguments.sequence_length:
        recipe = recipe.replace(sequence_length=arguments.sequence_length)
    if arguments.patch_size:
        recipe = recipe.replace(patch_size=arguments.patch_size)
    tokenizer = AutoTokenizer.from_pretrained(arguments.tokenizer)
    # Which ids the rows hold: pretraining compares it with its tokenizer (training.data.checks).
    layout = {LAYOUT_FILE: json.dumps(tokenizer.vocabulary_layout(), indent=2) + "\n"}
    streaming = arguments.streaming
    sources = {
        "paired": open_dataset(str(arguments.paired), streaming) if arguments.paired else None,
        "speech": open_dataset(str(arguments.speech), streaming) if arguments.speech else None,
        "text": _text_source(arguments.text, streaming) if arguments.text else None,
    }
    if part is not None:  # whole files of each source when they divide evenly, else every N-th row
        from datasets.distributed import split_dataset_by_node

        sources = {name: None if source is None else split_dataset_by_node(source, rank=part[0], world_size=part[1])
                   for name, source in sources.items()}
    options = {"seed": arguments.seed, "epoch": arguments.epoch, "num_proc": None if streaming else arguments.num_proc,
               "piece_timing": arguments.piece_timing}
    mixed, weights = build_pretraining_data(recipe, tokenizer, **sources, pack_sequences=False, **options)
    tally = RealisedRatios(tokenizer)
    recipe_facts = {"recipe": arguments.recipe, "sequence length": f"{recipe.sequence_length} {recipe.pack_unit}",
                    "static patch size": recipe.patch_size,
                    "seed / epoch": f"{arguments.seed} / {arguments.epoch}", "piece timing": arguments.piece_timing,
                    **({"part": f"{part[0]} of {part[1]} (0-based)"} if part else {}),
                    "sources": ", ".join(f"{k}: {getattr(arguments, k)}" for k in sources if sources[k] is not None)}

    def card(rows: int):
        report = tally.report()
        statistics = {"packed sequences": rows, "documents": report["examples"],
                      "realised source shares": report.get("source_shares"),
                      "speech:text tokens": f"{report['speech_per_text']:.3f}", "source weights": weights}
        # each preset choice, and whether the paper or we made it
        return pretraining_data_card(arguments.output.name, recipe_facts, statistics, PROVENANCE[arguments.recipe],
                                     data_files=SHARD_PATTERN if streaming else None)

    if streaming:  # counted while the rows are packed and written: nothing is held but one row group
        packed = pack_with_recipe(mixed.map(tally.observe, batched=True, features=mixed.features), recipe)
        index = write_parquet_shards(packed, output, PACKED_FEATURES, arguments.rows_per_shard,
                                     card=lambda index: card(index["rows"]), owner=OWNER, extra_files=layout)
        logger.info("wrote %d packed sequences in %d shards to %s; realised: %s", index["rows"],
                    len(index["shards"]), output, tally.report())
        return
    packed = pack_with_recipe(mixed, recipe, arguments.num_proc)
    tally.add(mixed)
    save_with_card(packed, output, card(len(packed)), owner=OWNER, extra_files=layout)
    logger.info("saved %d packed sequences to %s; realised: %s", len(packed), output, tally.report())
    if arguments.push_to_hub:
        push_with_card(packed, arguments.push_to_hub, card(len(packed)))
