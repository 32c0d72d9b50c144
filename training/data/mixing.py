"""Mixtures of formatted sources, by target shares of examples or by a target speech:text token ratio,
with the realised ratios measured rather than assumed.

SUTLM samples speech-only, paired and text-only data a third each; LST samples one third interleaved and two
thirds text, and its ablation (A.6) sets the speech:text token ratio to 1:2. `datasets.interleave_datasets`
does the sampling; `token_ratio_weights` finds source weights that hit a token ratio.
"""

from __future__ import annotations

import itertools
import math

import datasets
import numpy as np


def with_source(dataset, name: str):
    """Tag every row with its source name (kept through mixing, for the realised-ratio report)."""
    features = datasets.Features({**dataset.features, "source": datasets.Value("string")})
    return dataset.map(lambda batch: {"source": [name] * len(batch["input_ids"])}, batched=True, features=features)


def check_weights(weights: dict, what: str, allowed=None) -> None:
    """Named weights: known names (when `allowed` is given), each a finite number >= 0, with a positive sum.
    A zero weight leaves its source out on purpose; a negative one is refused rather than dropped."""
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"{what} must be a non-empty mapping of name to weight, got {weights!r}.")
    unknown = sorted(set(weights) - set(allowed)) if allowed is not None else []
    if unknown:
        raise ValueError(f"{what}: unknown name(s) {unknown}; choose from {list(allowed)}.")
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"{what}: the weight of {name!r} is {weight!r}; weights are finite numbers >= 0 "
                             "(0 leaves the source out).")
    if sum(weights.values()) <= 0:
        raise ValueError(f"{what}: every weight is 0 ({weights}); give at least one source a positive weight.")


def mix(sources: dict, weights: dict[str, float], seed: int = 0):
    """Rows drawn from `sources` with probabilities proportional to `weights`, until one source runs out
    (so the realised shares match the weights; `stopping_strategy="first_exhausted"`)."""
    if set(sources) != set(weights):
        raise ValueError(f"Weights are for {sorted(weights)} but the sources are {sorted(sources)}.")
    check_weights(weights, "mix weights")
    names = [name for name in sources if weights[name] > 0]
    total = sum(weights[name] for name in names)
    return datasets.interleave_datasets(
        [with_source(sources[name], name) for name in names], probabilities=[weights[n] / total for n in names],
        seed=seed, stopping_strategy="first_exhausted",
    )


def token_counts(rows, tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Speech and text tokens per row (markers and special tokens are neither)."""
    low, high = tokenizer.vocabulary_layout()["text_token_range"]
    speech, text = [], []
    for row in rows:
        ids, modality = np.asarray(row["input_ids"]), np.asarray(row["modality_mask"])
        speech.append(int(modality.sum()))
        text.append(int(((ids >= low) & (ids < high)).sum()))
    return np.array(speech), np.array(text)


def token_ratio_weights(sources: dict, tokenizer, speech_per_text: float, base_weights: dict[str, float] | None = None,
                        sample_size: int = 10_000) -> dict[str, float]:
    """Source weights whose expected speech:text token ratio is `speech_per_text`.

    Starting from `base_weights` (default equal), weights are tilted towards speech-heavy or text-heavy
    sources, w_i ∝ b_i·exp(θ·f_i) with f_i the source's speech-token fraction, and θ is found by bisection:
    the ratio grows monotonically with θ, so the answer is unique. Means come from the first `sample_size`
    rows of each source.
    """
    names = list(sources)
    base = np.array([(base_weights or {}).get(n, 1.0) for n in names], dtype=np.float64)
    means = []
    for name in names:
        speech, text = token_counts(itertools.islice(iter(sources[name]), sample_size), tokenizer)
        means.append((speech.mean(), text.mean()))
    speech_mean, text_mean = np.array(means).T
    fraction = speech_mean / np.maximum(speech_mean + text_mean, 1e-9)

    def ratio(theta: float) -> float:
        w = base * np.exp(theta * (fraction - fraction.max()))
        return float((w * speech_mean).sum() / max((w * text_mean).sum(), 1e-12))

    low, high = -200.0, 200.0
    if not ratio(low) <= speech_per_text <= ratio(high):
        raise ValueError(
            f"A speech:text token ratio of {speech_per_text} is out of reach of these sources "
            f"(from {ratio(low):.3g} to {ratio(high):.3g}); add a source richer in the missing modality."
        )
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if ratio(middle) < speech_per_text else (low, middle)
    weights = base * np.exp(low * (fraction - fraction.max()))
    weights /= weights.sum()
    return {name: float(w) for name, w in zip(names, weights)}


class RealisedRatios:
    """Running counts of examples by source and format, and of speech and text tokens: the realised mixture of
    rows seen so far. `observe` is a batched `map` function that counts and passes the batch on, so a stream
    is measured while it is written rather than read twice or held in memory."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.examples = self.speech_tokens = self.text_tokens = 0
        self.shares = {"source": {}, "format": {}}

    def add(self, rows) -> None:
        rows = list(rows)
        speech, text = token_counts(rows, self.tokenizer)
        self.examples += len(rows)
        self.speech_tokens, self.text_tokens = self.speech_tokens + int(speech.sum()), self.text_tokens + int(text.sum())
        for key, counts in self.shares.items():
            for row in rows:
                if key in row:
                    counts[row[key]] = counts.get(row[key], 0) + 1

    def observe(self, batch: dict) -> dict:
        self.add(dict(zip(batch, values)) for values in zip(*batch.values()))
        return batch

    def report(self) -> dict:
        report = {"examples": self.examples, "speech_tokens": self.speech_tokens, "text_tokens": self.text_tokens,
                  "speech_per_text": self.speech_tokens / self.text_tokens if self.text_tokens else math.inf}
        for key, counts in self.shares.items():
            if counts:
                report[f"{key}_shares"] = {str(n): c / self.examples for n, c in sorted(counts.items())}
        return report


def realised_ratios(rows, tokenizer, limit: int | None = None) -> dict:
    """Shares of examples by source and by format, and the speech:text token ratio, over `rows` (or the
    first `limit`)."""
    tally = RealisedRatios(tokenizer)
    tally.add(itertools.islice(iter(rows), limit) if limit else rows)
    return tally.report()
