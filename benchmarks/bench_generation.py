"""Speech generation speed: LST with its cache, LST by full recompute, and the cached Llama baseline.

The `small` LST and the Llama baseline of the same global shape (random weights; speed does not depend on
them) continue a 16-token prompt that ends in the speech marker with 128, 512 and 1024 speech tokens
(speech-only logits processor), at batch 1 and 8. Reported: tokens/s for each, LST's global steps (one per
closed patch), and cached milliseconds per token. Full recompute is timed end to end where that takes
less than about a minute on a 2-core machine; beyond that its time is the sum of per-step forward times,
integrated from forwards timed at five prefix lengths (rows say which).
Targets (issue 4): cached >= 5x recompute at 512 new tokens and >= 10x at 1024; global steps =
ceil(speech tokens / 4); cached time per token roughly constant; LST cached faster than cached Llama.

    python benchmarks/bench_generation.py
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from transformers import LlamaForCausalLM, LogitsProcessorList

from modeling_lst import PRESETS, LSTConfig, LSTForCausalLM
from modeling_lst.modality import ModalityLogitsProcessor

TEXT_PIECES, NUM_UNITS = 8000, 501
TEXT_MARKER, SPEECH_MARKER, SPEECH_START = TEXT_PIECES, TEXT_PIECES + 1, TEXT_PIECES + 2


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def recompute_seconds(model, prompt, new_tokens, measure_directly, speech_only) -> tuple[float, str]:
    if measure_directly:
        return seconds(lambda: model.generate(prompt, max_new_tokens=new_tokens, do_sample=False, use_cache=False,
                                              logits_processor=speech_only)), "timed"
    # Each recompute step is a forward over the whole prefix: integrate forwards timed at five lengths.
    lengths = np.linspace(prompt.shape[1], prompt.shape[1] + new_tokens - 1, 5).round().astype(int)
    units = torch.randint(SPEECH_START, SPEECH_START + NUM_UNITS, (prompt.shape[0], int(lengths[-1])))
    sequence = torch.cat([prompt, units[:, prompt.shape[1]:]], dim=1)
    with torch.no_grad():
        per_step = [seconds(lambda n=n: model(sequence[:, :n], logits_to_keep=1)) for n in lengths]
    return float(np.trapezoid(per_step, lengths) / (lengths[-1] - lengths[0]) * new_tokens), "integrated"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new_tokens", type=int, nargs="+", default=[128, 512, 1024])
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--direct_recompute_budget", type=int, default=1024,
                        help="Time full recompute end to end when batch x new tokens is at most this.")
    args = parser.parse_args()

    config = LSTConfig(
        **PRESETS["small"], vocab_size=SPEECH_START + NUM_UNITS, text_token_range=(4, TEXT_PIECES),
        speech_token_range=(SPEECH_START, SPEECH_START + NUM_UNITS), text_marker_id=TEXT_MARKER,
        speech_marker_id=SPEECH_MARKER, pad_token_id=0,
    )
    torch.manual_seed(0)
    lst = LSTForCausalLM(config).eval()
    llama = LlamaForCausalLM(config.global_llama_config()).eval()
    allowed = torch.zeros(config.vocab_size, dtype=torch.bool)
    allowed[SPEECH_START:] = True
    speech_only = LogitsProcessorList([ModalityLogitsProcessor(allowed)])

    print("small preset vs Llama baseline (global 6 x 512), 16-token prompt ending in [Speech]; "
          f"{torch.get_num_threads()} threads\n")
    print(f"{'batch':>5}{'new':>6}{'LST cached tok/s':>18}{'recompute tok/s':>17}{'':>14}{'speed-up':>9}"
          f"{'Llama cached tok/s':>20}{'LST/Llama':>10}{'global steps':>14}{'ms/token':>10}")
    verdicts = []
    for batch in args.batch_sizes:
        prompt = torch.cat([
            torch.tensor([[1, TEXT_MARKER]]), torch.randint(4, TEXT_PIECES, (1, 13)), torch.tensor([[SPEECH_MARKER]]),
        ], dim=1).expand(batch, -1).contiguous()
        for new_tokens in args.new_tokens:
            kwargs = dict(max_new_tokens=new_tokens, do_sample=False, logits_processor=speech_only)
            lst_time = seconds(lambda: lst.generate(prompt, **kwargs))
            outputs = lst.generate(prompt, return_dict_in_generate=True, **kwargs)
            with torch.no_grad():
                prefill_slots = lst(prompt, use_cache=True).cache.patch_keys.shape[1]
            global_steps = outputs.cache.patch_keys.shape[1] - prefill_slots
            llama_time = seconds(lambda: llama.generate(prompt, **kwargs))
            direct = batch * new_tokens <= args.direct_recompute_budget
            recompute_time, how = recompute_seconds(lst, prompt, new_tokens, direct, speech_only)
            tokens = batch * new_tokens
            speed_up = recompute_time / lst_time
            print(f"{batch:>5}{new_tokens:>6}{tokens / lst_time:>18,.0f}{tokens / recompute_time:>17,.0f}"
                  f"{'(' + how + ')':>14}{speed_up:>8.1f}x{tokens / llama_time:>20,.0f}{llama_time / lst_time:>9.2f}x"
                  f"{global_steps:>8} / {math.ceil(new_tokens / 4):<5}{1000 * lst_time / new_tokens:>8.2f}")
            target = {512: 5.0, 1024: 10.0}.get(new_tokens)
            verdicts.append((f"batch {batch}, {new_tokens} tokens", target is None or speed_up >= target,
                             global_steps == math.ceil(new_tokens / 4), lst_time < llama_time))
    print()
    for name, fast_enough, steps_ok, beats_llama in verdicts:
        problems = [text for ok, text in ((fast_enough, "cached speed-up below target"),
                                          (steps_ok, "global steps != ceil(tokens / 4)"),
                                          (beats_llama, "slower than cached Llama")) if not ok]
        print(f"{name}: {'targets met' if not problems else 'MISSED: ' + '; '.join(problems)}")


if __name__ == "__main__":
    main()
