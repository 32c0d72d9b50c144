"""Average speech patch lengths of every patching variant on the built-in corpus, next to the LST paper's.

KJV verses spoken by espeak-ng (50 Hz MFCC k-means units, not deduplicated, as LST), a joint tokenizer
trained on the verses' text (the main job's vocabulary size), speech-only documents (`ulm`), and the patches
each variant makes of them. The paper's numbers are HuBERT units at 25 Hz on LibriSpeech-style speech with
CTC word alignments and Llama-2 BPE (`../shared/research/lst_blt.md`); ours are 50 Hz units of synthetic
speech, so absolute lengths are about twice the paper's and the ratios between variants are what compare.

    python benchmarks/patch_lengths.py [--num_utterances 300] [--vocab_size 1000]
"""

from __future__ import annotations

import argparse

import numpy as np

from lst_speech.modeling_lst.patching import patch_starts
from lst_speech.tokenization import SpeechUnitTextTokenizer
from lst_speech.tokenization.corpora.sample_text import kjv_verses
from lst_speech.tokenization.corpora.spoken_corpus import sample_spoken_corpus
from lst_speech.training.data.collator import PackedCollator
from lst_speech.training.data.pipeline import build_format

# (variant, aligned_by, silences, the paper's average tokens per patch at 25 Hz)
VARIANTS = [
    ("static, patch size 4", None, None, "4 (by construction)"),
    ("aligned, silences separate: word patches", "word", "separate", "5.8"),
    ("aligned, silences separate: silence patches", "word", "separate", "3.7"),
    ("aligned, silences merged", "word", "merged", "9.4"),
    ("bpe, silences separate: piece patches", "piece", "separate", "5.0"),
    ("bpe, silences merged", "piece", "merged", "not reported"),
]


def speech_patch_lengths(rows: list[dict], pad_id: int, aligned_by, silences, kind: str = "all") -> np.ndarray:
    """Lengths of the speech patches of the rows; `kind` keeps the patches inside words, or outside them."""
    batch = PackedCollator(pad_id, aligned_by or "word", silences or "separate")(rows)
    mode = "static" if aligned_by is None else ("bpe" if aligned_by == "piece" else "aligned")
    starts = patch_starts(mode, batch["modality_mask"], 4, 10_000, batch["aligned_boundaries"])
    lengths = []
    for row, row_starts in zip(rows, starts):
        speech = np.asarray(row["modality_mask"], dtype=bool)
        in_word = np.zeros(len(speech), dtype=bool)
        for start, end in row["word_spans"]:
            in_word[start:end] = True
        positions = np.flatnonzero(row_starts[: len(speech)].numpy())
        for first, end in zip(positions, np.r_[positions[1:], len(speech)]):
            if not speech[first] or (kind == "words" and not in_word[first]) or (kind == "silences" and in_word[first]):
                continue
            lengths.append(end - first)
    return np.asarray(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_utterances", type=int, default=300)
    parser.add_argument("--vocab_size", type=int, default=1000)
    parser.add_argument("--num_units", type=int, default=100)
    arguments = parser.parse_args()

    corpus, extractor = sample_spoken_corpus(arguments.num_utterances, arguments.num_units, progress=False)
    tokenizer = SpeechUnitTextTokenizer.train(list(kjv_verses())[:5000], vocab_size=arguments.vocab_size,
                                              num_units=arguments.num_units)
    rows = list(build_format(corpus, tokenizer, "ulm"))
    words = sum(len(r["word_spans"]) for r in rows)
    pieces = sum(len(r["piece_spans"]) for r in rows)
    print(f"{len(rows)} spoken verses, {words} words, {pieces} text pieces ({pieces / words:.2f} per word), "
          f"units at {extractor.frame_rate} Hz\n")
    print("| variant | ours: tokens per patch, mean (sd) | patches | paper (25 Hz) |")
    print("|---|---|---|---|")
    for name, aligned_by, silences, paper in VARIANTS:
        kind = "words" if "word patches" in name or "piece patches" in name else (
            "silences" if "silence patches" in name else "all")
        lengths = speech_patch_lengths(rows, tokenizer.pad_token_id, aligned_by, silences, kind)
        print(f"| {name} | {lengths.mean():.1f} ({lengths.std():.1f}) | {lengths.size} | {paper} |")


if __name__ == "__main__":
    main()
