"""`lst eval`: multiple-choice and CRA evaluation of a saved model, written as JSON and a markdown table.

    lst eval mc --model DIR --data storycloze.csv --format storycloze --directions T->T S->S --output out [--context_gain]
    lst eval cra --model DIR --corpus spoken_corpus_dir --num 100 --output out
    lst eval pelm --model DIR --corpus spoken_corpus_dir --external_lm LM_DIR --directions T->T S->T S->S T->S \
        --vocoder VOCODER_DIR --output out
    lst eval spoken --benchmark swuggy|sblimp|sstorycloze|tstorycloze|salmon --data RELEASE_DIR_OR_HUB_ID \
        --extractor DIR --model DIR --output out

`--model` is any causal LM over the joint vocabulary (LST or the Llama baseline) saved with its tokenizer;
spoken directions also need `--extractor` (a saved unit extractor) and speak with espeak-ng. PELM cuts the
corpus's utterances in half (text or units), samples continuations and scores them under the external LM;
speech continuations (->S) are vocoded (`--vocoder`, see `lst vocoder`) and transcribed (`--transcriber`).
`spoken` reads a released spoken benchmark in its own layout and scores it by its own rule
(`lst_speech.evaluation.benchmarks`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from lst_speech.evaluation.uncertainty import format_accuracy

logger = logging.getLogger("lst.eval")

FORMATS = ("storycloze", "topic-storycloze", "hellaswag", "pairs", "items")  # multiple_choice_data.FORMATS, without torch
BENCHMARKS = ("swuggy", "sblimp", "sstorycloze", "tstorycloze", "salmon")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a saved model (multiple choice, CRA)")
    tasks = parser.add_subparsers(dest="task", required=True)
    mc = tasks.add_parser("mc", help="log-likelihood multiple choice (StoryCloze, TopicStoryCloze, HellaSwag, pairs)")
    mc.add_argument("--data", type=Path, required=True, help="the set's file in its published format")
    mc.add_argument("--format", choices=FORMATS, required=True)
    mc.add_argument("--directions", nargs="+", default=["T->T"], help="any of T->T S->S S->T T->S")
    mc.add_argument("--extractor", type=Path, help="saved unit extractor (needed for spoken directions)")
    mc.add_argument("--limit", type=int, help="evaluate the first N items only")
    mc.add_argument("--context_gain", action="store_true",
                    help="also rank endings by log p(ending | context) - log p(ending) (scores every ending twice)")
    cra = tasks.add_parser("cra", help="context retrieval accuracy on a spoken corpus (u2u, u2t, t2u, t2t)")
    cra.add_argument("--corpus", type=Path, required=True, help="a spoken corpus saved with save_to_disk")
    cra.add_argument("--num", type=int, default=100, help="utterances (N of the N x N matrix)")
    cra.add_argument("--directions", nargs="+", default=["u2u", "u2t", "t2u", "t2t"])
    pelm = tasks.add_parser("pelm", help="PELM: continuations scored by an external LM, in four directions")
    pelm.add_argument("--corpus", type=Path, required=True, help="a spoken corpus saved with save_to_disk")
    pelm.add_argument("--external_lm", required=True, help="a causal LM (and tokenizer) directory or repo id")
    pelm.add_argument("--num", type=int, default=100, help="utterances to prompt with")
    pelm.add_argument("--directions", nargs="+", default=["T->T", "S->T"], help="any of T->T S->S S->T T->S")
    pelm.add_argument("--vocoder", help="a saved unit vocoder (needed for ->S directions)")
    pelm.add_argument("--transcriber", default="pocketsphinx", help="'pocketsphinx' or a transformers ASR model")
    pelm.add_argument("--language_model", help="pocketsphinx: an ARPA/binary LM instead of its own")
    pelm.add_argument("--max_new_tokens", type=int, help="default: 50 for text continuations, 250 for speech")
    pelm.add_argument("--temperature", type=float, default=0.8)
    pelm.add_argument("--top_k", type=int, default=25)
    pelm.add_argument("--seed", type=int, default=0)
    pelm.add_argument("--reduction", choices=("corpus", "utterance"), default="corpus",
                      help="one perplexity over all continuation tokens (corpus) or the mean of each continuation's "
                           "per-token loss (utterance, slamkit's GenPPL)")
    spoken = tasks.add_parser("spoken", help="a released spoken benchmark: sWUGGY, sBLIMP, s/tStoryCloze, SALMon")
    spoken.add_argument("--benchmark", choices=BENCHMARKS, required=True)
    spoken.add_argument("--data", required=True,
                        help="the release's folder, a local copy of its Hub files, or a Hub dataset id")
    spoken.add_argument("--extractor", type=Path, help="saved unit extractor (needed for spoken directions)")
    spoken.add_argument("--directions", nargs="+", default=["S->S"],
                        help="any of S->S T->T S->T T->S where the data has the text (StoryCloze's cross-modal files)")
    spoken.add_argument("--split",
                        help="sWUGGY/sBLIMP: dev (default) or test; StoryCloze Hub data: the split (default train)")
    spoken.add_argument("--subsets", nargs="+", help="SALMon: the subsets to score (default: all eight)")
    spoken.add_argument("--limit", type=int, help="score the first N pairs only (per SALMon subset)")
    for sub in (mc, cra):
        sub.add_argument("--no_prompt_cache", dest="use_prompt_cache", action="store_false",
                         help="score every (prompt, continuation) pair by a full forward instead of running each "
                              "prompt once (the same scores, slower: a check of the fast path)")
    for sub in (mc, cra, pelm, spoken):
        sub.add_argument("--model", type=Path, required=True, help="saved model directory (with its tokenizer)")
        sub.add_argument("--batch_size", type=int, default=16)
        sub.add_argument("--output", type=Path, required=True, help="writes OUTPUT.json and OUTPUT.md")
    parser.set_defaults(run=run)


def _text_items(arguments):
    from lst_speech.evaluation.multiple_choice_data import load_text_items

    items = load_text_items(arguments.data, arguments.format)
    return items[: arguments.limit] if arguments.limit else items


def run(arguments) -> dict:
    from lst_speech.evaluation.loading import load_model_and_tokenizer
    from lst_speech.tokenization.output_safety import check_apart

    inputs = [(f"--{name}", getattr(arguments, name, None)) for name in (
        "model", "data", "extractor", "corpus", "external_lm", "vocoder", "transcriber", "language_model")]
    for suffix in (".json", ".md"):  # files written by name: replaced if they exist, unless they are inputs
        check_apart(("--output", arguments.output.with_suffix(suffix)), *inputs, file=True)
    model, tokenizer = load_model_and_tokenizer(arguments.model)
    if arguments.task == "mc":
        from lst_speech.evaluation.multiple_choice import multiple_choice_accuracy
        from lst_speech.evaluation.multiple_choice_data import DIRECTIONS, spoken_items, text_items

        items = _text_items(arguments)
        synthesizer = extractor = None
        results = {}
        for direction in arguments.directions:
            if direction not in DIRECTIONS:
                raise ValueError(f"Unknown direction {direction!r}; choose from {DIRECTIONS}.")
            if direction == "T->T":
                direction_items = text_items(items)
            else:
                if arguments.extractor is None:
                    raise ValueError(f"Direction {direction} is spoken: pass --extractor (a saved unit extractor).")
                if synthesizer is None:
                    from lst_speech.tokenization.speech.espeak import EspeakSynthesizer
                    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor

                    synthesizer, extractor = EspeakSynthesizer(), load_unit_extractor(arguments.extractor)
                direction_items = spoken_items(items, direction, synthesizer, extractor)
            result = multiple_choice_accuracy(model, tokenizer, direction_items, arguments.batch_size,
                                              context_gain=arguments.context_gain, progress=direction,
                                              use_prompt_cache=arguments.use_prompt_cache)
            results[direction] = {k: v for k, v in result.items() if not k.startswith(("choices_", "correct_"))}
            logger.info("%s %s: %s", arguments.format, direction, results[direction])
        title = f"{arguments.format} ({arguments.data.name}), {len(items)} items"
    elif arguments.task == "pelm":
        results, title = _pelm(arguments, model, tokenizer)
    elif arguments.task == "spoken":
        results, title = _spoken(arguments, model, tokenizer)
    else:
        import datasets

        from lst_speech.evaluation.context_retrieval import context_retrieval_accuracy

        corpus = datasets.load_from_disk(str(arguments.corpus))
        candidates = corpus.select(range(min(arguments.num, len(corpus))))
        rows = [row for row in candidates if len(row["words"]) >= 2]
        if len(rows) < len(candidates):  # a prompt and a continuation need a word each
            logger.warning("CRA: %d of the first %d utterances have fewer than two words and are left out.",
                           len(candidates) - len(rows), len(candidates))
        results = context_retrieval_accuracy(model, tokenizer, rows, arguments.directions, arguments.batch_size,
                                             progress=True, use_prompt_cache=arguments.use_prompt_cache)
        title = f"CRA on {arguments.corpus.name}, N = {len(rows)}"
    _write(arguments.output, title, str(arguments.model), results)
    return results


def _pelm(arguments, model, tokenizer) -> tuple[dict, str]:
    import datasets

    from lst_speech.evaluation.pelm_runner import DIRECTIONS, pelm, spoken_prompts

    unknown = [d for d in arguments.directions if d not in DIRECTIONS]
    if unknown:
        raise ValueError(f"Unknown directions {unknown}; choose from {DIRECTIONS}.")
    transcriber = None
    if any(d.endswith("S") for d in arguments.directions):
        if arguments.vocoder is None:
            raise ValueError("Speech continuations (->S) are scored through a vocoder: pass --vocoder (a saved unit "
                             "vocoder; `lst vocoder train` makes one).")
        from transformers import AutoModel

        import lst_speech.tokenization.vocoder  # noqa: F401  (registers the vocoder with AutoModel)
        from lst_speech.evaluation.transcription.transcribers import UnitTranscriber, load_transcriber

        options = {"language_model": arguments.language_model} if arguments.language_model else {}
        vocoder = AutoModel.from_pretrained(arguments.vocoder).eval()
        transcriber = UnitTranscriber(vocoder, load_transcriber(arguments.transcriber, **options),
                                      units_are_deduplicated=tokenizer.deduplicate_units)
    corpus = datasets.load_from_disk(str(arguments.corpus))
    rows = [row for row in corpus.select(range(min(arguments.num, len(corpus)))) if len(row["words"]) >= 2]
    if len(rows) < min(arguments.num, len(corpus)):
        logger.warning("PELM: %d utterances have fewer than two words and are left out.",
                       min(arguments.num, len(corpus)) - len(rows))
    results = {}
    for direction in arguments.directions:
        prompts, transcripts, references = spoken_prompts(rows, direction)
        output_modality = "speech" if direction.endswith("S") else "text"
        max_new_tokens = arguments.max_new_tokens or (250 if output_modality == "speech" else 50)
        result = pelm(model, tokenizer, prompts, transcripts, references, arguments.external_lm, output_modality,
                      transcriber, arguments.temperature, arguments.top_k, max_new_tokens, arguments.seed,
                      arguments.batch_size, arguments.reduction)
        results[direction] = {k: v for k, v in result.items() if k != "continuations"}
        results[direction]["examples"] = result["continuations"][:3]
        results[direction]["reduction"] = arguments.reduction
        logger.info("PELM %s: perplexity %.1f [%.1f, %.1f] (reference %.1f), %d empty", direction,
                    result["perplexity"], *result["perplexity_ci95"], result["reference_perplexity"],
                    result["num_empty"])
    return results, f"PELM on {arguments.corpus.name}, {len(rows)} prompts, external LM {arguments.external_lm}"


def _spoken(arguments, model, tokenizer) -> tuple[dict, str]:
    from lst_speech.evaluation.benchmarks import common, salmon, sblimp, storycloze, swuggy

    extractor = common.load_extractor(arguments.extractor) if arguments.extractor else None
    limit = slice(arguments.limit)
    if arguments.benchmark == "salmon":
        if arguments.directions != ["S->S"]:
            raise ValueError(f"SALMon is speech only: its direction is S->S, not {arguments.directions}.")
        results = {}
        for subset in arguments.subsets or salmon.SUBSETS:
            pairs = salmon.load_salmon(arguments.data, subset)[limit]
            results[subset] = common.score_pairs(model, tokenizer, pairs, ["S->S"], extractor,
                                                 common.summarize_accuracy, arguments.batch_size, subset)["S->S"]
            logger.info("SALMon %s: %s", subset, results[subset])
        return results, f"SALMon ({arguments.data}), S->S, per subset"
    if arguments.benchmark == "swuggy":
        pairs, summarize = swuggy.load_swuggy(arguments.data, arguments.split or "dev"), swuggy.summarize_swuggy
    elif arguments.benchmark == "sblimp":
        pairs, summarize = sblimp.load_sblimp(arguments.data, arguments.split or "dev"), sblimp.summarize_sblimp
    else:  # sStoryCloze and tStoryCloze share a layout and a rule
        pairs = storycloze.load_story_cloze(arguments.data, arguments.split or "train")
        summarize = common.summarize_accuracy
    pairs = pairs[limit]
    results = common.score_pairs(model, tokenizer, pairs, arguments.directions, extractor, summarize,
                                 arguments.batch_size, arguments.benchmark)
    for direction, row in results.items():
        logger.info("%s %s: %s", arguments.benchmark, direction,
                    {k: v for k, v in row.items() if not isinstance(v, list) or k.endswith("_ci95")})
    return results, f"{arguments.benchmark} ({arguments.data}), {len(pairs)} pairs of files"


def _write(output: Path, title: str, model: str, results: dict) -> None:
    from lst_speech.tokenization.atomic_files import write_text_atomically

    write_text_atomically(output.with_suffix(".json"),
                          json.dumps({"model": model, "title": title, "results": results}, indent=2))
    # An accuracy and its interval share a cell: `62.0% [48.2, 74.1]`.
    columns = sorted({key for row in results.values() for key, value in row.items()
                      if not key.endswith("_ci95") and not isinstance(value, (list, dict))})
    note = ("Scores with their 95% intervals (Wilson for accuracies, bootstrap over pairs for pair scores with ties "
            "or voice averages, bootstrap over continuations for perplexities).")
    lines = [f"# {title}", "", f"model: `{model}`", "", note, "",
             "| direction | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for direction, row in results.items():
        cells = []
        for column in columns:
            value = row.get(column, "")
            if f"{column}_ci95" in row and "perplexity" in column:
                cells.append("%.1f [%.1f, %.1f]" % (value, *row[f"{column}_ci95"]))
            elif f"{column}_ci95" in row:
                cells.append(format_accuracy(value, row[f"{column}_ci95"]))
            else:
                cells.append(f"{value:.4f}" if isinstance(value, float) else str(value))
        lines.append(f"| {direction} | " + " | ".join(cells) + " |")
    write_text_atomically(output.with_suffix(".md"), "\n".join(lines) + "\n")
