"""Scoring speed (issue 37): today's scorer, one full forward of context + ending per pair, against cached scoring,
each context once and its cache continued by its endings; for the `small` LST and its Llama baseline.

Items are made from KJV verses, in the shape of StoryCloze: a context of 30-42 words and endings of 6-12 words,
with 2 and 4 endings, in the four directions; and CRA over N
utterances of 12-24 words split in half, in its four directions (an item is a prompt scored against all N
continuations).
Speech is stand-in units at 50 Hz, 10-20 frames a word and 0-4 of silence between words (espeak's pace,
docs/results.md "Patch lengths"). Random weights: speed does not depend on them, and both scorers' scores are
compared on the same items (largest absolute difference of a log-likelihood, in float32 beside today's scorer
at batch size 1 against 16, and on a few items in float64, where rounding no longer hides a real difference).
Per case: items per CPU-second of each scorer (median over repeats), their ratio per repeat in CPU and in wall
time (median, min-max; the two run in turn, so drift hits both), and the work ratio: tokens through the model
today / tokens through it cached (padding left out), the speed-up that prompt reuse alone can give. On a shared
machine, `--threads 1` makes CPU time the work done, whatever else runs.

    python benchmarks/bench_scoring.py [--items 8] [--cra 10] [--repeats 3] [--batch_size 16] [--threads 1]
        [--mc_directions S->S T->T S->T T->S] [--cra_directions u2u t2t u2t t2u] [--no_equality]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import platform
import time

import numpy as np
import torch
from transformers import LlamaForCausalLM

from lst_speech.evaluation.context_retrieval import context_retrieval_matrix, split_paired_utterance
from lst_speech.evaluation.likelihood import continuation_log_likelihoods
from lst_speech.modeling_lst import LSTConfig, LSTForCausalLM
from lst_speech.tokenization import SpeechUnitTextTokenizer
from lst_speech.tokenization.corpora.sample_text import kjv_verses

NUM_UNITS = 500


def spoken(words: list[str], rng) -> tuple[np.ndarray, np.ndarray]:
    """Stand-in units for `words` and their word spans in frames."""
    lengths, gaps = rng.integers(10, 21, len(words)), rng.integers(0, 5, len(words) + 1)
    starts = np.cumsum(np.r_[gaps[0], (lengths + gaps[1:])[:-1]])
    spans = np.stack([starts, starts + lengths], 1)
    return rng.integers(0, NUM_UNITS, int(spans[-1, 1] + gaps[-1])), spans


def multiple_choice_pairs(words: list[str], count: int, num_endings: int, direction: str, seed: int) -> list:
    """(context, ending) pairs of `count` items, the endings of an item after one another."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        def text(low, high):
            start = int(rng.integers(0, len(words) - high))
            return words[start : start + int(rng.integers(low, high + 1))]

        def segment(chosen, modality):
            return " ".join(chosen) if modality == "T" else spoken(chosen, rng)[0]

        context = segment(text(30, 42), direction[0])
        pairs += [([context], [segment(text(6, 12), direction[-1])]) for _ in range(num_endings)]
    return pairs


