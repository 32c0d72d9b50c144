"""The paper's compute accounting (LST, Table 13), reproduced with this package's patching and FLOPs functions.

Composition: interleaved documents of 77% speech / 23% text tokens make up one third of the data, text-only
documents two thirds; speech runs are patched statically by 4. The paper reports the global sequence
shrinking from 3.00 to 2.42 units (x0.81). This script builds 4,096-token documents of that composition,
patches them, and prints global lengths and forward FLOPs per part for LST and for the Llama baseline of
the same global shape (the paper's 1B: global 25 x 2048 over a 32,508-token joint vocabulary).

    python benchmarks/flops_accounting.py [--preset lst-1b] [--length 4096]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lst_speech.modeling_lst import PRESETS, LSTConfig
from lst_speech.modeling_lst.accounting import SequenceShape, llama_flops, lst_flops
from lst_speech.modeling_lst.patching import patch_lengths_from_starts, static_patch_starts

# A 200-token block of an interleaved document: [Text] + 44 text tokens, [Speech] + 154 units (77% speech).
BLOCK = [False] * 45 + [False] + [True] * 154


def document(speech_block: list[bool] | None, length: int) -> tuple[SequenceShape, float]:
    """A document of `length` tokens repeating `speech_block` (or text only), its patching and speech share."""
    is_speech = (speech_block * (length // len(speech_block) + 1))[:length] if speech_block else [False] * length
    starts = static_patch_starts(torch.tensor([is_speech]), patch_size=4)
    return SequenceShape(length, tuple(patch_lengths_from_starts(starts)[0])), float(np.mean(is_speech))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lst-1b", choices=sorted(PRESETS))
    parser.add_argument("--length", type=int, default=4096, help="Tokens per document.")
    args = parser.parse_args()
    config = LSTConfig(**PRESETS[args.preset])  # the paper's joint vocabulary: Llama-2 text + 2 markers + 506
    baseline = config.global_llama_config()

    interleaved, speech_share = document(BLOCK, args.length)
    text_only, _ = document(None, args.length)
    mixture = [(interleaved, 1 / 3), (text_only, 2 / 3)]

    print(f"preset {args.preset}; {args.length}-token documents; interleaved documents are "
          f"{speech_share:.0%} speech tokens; mixture: 1/3 interleaved, 2/3 text-only\n")
    print(f"{'document':<14}{'tokens':>8}{'LST global positions':>22}{'ratio':>8}")
    for name, (shape, _) in (("interleaved", mixture[0]), ("text-only", mixture[1])):
        print(f"{name:<14}{shape.num_tokens:>8}{shape.num_patches:>22}{shape.num_patches / shape.num_tokens:>8.3f}")
    tokens = sum(w * s.num_tokens for s, w in mixture)
    patches = sum(w * s.num_patches for s, w in mixture)
    # In the paper's units: the interleaved third counts 1.00, each text-only third 1.00.
    print(f"{'mixture':<14}{tokens:>8.0f}{patches:>22.0f}{patches / tokens:>8.3f}"
          f"   (paper: 3.00 -> 2.42, x0.81)\n")

    print(f"forward FLOPs per {args.length}-token document (x1e12); LST / baseline")
    print(f"{'part':<20}{'LST interleaved':>17}{'LST text-only':>15}{'Llama':>10}")
    lst_parts = [lst_flops(config, s) for s, _ in mixture]
    llama = llama_flops(baseline, args.length)
    for part in lst_parts[0]:
        print(f"{part:<20}{lst_parts[0][part] / 1e12:>17.3f}{lst_parts[1][part] / 1e12:>15.3f}")
    for part, value in llama.items():
        print(f"{'llama ' + part:<20}{'':>17}{'':>15}{value / 1e12:>10.3f}")
    totals = [sum(p.values()) for p in lst_parts]
    llama_total = sum(llama.values())
    mix_ratio = sum(w * t for (_, w), t in zip(mixture, totals)) / llama_total
    print(f"\n{'total ratio':<20}{totals[0] / llama_total:>17.3f}{totals[1] / llama_total:>15.3f}"
          f"   mixture: {mix_ratio:.3f}")
    global_only = [p["global_transformer"] for p in lst_parts]
    mix_global = sum(w * g for (_, w), g in zip(mixture, global_only)) / llama["transformer"]
    print(f"{'global-only ratio':<20}{global_only[0] / llama['transformer']:>17.3f}"
          f"{global_only[1] / llama['transformer']:>15.3f}   mixture: {mix_global:.3f}")


if __name__ == "__main__":
    main()
