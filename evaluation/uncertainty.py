"""Confidence intervals for the accuracies we report, so that a reader can tell a result from noise."""

from __future__ import annotations


def proportion_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (scipy's; it stays inside [0, 1] and is sound for small n)."""
    from scipy.stats import binomtest  # imported here: scipy.stats takes a second to import

    if trials <= 0:
        raise ValueError(f"A proportion needs at least one trial; got {trials}.")
    interval = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def mean_interval(scores, confidence: float = 0.95) -> tuple[float, list[float]]:
    """The mean of per-item scores in [0, 1] and its interval: Wilson's when every score is 0 or 1 (a proportion),
    else a percentile bootstrap over items, since a tie's fractional credit (or a mean over voices) is not a
    binomial count and scipy's Wilson takes only integer successes."""
    import numpy as np

    scores = np.asarray(scores, dtype=float)
    if np.isin(scores, (0.0, 1.0)).all():
        return float(scores.mean()), list(proportion_interval(int(scores.sum()), scores.size, confidence))
    if scores.size < 2:
        return float(scores.mean()), [0.0, 1.0]
    return float(scores.mean()), list(bootstrap_interval(np.mean, scores, confidence=confidence))


def format_accuracy(accuracy: float, interval: tuple[float, float] | list[float], digits: int = 1) -> str:
    """`68.0% [61.2, 74.1]`: an accuracy with its interval, in percent."""
    low, high = interval
    return f"{accuracy:.{digits}%} [{100 * low:.{digits}f}, {100 * high:.{digits}f}]"


def bootstrap_interval(statistic, *samples, confidence: float = 0.95, resamples: int = 1000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(*samples)` over paired resamples of the examples (scipy's), for
    scores such as macro F1 that are not a proportion of independent successes."""
    import numpy as np
    from scipy.stats import bootstrap

    if len(samples[0]) < 2:
        raise ValueError(f"A bootstrap interval needs at least two examples; got {len(samples[0])}.")
    result = bootstrap(tuple(np.asarray(sample) for sample in samples), statistic, paired=True, vectorized=False,
                       n_resamples=resamples, confidence_level=confidence, method="percentile",
                       rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_difference_interval(correct_a, correct_b, confidence: float = 0.95) -> tuple[float, tuple[float, float]]:
    """Accuracy of A minus accuracy of B on the same items, with a paired bootstrap interval: resampling items,
    not each model on its own, so that what both get right or wrong cancels and a real difference shows."""
    import numpy as np

    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"A paired comparison needs both models' outcomes on the same items; got {a.size} and "
                         f"{b.size} items.")
    interval = bootstrap_interval(lambda x, y: x.mean() - y.mean(), a, b, confidence=confidence)
    return float(a.mean() - b.mean()), interval


def format_difference(difference: float, interval: tuple[float, float] | list[float]) -> str:
    """`+6 points [-2, +14]`: an accuracy difference with its interval, in percentage points."""
    low, high = interval
    return f"{100 * difference:+.0f} points [{100 * low:+.0f}, {100 * high:+.0f}]"
