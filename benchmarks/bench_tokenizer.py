"""Encoding throughput: structured segments vs Spirit LM-style unit strings, in one run.

10,000 CST examples (250 units + a 30-word transcript each) are encoded
  ours:     `SpeechUnitTextTokenizer(segments=...)`: units mapped to ids by an offset with numpy;
  baseline: the Spirit LM recipe: units rendered as "[Hu12][Hu45]..." strings (string building timed, as
            Spirit LM does it), encoded by a `tokenizers` fast tokenizer with those strings as added tokens.
Both sides encode the transcript with the same SentencePiece model and the same `tokenizers` pipeline,
and produce the same outputs, in two forms:
  numpy batch:  padded `input_ids` + `attention_mask` arrays, what a training step consumes (ours also
                returns `modality_mask`);
  python lists: per-example lists of `input_ids` + `attention_mask` (ours also `modality_mask`).
Targets (issue 2): >= 20x on unit segments, >= 5x on whole examples.

    python benchmarks/bench_tokenizer.py [--num_examples 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from tokenizers import AddedToken, Tokenizer

from lst_speech.tokenization import SpeechUnitTextTokenizer
from lst_speech.tokenization.corpora.sample_text import kjv_verses

NUM_UNITS = 501


def spirit_lm_tokenizer(tokenizer: SpeechUnitTextTokenizer) -> Tokenizer:
    backend = Tokenizer.from_str(tokenizer._text_encoder.pipeline.to_str())
    backend.add_special_tokens([AddedToken(m, special=True, normalized=False) for m in ("[Text]", "[Speech]")])
    backend.add_tokens([AddedToken(f"[Hu{u}]", special=False, normalized=False) for u in range(NUM_UNITS)])
    return backend


def spirit_lm_string(units: np.ndarray, transcript: str | None) -> str:
    speech = "[Speech]" + "".join(f"[Hu{u}]" for u in units.tolist())
    return speech if transcript is None else speech + "[Text]" + transcript


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_examples", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    verses = list(kjv_verses(20000))
    tokenizer = SpeechUnitTextTokenizer.train(verses, vocab_size=8000, num_units=NUM_UNITS)
    baseline = spirit_lm_tokenizer(tokenizer)
    padded_baseline = spirit_lm_tokenizer(tokenizer)
    padded_baseline.enable_padding(pad_id=tokenizer.pad_token_id)

    rng = np.random.default_rng(0)
    words = " ".join(verses).split()
    starts = rng.integers(0, len(words) - 30, size=args.num_examples)
    transcripts = [" ".join(words[s : s + 30]) for s in starts]
    units = [rng.integers(0, NUM_UNITS, size=250) for _ in range(args.num_examples)]
    cases = {
        "unit segments": ([[u] for u in units], [None] * args.num_examples, 20.0),
        "whole examples": ([[u, t] for u, t in zip(units, transcripts)], transcripts, 5.0),
    }

    def ours_numpy(segments):
        return tokenizer(segments=segments, add_special_tokens=False, padding=True, return_tensors="np")

    def ours_lists(segments):
        return tokenizer(segments=segments, add_special_tokens=False)

    def baseline_numpy(texts):
        encodings = padded_baseline.encode_batch([spirit_lm_string(u, t) for u, t in zip(units, texts)],
                                                 add_special_tokens=False)
        return np.array([e.ids for e in encodings]), np.array([e.attention_mask for e in encodings])

    def baseline_lists(texts):
        encodings = baseline.encode_batch([spirit_lm_string(u, t) for u, t in zip(units, texts)],
                                          add_special_tokens=False)
        return [e.ids for e in encodings], [e.attention_mask for e in encodings]

    print(f"{args.num_examples} examples, 250 units + 30 words each; median of {args.repeats} runs\n")
    print(f"{'output':<14}{'case':<16}{'ours ex/s':>12}{'baseline ex/s':>15}{'ratio':>8}{'target':>8}")
    met = []
    for output, ours, base in (("numpy batch", ours_numpy, baseline_numpy), ("python lists", ours_lists, baseline_lists)):
        for name, (segments, texts, target) in cases.items():
            # Same content: the text part of every example gets identical ids on both sides.
            ours_ids, base_ids = ours(segments)["input_ids"], base(texts)[0]
            if name == "whole examples":
                text_start = 1 + 250 + 1
                if any(list(o[text_start:]) != list(b[text_start:]) for o, b in zip(ours_ids[:200], base_ids[:200])):
                    raise RuntimeError("The two tokenizers disagree on the transcript ids; the comparison is void.")
            ours_time = median_seconds(lambda: ours(segments), args.repeats)
            base_time = median_seconds(lambda: base(texts), args.repeats)
            ratio = base_time / ours_time
            met.append((output, name, ratio >= target))
            n = args.num_examples
            print(f"{output:<14}{name:<16}{n / ours_time:>12,.0f}{n / base_time:>15,.0f}{ratio:>7.1f}x{target:>7.0f}x")
    # Python-list output is bounded by creating the Python ints themselves: time only that, from ids that
    # are already computed, to show how far any tokenizer returning lists could go.
    ready = tokenizer(segments=cases["unit segments"][0], add_special_tokens=False, padding=True, return_tensors="np")
    flat_ids, flat_speech = ready["input_ids"].ravel(), ready["modality_mask"].ravel()
    width = ready["input_ids"].shape[1]

    def lists_only():
        ids, speech = flat_ids.tolist(), flat_speech.tolist()
        rows = range(0, len(ids), width)
        return [ids[i : i + width] for i in rows], [[1] * width for _ in rows], [speech[i : i + width] for i in rows]

    ceiling = args.num_examples / median_seconds(lists_only, args.repeats)
    print(f"\nceiling for python-list output (unit segments): {ceiling:,.0f} ex/s just to build the three lists, "
          f"i.e. at most {ceiling / (args.num_examples / median_seconds(lambda: baseline_lists(cases['unit segments'][1]), args.repeats)):.1f}x the baseline\n")
    for output in ("numpy batch", "python lists"):
        missed = [name for o, name, ok in met if o == output and not ok]
        print(f"{output}: " + ("all targets met" if not missed else f"TARGET MISSED for {', '.join(missed)}"))


if __name__ == "__main__":
    main()
