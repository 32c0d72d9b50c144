"""Two vocoders' intelligibility on the same held-out utterances, with the paired difference.

`lst vocoder evaluate` scores one run against its originals; two runs (say 1,500 and 4,000 training steps, the
same units and split) have separate intervals that overlap even when one is better on nearly every utterance.
Here both vocode the same held-out rows (those of the first run, which must match the second's by id), one
recogniser transcribes both, and the difference in corpus WER and CER (second minus first) gets a 95% bootstrap
interval that resamples utterances for both at once (`error_rates.paired_differences`).

    python benchmarks/paired_vocoders.py --runs outputs/vocoders/asterisk-1500 outputs/vocoders/asterisk-4000 \
        [--transcriber whisper] [--output paired.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import datasets
import numpy as np
from transformers import AutoModel

import lst_speech.tokenization.vocoder  # noqa: F401  (registers the vocoder with AutoModel)
from lst_speech.evaluation.transcription.error_rates import error_counts, paired_differences, summarise
from lst_speech.evaluation.transcription.transcribers import load_transcriber


def held_out_rows(run: Path) -> list[dict]:
    return [row for row in datasets.load_from_disk(str(run / "data"))["held_out"] if row["text"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, nargs=2, required=True, help="two `lst vocoder train` output folders")
    parser.add_argument("--transcriber", default="whisper")
    parser.add_argument("--output", type=Path, help="write the scores as JSON here")
    arguments = parser.parse_args()
    first, second = arguments.runs
    rows = held_out_rows(first)
    if [row["id"] for row in rows] != [row["id"] for row in held_out_rows(second)]:
        raise SystemExit(f"{first} and {second} hold out different utterances: a paired comparison needs the same.")
    transcriber = load_transcriber(arguments.transcriber)
    references = [row["text"] for row in rows]
    counts = {}
    for run in arguments.runs:
        vocoder = AutoModel.from_pretrained(str(run / "vocoder")).eval()
        if vocoder.config.deduplicated:
            raise SystemExit(f"{run}: deduplicated vocoders are scored by `lst vocoder evaluate`, not here.")
        hypotheses = [transcriber(vocoder.synthesize(np.asarray(row["units"])), vocoder.config.sampling_rate)
                      for row in rows]
        counts[run] = error_counts(references, hypotheses)
    result = {"utterances": len(rows), "transcriber": arguments.transcriber,
              **{str(run): summarise(counts[run]) for run in arguments.runs}}
    result.update(paired_differences(counts[second], counts[first]))
    for name in ("wer", "cer"):
        difference, interval = result[f"{name}_difference"], result[f"{name}_difference_interval"]
        print(f"{name.upper()}: {first.name} {100 * result[str(first)][name]:.1f}%, {second.name} "
              f"{100 * result[str(second)][name]:.1f}%; {second.name} - {first.name} {100 * difference:+.1f} pts "
              f"[{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}] over {len(rows)} utterances (paired)")
    if arguments.output:
        arguments.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
