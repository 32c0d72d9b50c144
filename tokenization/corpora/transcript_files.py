"""Transcript files of recorded corpora: which audio file says what.

Two layouts, each read into `{name: (text, row)}` (the row is the line number, for error messages):

- `name: text` lines, as Asterisk's prompt lists write them (`core-sounds-en.txt.gz`; gzip is read as is);
  `;` starts a comment line. The name is the audio file's path under the audio folder without its suffix
  (`digits/1` for `digits/1.g722`).
- CSV with a header naming a file column (`file`, `path`, `name` or `id`) and a text column (`text`,
  `transcript` or `sentence`); the file column may keep the audio suffix.

A line that is not one of these, an empty text, or a name given twice is an error naming the file and row
(`ASTERISK_ERRATA` corrects the one such row of the installed Asterisk lists; their few `name:` lines with no
text are read as no transcript, so those files are counted among the audio without one).

`ASTERISK` names the installed Asterisk prompt sets (Debian `asterisk-core-sounds-<lang>-g722` with
`asterisk-core-sounds-<lang>` for the transcript list; CC-BY-SA-3.0, one speaker per language): English is 553
spoken prompts, 24 minutes of one US English voice (Allison Smith). The Spanish (Mexican), French (Canadian),
Italian and Russian sets have one speaker each too (`ASTERISK_SETS`: speaker and licence; Italian and Russian
are CC-BY-3.0). Their lists are UTF-8 `name: text` lines like English's (the Italian one starts with a
byte-order mark, which is skipped) and mark sounds the same way.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from pathlib import Path, PurePosixPath

FILE_COLUMNS, TEXT_COLUMNS = ("file", "path", "name", "id"), ("text", "transcript", "sentence")
AUDIO_NAME_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".g722")

ASTERISK_ROOT = Path("/usr/share/asterisk/sounds")
# language -> (audio folder under ASTERISK_ROOT, speaker, licence, the espeak-ng voice that reads its transcripts
# for the espeak-dtw aligner: Mexican Spanish gets the Latin American one; Canadian French has none of its own),
# as the Debian packages' copyright file states them
ASTERISK_SETS = {
    "en": ("en_US_f_Allison", "Allison Smith", "cc-by-sa-3.0", "en-us"),
    "es": ("es_MX_f_Allison", "Allison Smith", "cc-by-sa-3.0", "es-419"),
    "fr": ("fr_CA_f_June", "June Wallack", "cc-by-sa-3.0", "fr"),
    "it": ("it_IT_m_Carlo", "Carlo Flora", "cc-by-3.0", "it"),
    "ru": ("ru_RU_f_IvrvoiceRU", "ivrvoice.ru (Maxim Topal)", "cc-by-3.0", "ru"),
}
ASTERISK = {  # language -> (audio folder, transcript file) as the Debian packages install them
    language: (ASTERISK_ROOT / folder,
               Path(f"/usr/share/doc/asterisk-core-sounds-{language}/core-sounds-{language}.txt.gz"))
    for language, (folder, *_) in ASTERISK_SETS.items()
}
# Rows of the installed lists that name the wrong file: (row, name as written, the file it transcribes)
ASTERISK_ERRATA = {"es": ((121, "digits/0", "digits/10"),)}  # "digits/0: diez" follows "digits/0: cero"


def asterisk_source(language: str = "en") -> tuple[Path, Path]:
    """The installed Asterisk prompts of `language`: (audio folder, transcript file), or an error saying what to
    install."""
    if language not in ASTERISK:
        raise ValueError(f"No Asterisk prompt set {language!r}; known: {sorted(ASTERISK)}.")
    audio, transcripts = ASTERISK[language]
    if not audio.is_dir() or not transcripts.is_file():
        raise ValueError(f"The Asterisk {language} prompts are not installed ({audio} / {transcripts}): "
                         f"`apt-get install asterisk-core-sounds-{language}-g722 asterisk-core-sounds-{language}` "
                         "(scripts/setup_env.sh does).")
    return audio, transcripts


def held_out_by_prompt(names, every: int = 10) -> set[str]:
    """The prompts kept out of training, the same for every model trained on a prompt set: those whose name's
    CRC-32 is `every - 1` modulo `every` (about one in `every`). A prompt's side depends on its name alone, so
    adding, dropping or failing other prompts never moves it; a position in the sorted list did (two prompts
    read as sounds moved 47 of 55 held-out English prompts on 7 December 2026)."""
    if every < 2:
        raise ValueError(f"Holding out one prompt in every {every} leaves nothing to train on; give 2 or more.")
    return {name for name in names if zlib.crc32(name.encode("utf-8")) % every == every - 1}


def describes_a_sound(text: str) -> bool:
    """A transcript wholly in brackets, parentheses or angle brackets (`[beep tone]`, `(5 seconds of silence)`,
    `<beep ascending>`) names a sound, not words spoken."""
    return (text[:1], text[-1:]) in (("[", "]"), ("(", ")"), ("<", ">"))


def _text_of(path: Path) -> str:
    try:
        raw = path.read_bytes()
        return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
        raise ValueError(f"{path}: cannot read it as a (gzipped) UTF-8 transcript file ({error}).") from error


def _name(value: str) -> str:
    """An audio name as the corpus matches it: forward slashes, no leading `./`, no audio suffix."""
    name = PurePosixPath(value.strip().replace("\\", "/"))
    return str(name.with_suffix("") if name.suffix.lower() in AUDIO_NAME_SUFFIXES else name)



def read_transcript_file(path: str | Path) -> dict[str, tuple[str, int]]:
    """`{audio name: (transcript, row)}` from a `name: text` list or a CSV file (chosen by a `.csv` suffix)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Transcript file {path} does not exist.")
    text = _text_of(path)
    entries: dict[str, tuple[str, int]] = {}
    errata = {(row, wrong): right for language, fixes in ASTERISK_ERRATA.items() if path == ASTERISK[language][1]
              for row, wrong, right in fixes}
    asterisk_list = path in {transcripts for _, transcripts in ASTERISK.values()}

    def add(name: str, transcript: str, row: int) -> None:
        transcript = " ".join(transcript.split())
        if not name or not transcript:
            raise ValueError(f"{path}, row {row}: {'no audio name' if not name else f'{name!r} has an empty text'}.")
        if name in entries:
            raise ValueError(f"{path}, row {row}: {name!r} was already given a transcript in row {entries[name][1]}.")
        entries[name] = (transcript, row)

    if path.name.lower().removesuffix(".gz").endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        file_column = next((h for h in FILE_COLUMNS if h in header), None)
        text_column = next((h for h in TEXT_COLUMNS if h in header), None)
        if file_column is None or text_column is None:
            raise ValueError(f"{path}, row 1: the CSV header {header} needs a file column ({'/'.join(FILE_COLUMNS)}) "
                             f"and a text column ({'/'.join(TEXT_COLUMNS)}).")
        reader.fieldnames = header
        for record in reader:
            row = reader.line_num
            if None in record or record.get(text_column) is None:
                raise ValueError(f"{path}, row {row}: {len(header)} columns expected.")
            add(_name(record[file_column]), record[text_column], row)
    else:
        for row, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            name, colon, transcript = line.partition(":")
            if not colon:
                raise ValueError(f"{path}, row {row}: {line[:60]!r} is not a 'name: text' line.")
            if asterisk_list and not transcript.strip():
                continue  # the installed lists name a few files with no text ("dir-welcome:"): none to align to
            name = _name(name)
            add(errata.get((row, name), name), transcript, row)
    if not entries:
        raise ValueError(f"{path} holds no transcripts.")
    return entries
