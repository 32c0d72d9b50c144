"""`lst vocoder`: train a unit vocoder, score its intelligibility, turn unit files into WAVs.

    lst vocoder train --output_dir vocoder/ [--audio_dir wavs/ --extractor DIR] ...   (lst_speech.training.vocoder.train_vocoder)
    lst vocoder train --output_dir vocoder/ --asterisk en --extractor DIR   # or --audio_dir DIR --transcripts FILE
    lst vocoder evaluate --run vocoder/ [--transcriber pocketsphinx|whisper|MODEL] [--language_model auto|none|FILE]
    lst vocoder synthesize --vocoder vocoder/vocoder --units units.jsonl --output_dir wavs/

`evaluate` vocodes the run's held-out units and writes `intelligibility.json` in the run: pocketsphinx's (or
Whisper's, or any transformers recogniser's) WER and CER on the vocoded and the original audio, and their paired
difference, each with a 95% bootstrap interval over utterances. A vocoder trained with a transcript file
(`--transcripts`, or `--asterisk en` for the installed Asterisk prompts) is scored on its held-out prompts: one in
`--held_out_every` (10), by a hash of the name, never heard in training. `auto` gives pocketsphinx a bigram LM of
the run's training transcripts (lst_speech.evaluation.transcription.ngram_lm). `synthesize` reads the JSON
lines `lst units extract` writes (`units`, and `durations` for deduplicated units) and writes `<stem>.wav`
into a new folder: one that holds other files (say, the audio the units came from, whose names the WAVs share)
is refused, and an earlier `synthesize` output is replaced whole.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger("lst.vocoder")
TASKS = ("train", "evaluate", "synthesize")


def evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lst vocoder evaluate")
    parser.add_argument("--run", type=Path, required=True, help="an `lst vocoder train` output directory")
    parser.add_argument("--transcriber", default="pocketsphinx",
                        help="'pocketsphinx', 'whisper' (tiny.en, offline), a CTranslate2 Whisper folder or a "
                             "transformers ASR model")
    parser.add_argument("--language_model", default="auto",
                        help="pocketsphinx LM: 'auto' (bigram of the training transcripts), 'none' (its own), a file")
    parser.add_argument("--limit", type=int, help="score only the first N held-out utterances")
    return parser


def synthesize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lst vocoder synthesize")
    parser.add_argument("--vocoder", required=True, help="a saved vocoder (path or repo id)")
    parser.add_argument("--units", type=Path, required=True, help="JSON lines with `units` (and `path`, `durations`)")
    parser.add_argument("--output_dir", type=Path, required=True)
    return parser


def run_evaluate(arguments) -> dict:
    import datasets
    from transformers import AutoModel

    import lst_speech.tokenization.vocoder  # noqa: F401  (registers the vocoder with AutoModel)
    from lst_speech.evaluation.transcription.transcribers import load_transcriber
    from lst_speech.evaluation.transcription.vocoder_intelligibility import intelligibility
    from lst_speech.tokenization.atomic_files import write_text_atomically

    run = arguments.run
    for needed in ("vocoder", "data"):
        if not (run / needed).is_dir():
            raise ValueError(f"{run} has no {needed}/: pass the output directory of a finished `lst vocoder train`.")
    splits = datasets.load_from_disk(str(run / "data"))
    rows = splits["held_out"]
    rows = [r for r in rows if r["text"]]
    if not rows:
        raise ValueError(f"{run}: no held-out utterance has a transcript (<stem>.txt beside the audio, or train with "
                         "--transcripts) to score.")
    if arguments.limit is not None:
        if arguments.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {arguments.limit}.")
        rows = rows[: arguments.limit]
    options = {}
    if arguments.transcriber == "pocketsphinx" and arguments.language_model != "none":
        if arguments.language_model == "auto":
            from lst_speech.evaluation.transcription.ngram_lm import write_arpa_bigram

            options["language_model"] = str(run / "train_transcripts.arpa")
            texts = [t for t in splits["train"]["text"] if t]
            if not texts:
                raise ValueError(f"{run}: the training audio has no transcripts for an LM; pass --language_model none.")
            write_arpa_bigram(texts, options["language_model"])
        else:
            options["language_model"] = arguments.language_model
    vocoder = AutoModel.from_pretrained(str(run / "vocoder")).eval()
    result = intelligibility(vocoder, rows, load_transcriber(arguments.transcriber, **options))
    result.update(transcriber=arguments.transcriber,  # a language model is pocketsphinx's alone
                  language_model=arguments.language_model if arguments.transcriber == "pocketsphinx" else None)
    write_text_atomically(run / "intelligibility.json", json.dumps(result, indent=2))
    logger.info("WER vocoded %.1f%% %s vs original %.1f%% %s over %d held-out utterances",
                100 * result["vocoded"]["wer"], _percent(result["vocoded"]["wer_interval"]),
                100 * result["original"]["wer"], _percent(result["original"]["wer_interval"]), result["utterances"])
    return result


def _percent(interval) -> str:
    return f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def run_synthesize(arguments) -> list[Path]:
    from transformers import AutoModel

    import lst_speech.tokenization.vocoder  # noqa: F401
    from lst_speech.tokenization.atomic_files import atomic_directory
    from lst_speech.tokenization.output_safety import check_apart, check_replaceable

    owner = "lst vocoder synthesize"
    check_apart(("--output_dir", arguments.output_dir), ("--vocoder", arguments.vocoder), ("--units", arguments.units))
    check_replaceable(arguments.output_dir, owner)
    vocoder = AutoModel.from_pretrained(arguments.vocoder).eval()
    with atomic_directory(arguments.output_dir, owner) as partial:
        written = _synthesize_into(partial, vocoder, arguments.units)
    logger.info("wrote %d WAV files to %s", len(written), arguments.output_dir)
    return [arguments.output_dir / name for name in written]


def _synthesize_into(folder: Path, vocoder, units_file: Path) -> list[str]:
    import numpy as np
    import soundfile

    written = []
    for number, line in enumerate(units_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            units = np.asarray(row["units"], dtype=np.int64)
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{units_file} line {number}: not a JSON object with a `units` list ({error}).")
        name = Path(row.get("path") or f"utterance{number:06d}").stem + ".wav"
        waveform = vocoder.synthesize(units, row.get("durations"))
        soundfile.write(str(folder / name), waveform, vocoder.config.sampling_rate, format="WAV")
        written.append(name)
    return written


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in TASKS:
        raise ValueError(f"lst vocoder needs a task, one of {TASKS}: `lst vocoder train --output_dir DIR`.")
    task, rest = argv[0], argv[1:]
    if task == "train":
        from lst_speech.training.vocoder.train_vocoder import main as train_main

        train_main(rest)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if task == "evaluate":
        run_evaluate(evaluate_parser().parse_args(rest))
    else:
        run_synthesize(synthesize_parser().parse_args(rest))
