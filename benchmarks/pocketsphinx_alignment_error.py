"""pocketsphinx's word alignment error against espeak-ng's ground-truth word times.

KJV verses are synthesised with libespeak-ng (whose WORD events give each word's start), aligned by
`PocketsphinxAligner` on the transcript, regrouped into espeak's words, and compared word by word on start
times. Verses with words missing from pocketsphinx's dictionary are skipped and counted (archaic KJV words
such as "firmament" or "goeth" are not in it); the first `--num_utterances` alignable verses are used.

    python benchmarks/pocketsphinx_alignment_error.py [--num_utterances 50]
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from lst_speech.tokenization.alignment.pocketsphinx_aligner import PocketsphinxAligner
from lst_speech.tokenization.corpora.sample_text import kjv_verses
from lst_speech.tokenization.speech.espeak import EspeakSynthesizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_utterances", type=int, default=50)
    parser.add_argument("--max_words", type=int, default=30)
    arguments = parser.parse_args()

    retries = []

    class CountRetries(logging.Handler):
        def emit(self, record):
            retries.append(record.getMessage())

    logging.getLogger("lst_speech.tokenization.alignment.pocketsphinx_aligner").addHandler(CountRetries())
    logging.getLogger("lst_speech.tokenization.alignment.pocketsphinx_aligner").setLevel(logging.INFO)

    synthesizer, aligner = EspeakSynthesizer(), PocketsphinxAligner()
    errors_ms, skipped_oov, failed = [], 0, 0
    for verse in kjv_verses():
        if len(errors_ms) == arguments.num_utterances:
            break
        if len(verse.split()) > arguments.max_words:
            continue
        speech = synthesizer.synthesize(verse)
        try:
            alignment = aligner.align(speech.waveform, speech.sampling_rate, " ".join(speech.words))
        except ValueError:  # words missing from the dictionary
            skipped_oov += 1
            continue
        except RuntimeError:
            failed += 1
            continue
        alignment = alignment.regroup(speech.words)
        errors_ms.append(1000 * np.abs(alignment.times[:, 0] - speech.word_times[:, 0]))
    per_word = np.concatenate(errors_ms)
    print(f"utterances aligned: {len(errors_ms)} ({per_word.size} words); skipped for dictionary gaps: "
          f"{skipped_oov}; failed even with wide beams: {failed}; wide-beam retries: {len(retries)}")
    print(f"word start error vs espeak: mean {per_word.mean():.1f} ms, median {np.median(per_word):.1f} ms, "
          f"max {per_word.max():.1f} ms, 95th percentile {np.percentile(per_word, 95):.1f} ms")


if __name__ == "__main__":
    main()
