"""Continuation log-likelihoods with each distinct prompt run once and its cache continued by each continuation.

A multiple-choice item's endings, or CRA's N continuations of a prompt, share the prompt's tokens; a full forward
per pair recomputes the prompt for each. Here the distinct prompts run once, left-padded in batches of similar
length with the cache on; the cache's rows are repeated for the continuations (`reorder_cache`), and the
continuations, sorted by length and right-padded, continue it in one forward per batch. The same code runs LST
and the Llama baseline (any transformers causal LM that generates).

It gives the full forward's scores: a token's log-probability depends on the tokens before it only, so padding
after a continuation changes nothing, and positions count real tokens, as they do in a right-padded full forward
(Llama takes them as `position_ids`; LST ignores those and counts the mask itself). LST patches speech statically
in both paths; a prompt that ends inside a speech run leaves its patch open in the cache, and the continuation's
units go on filling it, as in a full forward.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel


def log_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Log-softmax in float32 at least (bf16 / fp16 logits are upcast; a float64 model keeps its precision)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(dim=-1)


def continues_a_cache(model) -> bool:
    """Whether `model` can continue its own cache: a transformers model that generates (LST, Llama, ...)."""
    return isinstance(model, PreTrainedModel) and model.can_generate()


def prompt_batches(endings_per_prompt: list[int], batch_size: int) -> list[list[int]]:
    """Consecutive prompts (sorted by length) grouped so that a batch's continuations fill about `batch_size`
    rows: one prompt forward then serves one continuation forward, and its cache is not copied. A prompt with
    more continuations than that is a batch of its own."""
    batches, rows = [], 0
    for prompt, endings in enumerate(endings_per_prompt):
        if not batches or rows + endings > batch_size:
            batches.append([])
            rows = 0
        batches[-1].append(prompt)
        rows += endings
    return batches


def cached_log_likelihoods(model, rows: list[list[int]], scored_from: list[int], scored_to: list[int],
                           pad_token_id: int, batch_size: int = 16, progress: str | None = None) -> np.ndarray:
    """The summed log-probability of the tokens `rows[i][scored_from[i]:scored_to[i]]` of each encoded pair.

    Row i's prompt is the tokens before its first scored one (at least the first token, as in a full forward,
    where the first token is never predicted); rows with the same prompt share its forward.
    """
    starts = [max(begin, 1) for begin in scored_from]
    pairs_of: dict[tuple, list[int]] = {}
    for index, row in enumerate(rows):
        pairs_of.setdefault(tuple(row[: starts[index]]), []).append(index)
    prompts = sorted(pairs_of, key=len)
    log_likelihood = np.zeros(len(rows))
    device = model.device
    batches = prompt_batches([len(pairs_of[p]) for p in prompts], batch_size)
    for batch in tqdm(batches, desc=progress, unit="batch", disable=progress is None, leave=False):
        batch_prompts = [prompts[p] for p in batch]
        width = max(map(len, batch_prompts))
        ids = torch.tensor([[pad_token_id] * (width - len(p)) + list(p) for p in batch_prompts], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch_prompts], device=device)
        with torch.no_grad():
            outputs = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0),
                            use_cache=True, logits_to_keep=1)
        first = log_probabilities(outputs.logits[:, -1]).cpu()
        members = [(row, index) for row, prompt in enumerate(batch_prompts) for index in pairs_of[prompt]]
        for row, index in members:
            if scored_to[index] > starts[index]:
                log_likelihood[index] = float(first[row, rows[index][starts[index]]])
        # Pairs with more than one scored token continue the cache, shortest first.
        continuing = sorted(((row, index) for row, index in members if scored_to[index] - starts[index] > 1),
                            key=lambda member: scored_to[member[1]] - starts[member[1]])
        groups = [continuing[begin : begin + batch_size] for begin in range(0, len(continuing), batch_size)]
        for number, group in enumerate(groups):
            # reorder_cache replaces the cache's rows in place: every group but the last works on a copy.
            cache = outputs.cache if number == len(groups) - 1 else copy.deepcopy(outputs.cache)
            log_likelihood[[index for _, index in group]] += _continue(model, cache, mask, group, rows, starts,
                                                                       scored_to, pad_token_id)
    return log_likelihood


def _continue(model, cache, prompt_mask, group, rows, starts, scored_to, pad_token_id) -> np.ndarray:
    """Each pair of `group` ((prompt row, pair index)) after its prompt's cache row: the log-probabilities of its
    scored tokens after the first, summed."""
    device = prompt_mask.device
    prompt_rows = torch.tensor([row for row, _ in group], device=device)
    cache.reorder_cache(prompt_rows)
    inputs = [rows[index][starts[index] : scored_to[index] - 1] for _, index in group]
    targets = [rows[index][starts[index] + 1 : scored_to[index]] for _, index in group]
    width = max(map(len, inputs))
    ids = torch.tensor([i + [pad_token_id] * (width - len(i)) for i in inputs], device=device)
    wanted = torch.tensor([t + [pad_token_id] * (width - len(t)) for t in targets], device=device)
    real = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in inputs], device=device)
    prompt_mask = prompt_mask.index_select(0, prompt_rows)
    positions = prompt_mask.sum(dim=1, keepdim=True) + torch.arange(width, device=device)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.cat([prompt_mask, real], dim=1), position_ids=positions,
                       cache=cache, use_cache=True).logits
        token_log_probs = log_probabilities(logits).gather(2, wanted[..., None]).squeeze(2)
    # Summed in float64: a sum of hundreds of speech tokens' log-probabilities is ~1,000, where a float32 step is 1e-4.
    return (token_log_probs.double() * real).sum(dim=1).cpu().numpy()
