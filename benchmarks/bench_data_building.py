"""Examples/s for building CST (both orders) + AST rows from 10,000 aligned utterances, num_proc 1 vs 2.

Utterances are KJV verses with word-aligned stand-in units at 50 Hz (3-7 frames per word plus 0-3 frames
of silence, ~250 frames per verse), so the run measures the data pipeline rather than espeak. Arrow caching
is disabled so every run really builds.

    python benchmarks/bench_data_building.py [--num_utterances 10000]
"""

from __future__ import annotations

import argparse
import itertools
import time

import datasets
import numpy as np

from lst_speech.tokenization import SpeechUnitTextTokenizer
from lst_speech.tokenization.corpora.sample_text import kjv_verses
from lst_speech.training.data.pipeline import build_format

FORMATS = ("cst_speech_text", "cst_text_speech", "ast")


def aligned_rows(verses: list[str], num_units: int, seed: int = 0) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for verse in verses:
        words = verse.split()
        lengths, gaps = rng.integers(3, 8, len(words)), rng.integers(0, 4, len(words) + 1)
        starts = np.cumsum(np.r_[gaps[0], (lengths + gaps[1:])[:-1]])
        spans = np.stack([starts, starts + lengths], 1)
        rows.append({"text": verse, "words": words, "word_spans": spans.tolist(),
                     "units": rng.integers(0, num_units, int(spans[-1, 1] + gaps[-1])).tolist()})
    return datasets.Dataset.from_list(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_utterances", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    arguments = parser.parse_args()
    datasets.disable_caching()
    datasets.disable_progress_bars()
    verses = [v for v in itertools.islice(kjv_verses(), 40_000) if len(v.split()) <= 40]
    tokenizer = SpeechUnitTextTokenizer.train(verses[:5000], vocab_size=2000, model_type="unigram", num_units=500)
    rows = aligned_rows(verses[: arguments.num_utterances], num_units=500)
    print(f"{len(rows)} utterances, mean {np.mean([len(u) for u in rows['units']]):.0f} frames")
    rates = {}
    for num_proc in (1, 2):
        best = float("inf")
        for _ in range(arguments.repeats):
            start = time.perf_counter()
            for format in FORMATS:
                build_format(rows, tokenizer, format, num_proc=num_proc if num_proc > 1 else None)
            best = min(best, time.perf_counter() - start)
        rates[num_proc] = len(FORMATS) * len(rows) / best
        print(f"num_proc={num_proc}: {rates[num_proc]:,.0f} examples/s ({best:.2f} s for {len(FORMATS)} x {len(rows)})")
    print(f"speed-up with 2 processes: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
