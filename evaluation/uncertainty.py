"""Confidence intervals for the accuracies we report, so that a reader can tell a result from noise."""

from __future__ import annotations


def proportion_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (scipy's; it stays inside [0, 1] and is sound for small n)."""
    from scipy.stats import binomtest  # imported here: scipy.stats takes a second to import

    if trials <= 0:
        raise ValueError(f"A proportion needs at least one trial; got {trials}.")
    interval = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def format_accuracy(accuracy: float, interval: tuple[float, float] | list[float], digits: int = 1) -> str:
    """`68.0% [61.2, 74.1]`: an accuracy with its interval, in percent."""
    low, high = interval
    return f"{accuracy:.{digits}%} [{100 * low:.{digits}f}, {100 * high:.{digits}f}]"
