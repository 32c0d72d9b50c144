"""Spoken corpora from recorded speech: a folder of audio + a transcript file -> the spoken corpus's rows.

The rows are those of `spoken_corpus` (`{id, text, words, units, word_spans, character_starts}`), so every
builder that reads the espeak corpus reads these too; word times come from one of our aligners run on each
recording and its transcript (pocketsphinx, or CTC, which also gives `character_starts`; pocketsphinx leaves
them null, and `lst data --piece_timing proportional` fills them). Units come from a saved extractor or an
MFCC k-means one fitted on the corpus's first recordings.

The installed Asterisk prompts (`transcript_files.asterisk_source`) are one such folder. A transcript with no audio, a recording that cannot be read or
aligned, or a transcript that only describes a sound (`[beep tone]`, `(5 seconds of silence)`) stops the build with one line naming the
file and row, or with `on_error="skip"` is listed in the returned failures: never silently dropped.
`held_out_split` splits such a corpus by prompt name (`transcript_files.held_out_by_prompt`: a hash of each
name), so a recording that fails to align moves no other one between the splits.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import datasets
from tqdm.auto import tqdm

from ..speech.audio import duration_seconds, read_audio
from ..speech.character_times import character_frames
from .spoken_corpus import FEATURES
from .transcript_files import AUDIO_NAME_SUFFIXES, describes_a_sound, held_out_by_prompt, read_transcript_file

logger = logging.getLogger(__name__)

@dataclasses.dataclass
class Recording:
    name: str  # the audio's path under the folder, without its suffix: the row's id
    audio: Path
    text: str
    row: int  # of the transcript file


def _audio_by_name(root: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file()):
        name = path.relative_to(root).with_suffix("").as_posix()
        if name in found:
            raise ValueError(f"{found[name]} and {path} are both audio {name!r}: pass one --audio_suffix.")
        found[name] = path
    return found


def recordings(audio_root: str | Path, transcript_file: str | Path, suffixes: tuple[str, ...] | None = None,
               failures: list | None = None, limit: int | None = None) -> list[Recording]:
    """The first `limit` (default all) of the transcript file's entries that have audio under `audio_root`, in
    the file's order. Entries before them without audio, or whose text only describes a sound, raise (`failures`
    None) or are appended to `failures`."""
    audio_root, transcript_file = Path(audio_root), Path(transcript_file)
    if not audio_root.is_dir():
        raise ValueError(f"--audio {audio_root} is not a folder of recordings.")
    suffixes = tuple(s.lower() for s in (suffixes or AUDIO_NAME_SUFFIXES))
    audio = _audio_by_name(audio_root, suffixes)
    entries = read_transcript_file(transcript_file)
    # A list may name a file in another case (Asterisk's Spanish `digits/1f` for `digits/1F.g722`): such an entry
    # takes the one file of that name in any case that no entry names exactly, and the file's own name.
    unclaimed: dict[str, list[str]] = {}
    for file_name in audio.keys() - entries.keys():
        unclaimed.setdefault(file_name.casefold(), []).append(file_name)
    found = []
    for name, (text, row) in entries.items():
        if len(found) == limit:
            break
        reason = None
        if name not in audio and len(unclaimed.get(name.casefold(), [])) == 1:
            logger.info("%s, row %d: %r is the audio file %r", transcript_file, row, name, unclaimed[name.casefold()][0])
            name = unclaimed[name.casefold()][0]
        if name not in audio:
            reason = f"no audio {name}{{{','.join(suffixes)}}} under {audio_root}"
        elif describes_a_sound(text):
            reason = f"the transcript {text!r} describes a sound, not speech"
        if reason is None:
            found.append(Recording(name, audio[name], text, row))
        else:
            _fail(failures, str(transcript_file), row, reason)
    logger.info("%d recordings with transcripts under %s (%d audio files have none)", len(found), audio_root,
                len(audio.keys() - entries.keys() - {item.name for item in found}))
    return found


def prompt_split(audio_dir: str | Path, transcripts: str | Path, held_out_every: int) -> tuple[list, list]:
    """(train, held_out) `Recording`s, in sorted name order, of the transcript file's prompts that have audio;
    the described sounds (`[beep tone]`) and prompts without audio are left out with a warning each, as
    `lst corpus --on_error skip` leaves them."""
    items = sorted(recordings(audio_dir, transcripts, failures=[]), key=lambda item: item.name)
    held = held_out_by_prompt([item.name for item in items], held_out_every)
    if not held:
        raise ValueError(f"{transcripts} names {len(items)} prompts with audio under {audio_dir}: too few to hold one "
                         f"in {held_out_every} out and train on the rest.")
    return [item for item in items if item.name not in held], [item for item in items if item.name in held]


def _fail(failures: list | None, file: str, row: int | None, reason: str) -> None:
    where = f"{file}, row {row}" if row is not None else file
    if failures is None:
        raise ValueError(f"{where}: {reason}.")
    failures.append({"file": file, "row": row, "reason": reason})
    logger.warning("skipped %s: %s", where, reason)


def recorded_rows(items: list[Recording], extractor, aligner, transcript_file: str | Path,
                  failures: list | None = None, progress: bool = True):
    """Rows of the spoken-corpus schema, one per recording that reads and aligns (a generator)."""
    for item in tqdm(items, desc="aligning", disable=not progress, unit="utt"):
        try:
            waveform, rate = read_audio(item.audio)
            units = extractor(waveform, rate)
            alignment = aligner.align(waveform, rate, item.text)
            spans = alignment.frame_spans(extractor.frame_rate, len(units), duration_seconds(waveform, rate))
        except (ValueError, RuntimeError) as error:
            _fail(failures, str(item.audio), item.row, f"{error} (transcript {transcript_file}, row {item.row})")
            continue
        characters = (None if alignment.character_times is None else
                      character_frames(alignment.character_times, spans, extractor.frame_rate))
        yield {"id": item.name, "text": item.text, "words": list(alignment.words), "units": units.tolist(),
               "word_spans": spans.tolist(), "character_starts": characters}


def build_recorded_corpus(audio_root, transcript_file, aligner, extractor=None, num_units: int = 100,
                          fit_utterances: int = 300, limit: int | None = None, on_error: str = "stop",
                          suffixes: tuple[str, ...] | None = None, seed: int = 0, progress: bool = True):
    """`(dataset, extractor, failures)` for the first `limit` recordings (all by default) of a folder and its
    transcript file. `aligner` has `align(waveform, rate, text) -> WordAlignment`; without `extractor`, an MFCC
    k-means one of `num_units` units is fitted on the first `fit_utterances` recordings."""
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}.")
    failures = [] if on_error == "skip" else None
    items = recordings(audio_root, transcript_file, suffixes, failures, limit)
    if not items:
        raise ValueError(f"No recording under {audio_root} has a transcript in {transcript_file}.")
    if extractor is None:
        from ..speech.mfcc_units import MfccUnitExtractor

        fit_audio = [read_audio(item.audio) for item in items[:fit_utterances]]
        if len({rate for _, rate in fit_audio}) > 1:
            raise ValueError(f"The recordings under {audio_root} have several sampling rates; resample them first.")
        extractor = MfccUnitExtractor(num_units).fit([w for w, _ in fit_audio], fit_audio[0][1], seed=seed)
    rows = list(recorded_rows(items, extractor, aligner, transcript_file, failures, progress))
    if not rows:
        raise ValueError(f"None of the {len(items)} recordings under {audio_root} could be aligned; see the failures.")
    return datasets.Dataset.from_list(rows, features=FEATURES), extractor, failures or []


def held_out_split(corpus: datasets.Dataset, every: int) -> datasets.DatasetDict:
    """`{train, held_out}` of `corpus`, in its order: a row is held out when `held_out_by_prompt` holds its id out
    (which depends on the id alone, not on which other recordings aligned)."""
    held_out = held_out_by_prompt(corpus["id"], every)
    flags = [name in held_out for name in corpus["id"]]
    return datasets.DatasetDict({
        "train": corpus.select([i for i, flag in enumerate(flags) if not flag]),
        "held_out": corpus.select([i for i, flag in enumerate(flags) if flag])})