def cra_rows(words: list[str], count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        start = int(rng.integers(0, len(words) - 24))
        chosen = words[start : start + int(rng.integers(12, 25))]
        units, spans = spoken(chosen, rng)
        rows.append({"id": str(index), "text": " ".join(chosen), "words": chosen, "units": units, "word_spans": spans})
    return rows


def work_ratio(tokenizer, pairs) -> float:
    """Tokens of all context + ending rows / tokens of the distinct contexts (with the marker before the
    ending, as the cached scorer's prompts have it) plus those after them."""
    prompts, total, after = {}, 0, 0
    for context, ending in pairs:
        row = tokenizer(segments=list(context) + list(ending))["input_ids"]
        prefix = int(tokenizer.add_bos_token) + len(tokenizer(segments=list(context), add_special_tokens=False)
                                                    ["input_ids"])
        prefix += row[prefix] in tokenizer.marker_token_ids
        prompts[tuple(row[:prefix])] = prefix
        total, after = total + len(row), after + len(row) - prefix
    return total / (sum(prompts.values()) + after)


def timed(function):
    """Wall and CPU seconds of `function()` (CPU time: what the process itself ran, which a shared machine's other
    load changes far less than wall time; with one thread it is the work done), and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def compare(run, num_items: int, repeats: int) -> dict:
    """`run(use_prompt_cache)` -> scores, timed in turn (today's first on even repeats, cached first on odd)."""
    seconds = {True: [], False: []}
    difference = 0.0
    for repeat in range(repeats):
        results = {}
        for cached in ((False, True) if repeat % 2 == 0 else (True, False)):
            elapsed, results[cached] = timed(lambda cached=cached: run(cached))
            seconds[cached].append(elapsed)
        difference = max(difference, float(np.abs(results[True] - results[False]).max()))
    today, cached = np.array(seconds[False]), np.array(seconds[True])  # (repeats, [wall, cpu])
    ratios = today / cached
    return {"today": num_items / np.median(today[:, 1]), "cached": num_items / np.median(cached[:, 1]),
            "cpu": ratios[:, 1], "wall": ratios[:, 0], "difference": difference}


def spread(ratios: np.ndarray) -> str:
    return f"{np.median(ratios):.2f}x [{ratios.min():.2f}-{ratios.max():.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=8, help="multiple-choice items per case")
    parser.add_argument("--cra", type=int, default=10, help="CRA utterances (N x N pairs per direction)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=16, help="rows per forward (lst eval's default)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--mc_directions", nargs="+", default=["S->S", "T->T", "S->T", "T->S"])
    parser.add_argument("--cra_directions", nargs="+", default=["u2u", "t2t", "u2t", "t2u"])
    parser.add_argument("--no_equality", action="store_true", help="skip the float32 floor and float64 check")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    verses = list(itertools.islice(kjv_verses(), 5000))
    tokenizer = SpeechUnitTextTokenizer.train(verses, vocab_size=2000, model_type="unigram", num_units=NUM_UNITS)
    words = " ".join(verses[:2000]).split()
    config = LSTConfig.from_tokenizer(tokenizer, preset="small")
    models = {"LST small": LSTForCausalLM(config).eval(),
              "Llama baseline": LlamaForCausalLM(config.global_llama_config()).eval()}
    with open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                   platform.processor())
    print(f"{os.cpu_count()} CPUs ({cpu}), torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}; "
          f"batch_size {arguments.batch_size}, {arguments.repeats} repeats")
    cases = []
    for num_endings in (2, 4):
        for direction in arguments.mc_directions:
            pairs = multiple_choice_pairs(words, arguments.items, num_endings, direction, seed=num_endings)
            cases.append((f"MC {direction}, {num_endings} endings", pairs, arguments.items, None))
    rows = cra_rows(words, arguments.cra, seed=0)
    for direction in arguments.cra_directions:
        splits = [split_paired_utterance(row) for row in rows]
        pairs = [([s[direction[0]][0]], [t[direction[2]][1]]) for s in splits for t in splits]
        cases.append((f"CRA {direction}, N={len(rows)}", pairs, len(rows), direction))
    print("| model | case | work ratio | today, items/CPU-s | cached, items/CPU-s | speed-up in CPU time | "
          "in wall time | max diff |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model in models.items():
        continuation_log_likelihoods(model, tokenizer, cases[1][1][:4], arguments.batch_size)  # warm-up
        for label, pairs, num_items, cra_direction in cases:
            if cra_direction is None:
                def run(cached, model=model, pairs=pairs):
                    return continuation_log_likelihoods(model, tokenizer, pairs, arguments.batch_size,
                                                        use_prompt_cache=cached).log_likelihood
            else:
                def run(cached, model=model, direction=cra_direction):
                    return context_retrieval_matrix(model, tokenizer, rows, direction, arguments.batch_size,
                                                    use_prompt_cache=cached)
            result = compare(run, num_items, arguments.repeats)
            print(f"| {name} | {label} | {work_ratio(tokenizer, pairs):.2f} | {result['today']:.2f} | "
                  f"{result['cached']:.2f} | {spread(result['cpu'])} | {spread(result['wall'])} | "
                  f"{result['difference']:.1e} |", flush=True)
    print(f"load after timing {os.getloadavg()[0]:.2f}")
    if arguments.no_equality:
        return
    print(f"| model | today, batch 1 vs {arguments.batch_size} (float32, {cases[0][0]}) "
          "| cached vs today (float64: MC, 4 directions x 2 items; CRA u2u, N=3) |")
    print("|---|---|---|")
    few = [pair for direction in ("S->S", "T->T", "S->T", "T->S")
           for pair in multiple_choice_pairs(words, 2, 2, direction, seed=7)]
    for name, model in models.items():
        pairs = cases[0][1]
        floor = np.abs(continuation_log_likelihoods(model, tokenizer, pairs, 1, use_prompt_cache=False).log_likelihood
                       - continuation_log_likelihoods(model, tokenizer, pairs, arguments.batch_size,
                                                      use_prompt_cache=False).log_likelihood)
        double = copy.deepcopy(model).double()
        exact = max(
            np.abs(continuation_log_likelihoods(double, tokenizer, few, arguments.batch_size).log_likelihood
                   - continuation_log_likelihoods(double, tokenizer, few, arguments.batch_size,
                                                  use_prompt_cache=False).log_likelihood).max(),
            np.abs(context_retrieval_matrix(double, tokenizer, rows[:3], "u2u", arguments.batch_size)
                   - context_retrieval_matrix(double, tokenizer, rows[:3], "u2u", arguments.batch_size,
                                              use_prompt_cache=False)).max())
        print(f"| {name} | {floor.max():.1e} | {exact:.1e} |", flush=True)
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
