"""Training-step time of LST vs the Llama baseline of the same global shape, on the same batches.

For three compositions (interleaved with the paper's 77% speech share, speech-only, text-only), one
forward + backward pass of the `small` LST and of the Llama baseline (global 6 x 512 over the joint
vocabulary) runs on identical token batches, several times; the median time is compared with the FLOPs
ratio from `lst_speech.modeling_lst.accounting`. Target (issue 14): on all three compositions the time ratio is
within 10% of the FLOPs ratio (eager, and with `--compile` also under torch.compile's inductor, whose first
call per shape compiles and is not timed). The verdict uses the raw times; the gap without the shared
vocabulary cross-entropy is printed beside it.

    python benchmarks/bench_training_step.py [--batch_size 4] [--length 1024] [--repeats 5] [--compile]

On CPU, glibc's malloc hands every block over 32 MiB (the 139 MB logits and their gradients) back to the
system when freed, so each step page-faults them in again (150-280k page faults per LST step here), for both
models alike; `GLIBC_TUNABLES=$HEAP_REUSE` (below) keeps freed memory in the heap for reuse, as PyTorch's
caching allocator does on a GPU, at the cost of a larger resident heap. The header says which allocator
settings the run had.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from transformers import LlamaForCausalLM

from lst_speech.modeling_lst import PRESETS, LSTConfig, LSTForCausalLM
from lst_speech.modeling_lst.accounting import SequenceShape, llama_flops, lst_flops
from lst_speech.modeling_lst.patching import patch_lengths_from_starts, static_patch_starts

TEXT_PIECES, NUM_UNITS = 8000, 501
TEXT_MARKER, SPEECH_MARKER = TEXT_PIECES, TEXT_PIECES + 1
SPEECH_START = TEXT_PIECES + 2
HEAP_REUSE = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184"  # no mmap, never trim


def make_batch(composition: str, batch_size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """Token ids: BOS, then blocks of [Text] + text pieces and [Speech] + units in the given composition."""
    if composition == "interleaved":  # 46 non-speech : 154 speech tokens per 200 = 77% speech
        block = [TEXT_MARKER] + [-1] * 45 + [SPEECH_MARKER] + [-2] * 153
    elif composition == "speech-only":
        block = [SPEECH_MARKER] + [-2] * (length - 2)
    else:
        block = [TEXT_MARKER] + [-1] * (length - 2)
    layout = torch.tensor(([1] + block * (length // len(block) + 1))[:length]).expand(batch_size, -1)
    text = torch.randint(4, TEXT_PIECES, layout.shape, generator=generator)
    units = torch.randint(SPEECH_START, SPEECH_START + NUM_UNITS, layout.shape, generator=generator)
    return torch.where(layout == -1, text, torch.where(layout == -2, units, layout))


def step_seconds(model, ids: torch.Tensor, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first run warms up
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        model(ids, labels=ids, use_cache=False).loss.backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def shared_loss_seconds(ids: torch.Tensor, vocab_size: int, repeats: int) -> float:
    """Cross-entropy over the joint vocabulary, forward + backward: the same work in both models, and not
    matmul FLOPs, so the accounting leaves it out."""
    logits = torch.randn(*ids.shape, vocab_size, requires_grad=True)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten()).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true",
                        help="Also time both models under torch.compile (inductor); compiling takes minutes on CPU.")
    args = parser.parse_args()

    config = LSTConfig(
        **PRESETS["small"],
        vocab_size=SPEECH_START + NUM_UNITS,
        text_token_range=(4, TEXT_PIECES),
        speech_token_range=(SPEECH_START, SPEECH_START + NUM_UNITS),
        text_marker_id=TEXT_MARKER,
        speech_marker_id=SPEECH_MARKER,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    lst = LSTForCausalLM(config).train()
    llama = LlamaForCausalLM(config.global_llama_config()).train()
    modes = [("eager", lst, llama)]
    if args.compile:
        modes.append(("compiled", torch.compile(lst), torch.compile(llama)))
    malloc = os.environ.get("GLIBC_TUNABLES", f"glibc defaults (GLIBC_TUNABLES={HEAP_REUSE} reuses memory)")
    print(f"small preset, batch {args.batch_size} x {args.length} tokens, forward + backward, median of "
          f"{args.repeats}; {torch.get_num_threads()} threads; malloc: {malloc}\n")
    print(f"{'composition':<14}{'mode':<10}{'LST s':>8}{'Llama s':>9}{'time ratio':>12}{'FLOPs ratio':>13}"
          f"{'gap':>7}{'w/o loss':>10}  verdict")
    eager_times = {}
    for composition in ("interleaved", "speech-only", "text-only"):
        ids = make_batch(composition, args.batch_size, args.length, torch.Generator().manual_seed(0))
        starts = static_patch_starts((ids >= SPEECH_START)[:1], config.patch_size)
        shape = SequenceShape(args.length, tuple(patch_lengths_from_starts(starts)[0]))
        flops_ratio = sum(lst_flops(config, shape).values()) / sum(
            llama_flops(llama.config, args.length).values()
        )
        loss = shared_loss_seconds(ids, config.vocab_size, args.repeats)
        for mode, lst_model, llama_model in modes:
            lst_time = step_seconds(lst_model, ids, args.repeats)
            llama_time = step_seconds(llama_model, ids, args.repeats)
            time_ratio = lst_time / llama_time
            gap = time_ratio / flops_ratio - 1
            gap_without_loss = (lst_time - loss) / (llama_time - loss) / flops_ratio - 1
            verdict = "target met" if abs(gap) <= 0.10 else "TARGET MISSED"
            if mode == "eager":
                eager_times[composition] = (lst_time, llama_time)
            else:
                eager_lst, eager_llama = eager_times[composition]
                verdict += f"; compile speed-up LST {eager_lst / lst_time:.2f}x, Llama {eager_llama / llama_time:.2f}x"
            print(f"{composition:<14}{mode:<10}{lst_time:>8.3f}{llama_time:>9.3f}{time_ratio:>12.3f}"
                  f"{flops_ratio:>13.3f}{gap:>+7.0%}{gap_without_loss:>+10.0%}  {verdict}")
    print("\n'w/o loss': the gap once the cross-entropy over the vocabulary (same work in both models, not")
    print("matmul FLOPs), measured separately in this run, is taken out of both times.")


if __name__ == "__main__":
    main()
