"""Log-likelihoods of continuations given contexts, for any causal LM over the joint vocabulary.

The core of CRA and of multiple-choice evaluation. A context and a continuation are lists of segments (text
strings and unit arrays); they are encoded together, and only the continuation's own tokens are scored: a
modality marker between them is left out, since it does not belong to the continuation and its probability
would differ between contexts. Works for `LSTForCausalLM` and for the Llama baseline alike.

By default each distinct context runs once and its cache is continued by each of its continuations
(`cached_scoring`); `use_prompt_cache=False` scores every pair by a full forward, the reference the cached path
is tested and timed against. Models without a cache of their own are always scored by full forwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from lst_speech.evaluation.cached_scoring import cached_log_likelihoods, continues_a_cache, log_probabilities

NORMALIZATIONS = ("sum", "per_token", "per_unit")


@dataclass
class ContinuationScores:
    """Per (context, continuation) pair: the summed log-likelihood, its token count and its size in
    characters (text) or units (speech), for the three normalisations."""

    log_likelihood: np.ndarray
    num_tokens: np.ndarray
    num_units: np.ndarray

    def normalized(self, normalization: str) -> np.ndarray:
        if normalization == "sum":
            return self.log_likelihood
        if normalization == "per_token":
            return self.log_likelihood / self.num_tokens
        if normalization == "per_unit":
            return self.log_likelihood / self.num_units
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}.")


def _size(segments) -> int:
    return sum(len(s) if isinstance(s, str) else int(np.asarray(s).size) for s in segments)


def continuation_log_likelihoods(model, tokenizer, pairs, batch_size: int = 16, progress: str | None = None,
                                 use_prompt_cache: bool = True) -> ContinuationScores:
    """Score `pairs` of (context segments, continuation segments); `progress` labels a progress bar over batches;
    `use_prompt_cache` runs each distinct context once (see the module's docstring)."""
    rows, scored_from, scored_to = [], [], []
    for context, continuation in pairs:
        if not continuation:
            raise ValueError("A continuation needs at least one segment.")
        # BOS and the context's tokens (an empty context, as in sWUGGY-style pairs, is just BOS).
        prefix = int(tokenizer.add_bos_token) + (
            len(tokenizer(segments=list(context), add_special_tokens=False)["input_ids"]) if context else 0
        )
        full = tokenizer(segments=list(context) + list(continuation))["input_ids"]
        rows.append(full)
        scored_from.append(prefix + (1 if full[prefix] in tokenizer.marker_token_ids else 0))
        scored_to.append(len(full) - int(tokenizer.add_eos_token))
    num_tokens = np.array([b - a for a, b in zip(scored_from, scored_to)], dtype=np.float64)
    if use_prompt_cache and continues_a_cache(model):
        log_likelihood = cached_log_likelihoods(model, rows, scored_from, scored_to, tokenizer.pad_token_id,
                                                batch_size, progress)
    else:
        log_likelihood = _full_forward_log_likelihoods(model, rows, scored_from, scored_to, tokenizer.pad_token_id,
                                                       batch_size, progress)
    return ContinuationScores(log_likelihood, num_tokens, np.array([_size(c) for _, c in pairs], dtype=np.float64))


def _full_forward_log_likelihoods(model, rows, scored_from, scored_to, pad_token_id, batch_size,
                                  progress) -> np.ndarray:
    """One right-padded full forward per pair, `batch_size` pairs at a time, in the given order."""
    log_likelihood = np.zeros(len(rows))
    device = model.device
    batches = range(0, len(rows), batch_size)
    for begin in tqdm(batches, desc=progress, unit="batch", disable=progress is None, leave=False):
        batch = rows[begin : begin + batch_size]
        width = max(map(len, batch))
        ids = torch.tensor([r + [pad_token_id] * (width - len(r)) for r in batch], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in batch], device=device)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            log_probs = log_probabilities(logits)
        # Token t is predicted at position t - 1.
        token_log_probs = log_probs[:, :-1].gather(2, ids[:, 1:, None]).squeeze(2)
        positions = torch.arange(1, width, device=device)[None]
        starts = torch.tensor(scored_from[begin : begin + batch_size], device=device)[:, None]
        ends = torch.tensor(scored_to[begin : begin + batch_size], device=device)[:, None]
        scored = (positions >= starts) & (positions < ends)
        log_likelihood[begin : begin + len(batch)] = (token_log_probs.double() * scored).sum(dim=1).cpu().numpy()
    return log_likelihood
