"""The README's main job, on built-in offline data.

For now (until the pretraining demo lands): train a joint tokenizer on the built-in sample text, encode a
concatenated speech-text (CST) example in both orders, and show ids, modality mask, word spans and the
decoded forms. Speech units here are random stand-ins; the speech front end will provide real ones.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from tokenization import SpeechSegment, SpeechUnitTextTokenizer
from tokenization.sample_text import kjv_verses

logger = logging.getLogger("lst.demo")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_verses", type=int, default=20000, help="Sample verses to train the text model on.")
    parser.add_argument("--vocab_size", type=int, default=4000, help="Text SentencePiece vocabulary size.")
    parser.add_argument("--num_units", type=int, default=501, help="Speech units (LST: 501 HuBERT units).")
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/demo_tokenizer"))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    start = time.perf_counter()
    tokenizer = SpeechUnitTextTokenizer.train(
        kjv_verses(args.num_verses), vocab_size=args.vocab_size, num_units=args.num_units
    )
    logger.info("trained a %d-piece text model on %d verses in %.1fs", args.vocab_size, args.num_verses,
                time.perf_counter() - start)
    for name, value in tokenizer.vocabulary_layout().items():
        logger.info("  %-20s %s", name, value)

    transcript = next(kjv_verses(1))
    words = transcript.split()
    rng = np.random.default_rng(args.seed)
    # Stand-in speech: 3-9 frames per word (25 Hz units), word spans in unit frames.
    lengths = rng.integers(3, 10, size=len(words))
    ends = np.cumsum(lengths)
    spans = np.stack([ends - lengths, ends], axis=1)
    units = rng.integers(0, args.num_units, size=int(ends[-1]))
    speech = SpeechSegment(units, spans)

    for name, segments in (("CST speech->text", [speech, transcript]), ("CST text->speech", [transcript, speech])):
        encoding = tokenizer(segments=segments, return_tensors="np")
        ids = encoding["input_ids"][0]
        print(f"\n== {name}: {ids.size} tokens ({int(encoding['modality_mask'].sum())} speech)")
        print("input_ids     ", ids[:24].tolist(), "...")
        print("modality_mask ", encoding["modality_mask"][0][:24].tolist(), "...")
        print("word_spans    ", encoding["word_spans"][:4].tolist(), "...")
        print("string form   ", tokenizer.decode(ids)[:160], "...")
        decoded = tokenizer.decode_segments(ids)
        print("segments      ", [s if isinstance(s, str) else f"<{len(s)} units>" for s in decoded])
        if not np.array_equal(decoded[0 if name.startswith("CST speech") else 1], units):
            raise RuntimeError("The units did not survive encode -> decode_segments; this is a tokenizer bug.")

    tokenizer.save_pretrained(args.output_dir)
    print(f"\nSaved the tokenizer to {args.output_dir} (load it with AutoTokenizer.from_pretrained).")


if __name__ == "__main__":
    main()
