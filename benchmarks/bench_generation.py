"""Speech generation speed: LST with its cache, LST by full recompute, and the cached Llama baseline.

The `small` LST and the Llama baseline of the same global shape (random weights; speed does not depend on
them) continue a 16-token prompt that ends in the speech marker with 128, 512 and 1024 speech tokens
(speech-only logits processor), at batch 1 and 8. Reported: tokens/s for each, LST's global steps (one per
closed patch), and cached milliseconds per token. Full recompute is timed end to end where that takes
less than about a minute on a 2-core machine; beyond that its time is the sum of per-step forward times,
integrated from forwards timed at five prefix lengths (rows say which).
Targets (issue 4): cached >= 5x recompute at 512 new tokens and >= 10x at 1024; global steps =
ceil(speech tokens / 4); cached time per token roughly constant; LST cached faster than cached Llama.

Then (issue 14), at batch 1: the `lst-350m` shape against its Llama baseline (24 x 1024) for 256 speech
tokens (target: LST >= 3x the cached Llama), with the weights each model reads per token and the ratio
their matmuls alone allow at this machine's kernel speeds (`weight_reads.py`); prompt-lookup decoding
against greedy on a speech continuation whose prompt repeats unit n-grams, as speech unit streams do (same
tokens by construction; reported: the speed-up and how many drafted tokens were accepted); and, with
`--compile`, the cached step under torch.compile against eager.

    python benchmarks/bench_generation.py [--compile]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from transformers import LlamaForCausalLM, LogitsProcessorList
from weight_reads import matmul_ceiling

from lst_speech.modeling_lst import PRESETS, LSTConfig, LSTForCausalLM
from lst_speech.modeling_lst.modality import ModalityLogitsProcessor

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


def models(preset: str):
    """LST of `preset` over an 8,000-piece + 501-unit joint vocabulary, and its Llama baseline (random weights)."""
    config = LSTConfig(
        **PRESETS[preset], vocab_size=SPEECH_START + NUM_UNITS, text_token_range=(4, TEXT_PIECES),
        speech_token_range=(SPEECH_START, SPEECH_START + NUM_UNITS), text_marker_id=TEXT_MARKER,
        speech_marker_id=SPEECH_MARKER, pad_token_id=0,
    )
    return LSTForCausalLM(config).eval(), LlamaForCausalLM(config.global_llama_config()).eval()


def speech_prompt(batch: int) -> torch.Tensor:
    """BOS, a text segment of 13 pieces, then the speech marker: the model continues in speech."""
    return torch.cat([
        torch.tensor([[1, TEXT_MARKER]]), torch.randint(4, TEXT_PIECES, (1, 13)), torch.tensor([[SPEECH_MARKER]]),
    ], dim=1).expand(batch, -1).contiguous()


def repetitive_speech_prompt(length: int, generator: torch.Generator) -> torch.Tensor:
    """A speech prompt made of a few unit 'words' (each unit held 1-3 frames) said again and again."""
    words = [torch.randint(SPEECH_START, SPEECH_START + NUM_UNITS, (int(n),), generator=generator)
             for n in torch.randint(3, 7, (6,), generator=generator)]
    units = []
    while len(units) < length:
        word = words[int(torch.randint(len(words), (1,), generator=generator))]
        units += word.repeat_interleave(torch.randint(1, 4, word.shape, generator=generator)).tolist()
    return torch.tensor([[1, SPEECH_MARKER, *units[: length - 2]]])


def large_shape_rows(new_tokens: int, speech_only) -> None:
    """lst-350m against its Llama baseline (24 x 1024), batch 1, cached: target LST >= 3x."""
    torch.manual_seed(0)
    lst, llama = models("lst-350m")
    prompt = speech_prompt(1)
    kwargs = dict(max_new_tokens=new_tokens, do_sample=False, logits_processor=speech_only)
    lst.generate(prompt, max_new_tokens=8, do_sample=False)  # warm-up
    llama.generate(prompt, max_new_tokens=8, do_sample=False)
    lst_time = seconds(lambda: lst.generate(prompt, **kwargs))
    llama_time = seconds(lambda: llama.generate(prompt, **kwargs))
    ratio = llama_time / lst_time
    print(f"\nlst-350m shape vs Llama 24 x 1024, batch 1, {new_tokens} speech tokens, cached:")
    print(f"  LST {new_tokens / lst_time:,.1f} tok/s, Llama {new_tokens / llama_time:,.1f} tok/s: "
          f"LST/Llama {ratio:.2f}x ({'target met' if ratio >= 3 else 'TARGET MISSED'}: >= 3x)")
    (lst_weights, lst_floor), (llama_weights, llama_floor) = matmul_ceiling(lst), matmul_ceiling(llama)
    print(f"  weights read per token: LST {lst_weights / 1e6:.1f}M, Llama {llama_weights / 1e6:.1f}M "
          f"({llama_weights / lst_weights:.2f}x); reading them at this machine's batch-1 matmul speed takes "
          f"LST {1000 * lst_floor:.1f} ms, Llama {1000 * llama_floor:.1f} ms per token: a ceiling of "
          f"{llama_floor / lst_floor:.2f}x with every other op free (measured: LST {1000 * lst_time / new_tokens:.1f} "
          f"ms, Llama {1000 * llama_time / new_tokens:.1f} ms per token)")


def prompt_lookup_rows(lst, new_tokens: int, speech_only) -> None:
    """Prompt-lookup decoding against greedy on a repetitive speech continuation (batch 1)."""
    prompt = repetitive_speech_prompt(192, torch.Generator().manual_seed(5))
    kwargs = dict(max_new_tokens=new_tokens, do_sample=False, logits_processor=speech_only)
    greedy = lst.generate(prompt, **kwargs)
    greedy_time = min(seconds(lambda: lst.generate(prompt, **kwargs)) for _ in range(2))
    print(f"\nprompt-lookup decoding, small preset, 192-token repetitive speech prompt, {new_tokens} new tokens:")
    for drafted in (3, 10):
        lookup = lst.generate(prompt, prompt_lookup_num_tokens=drafted, **kwargs)
        lookup_time = min(seconds(lambda: lst.generate(prompt, prompt_lookup_num_tokens=drafted, **kwargs))
                          for _ in range(2))
        same = lookup.tolist() == greedy.tolist()
        print(f"  {drafted:>2} drafted tokens: {greedy_time / lookup_time:.2f}x greedy's speed "
              f"({'same tokens' if same else 'TOKENS DIFFER'})")


def compiled_rows(lst, new_tokens: int, speech_only) -> None:
    """The cached step under torch.compile (inductor) against eager, batch 1."""
    prompt = speech_prompt(1)
    kwargs = dict(max_new_tokens=new_tokens, do_sample=False, logits_processor=speech_only)
    eager_tokens = lst.generate(prompt, **kwargs)
    eager_time = seconds(lambda: lst.generate(prompt, **kwargs))
    eager_forward = lst.forward
    lst.forward = torch.compile(lst.forward)
    try:
        start = time.perf_counter()
        compiled_tokens = lst.generate(prompt, **kwargs)
        first = time.perf_counter() - start
        compiled_time = seconds(lambda: lst.generate(prompt, **kwargs))
    finally:
        lst.forward = eager_forward
    same = compiled_tokens.tolist() == eager_tokens.tolist()
    print(f"\ntorch.compile (inductor) of cached decoding, small preset, batch 1, {new_tokens} tokens: "
          f"{eager_time / compiled_time:.2f}x eager's speed after a first call of {first:.0f} s "
          f"({'same tokens' if same else 'TOKENS DIFFER'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new_tokens", type=int, nargs="+", default=[128, 512, 1024])
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--direct_recompute_budget", type=int, default=1024,
                        help="Time full recompute end to end when batch x new tokens is at most this.")
    parser.add_argument("--large_new_tokens", type=int, default=256)
    parser.add_argument("--compile", action="store_true",
                        help="Also time cached decoding under torch.compile (compiling takes minutes on CPU).")
    args = parser.parse_args()

    torch.manual_seed(0)
    lst, llama = models("small")
    config = lst.config
    allowed = torch.zeros(config.vocab_size, dtype=torch.bool)
    allowed[SPEECH_START:] = True
    speech_only = LogitsProcessorList([ModalityLogitsProcessor(allowed)])

    print("small preset vs Llama baseline (global 6 x 512), 16-token prompt ending in [Speech]; "
          f"{torch.get_num_threads()} threads\n")
    print(f"{'batch':>5}{'new':>6}{'LST cached tok/s':>18}{'recompute tok/s':>17}{'':>14}{'speed-up':>9}"
          f"{'Llama cached tok/s':>20}{'LST/Llama':>10}{'global steps':>14}{'ms/token':>10}")
    verdicts = []
    for batch in args.batch_sizes:
        prompt = speech_prompt(batch)
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
    large_shape_rows(args.large_new_tokens, speech_only)
    prompt_lookup_rows(lst, 128, speech_only)
    if args.compile:
        compiled_rows(lst, 128, speech_only)


if __name__ == "__main__":
    main()
