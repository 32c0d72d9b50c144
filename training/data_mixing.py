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


def realised_ratios(rows, tokenizer, limit: int | None = None) -> dict:
    """Shares of examples by source and by format, and the speech:text token ratio, over `rows` (or the
    first `limit`)."""
    rows = list(itertools.islice(iter(rows), limit) if limit else rows)
    speech, text = token_counts(rows, tokenizer)
    report = {"examples": len(rows), "speech_tokens": int(speech.sum()), "text_tokens": int(text.sum()),
              "speech_per_text": float(speech.sum() / text.sum()) if text.sum() else math.inf}
    for key in ("source", "format"):
        if rows and key in rows[0]:
            names, counts = np.unique([row[key] for row in rows], return_counts=True)
            report[f"{key}_shares"] = {str(n): float(c / len(rows)) for n, c in zip(names, counts)}
    return report
