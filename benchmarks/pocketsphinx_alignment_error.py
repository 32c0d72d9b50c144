"""Our aligners' word alignment error against espeak-ng's ground-truth word times.

KJV verses are synthesised with libespeak-ng (whose WORD events give each word's start), aligned by each of
`--aligners` (what `--aligner` takes: `pocketsphinx`, `whisper`, `ctc:CHECKPOINT`) on the transcript, regrouped
into espeak's words, and compared word by word on start times: mean, median, 90th percentile and max of |error|,
and the median signed error (positive: later than espeak); the median comes with a 95% bootstrap interval over verses
(a verse's words share its voice and pace, so verses are the independent draws), and each aligner after the first
with its paired difference in median error from the first (the same verses resampled). A verse is used only when
every aligner aligns it, so the rows share their words; verses that an aligner refuses (pocketsphinx: words missing from its dictionary,
archaic KJV words such as "firmament" or "goeth") or fails on are skipped and counted against that aligner; the
first `--num_utterances` verses that all align are used.

    python benchmarks/pocketsphinx_alignment_error.py [--num_utterances 50] [--aligners pocketsphinx whisper]
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from lst_speech.evaluation.uncertainty import bootstrap_interval
from lst_speech.tokenization.alignment.sources import make_aligner
from lst_speech.tokenization.corpora.sample_text import kjv_verses
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_utterances", type=int, default=50)
    parser.add_argument("--max_words", type=int, default=30)
    parser.add_argument("--aligners", nargs="+", default=["pocketsphinx", "whisper"],
                        help="pocketsphinx, whisper[:<CTranslate2 Whisper folder>], ctc:<Wav2Vec2ForCTC or `lst aligner train` folder>")
    arguments = parser.parse_args()

    retries = []

    class CountRetries(logging.Handler):
        def emit(self, record):
            retries.append(record.getMessage())

    logging.getLogger("lst_speech.tokenization.alignment.pocketsphinx_aligner").addHandler(CountRetries())
    logging.getLogger("lst_speech.tokenization.alignment.pocketsphinx_aligner").setLevel(logging.INFO)

    synthesizer = EspeakSynthesizer()
    aligners = {name: make_aligner(name) for name in arguments.aligners}
    errors_ms = {name: [] for name in aligners}  # per used verse: signed start errors, + is late
    refused, failed = dict.fromkeys(aligners, 0), dict.fromkeys(aligners, 0)
    for verse in kjv_verses():
        if len(next(iter(errors_ms.values()))) == arguments.num_utterances:
            break
        if len(verse.split()) > arguments.max_words:
            continue
        speech = synthesizer.synthesize(verse)
        verse_errors = {}
        for name, aligner in aligners.items():
            try:
                alignment = aligner.align(speech.waveform, speech.sampling_rate, " ".join(speech.words))
            except ValueError:  # refused: pocketsphinx's dictionary gaps
                refused[name] += 1
                break
            except RuntimeError:  # pocketsphinx: no alignment even with wide beams
                failed[name] += 1
                break
            alignment = alignment.regroup(speech.words)
            verse_errors[name] = 1000 * (alignment.times[:, 0] - speech.word_times[:, 0])
        else:
            for name, errors in verse_errors.items():
                errors_ms[name].append(errors)
    print(f"verses aligned by every aligner: {len(errors_ms[arguments.aligners[0]])}"
          + (f"; pocketsphinx wide-beam retries: {len(retries)}" if "pocketsphinx" in aligners else ""))
    print("| aligner | verses | words | mean | median [95% CI] | 90th percentile | max | median signed | verses "
          "refused | verses failed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    verses = np.arange(len(errors_ms[arguments.aligners[0]]))

    def median_error(name, chosen):
        return np.median(np.abs(np.concatenate([errors_ms[name][i] for i in chosen])))

    for name, per_verse in errors_ms.items():
        signed = np.concatenate(per_verse)
        error = np.abs(signed)
        low, high = bootstrap_interval(lambda chosen, name=name: median_error(name, chosen), verses)
        print(f"| {name} | {len(per_verse)} | {error.size} | {error.mean():.1f} ms | {np.median(error):.1f} ms "
              f"[{low:.1f}, {high:.1f}] | {np.percentile(error, 90):.1f} ms | {error.max():.1f} ms | "
              f"{np.median(signed):+.1f} ms | {refused[name]} | {failed[name]} |")
    first = arguments.aligners[0]
    for name in arguments.aligners[1:]:
        def difference(chosen, name=name):
            return median_error(name, chosen) - median_error(first, chosen)

        low, high = bootstrap_interval(difference, verses)
        print(f"median error, {name} - {first}: {difference(verses):+.1f} ms [{low:+.1f}, {high:+.1f}] (paired, "
              "over verses)")

if __name__ == "__main__":
    main()
