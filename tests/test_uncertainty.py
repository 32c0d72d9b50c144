"""Confidence intervals printed next to every accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lst_speech.evaluation.uncertainty import (
    format_accuracy,
    format_difference,
    mean_interval,
    paired_difference_interval,
    proportion_interval,
)


@pytest.mark.parametrize("successes, trials", [(136, 200), (0, 8), (8, 8), (1, 3)])
def test_wilson_interval_matches_its_closed_form(successes, trials):
    z, p = 1.959963984540054, successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    low, high = proportion_interval(successes, trials)
    assert low == pytest.approx(max(0.0, centre - half), abs=1e-9) and high == pytest.approx(min(1.0, centre + half), abs=1e-9)


@pytest.mark.parametrize("scores", [[1, 1, 0, 1], [0, 0, 0], [1] * 9, [1, 0] * 50])
def test_mean_interval_of_whole_credits_is_scipys_wilson(scores):
    mean, interval = mean_interval(scores)
    assert mean == np.mean(scores) and interval == list(proportion_interval(sum(scores), len(scores)))


@pytest.mark.parametrize("scores", [[1, 0.5, 0, 1], [0.5, 0.5], [1, 1, 1, 1 / 3], [0, 0, 0, 0.5], [0.5, 1, 0] * 30])
def test_mean_interval_of_fractional_credits_lies_in_0_1_around_the_mean(scores):
    """Ties give fractional credit (0.5, 1/3), which is no binomial count: a bootstrap over items."""
    mean, (low, high) = mean_interval(scores)
    assert mean == pytest.approx(np.mean(scores)) and 0.0 <= low <= mean <= high <= 1.0


def test_interval_needs_trials_and_formats_in_percent():
    with pytest.raises(ValueError, match="at least one trial"):
        proportion_interval(0, 0)
    assert format_accuracy(0.68, (0.6124, 0.7407)) == "68.0% [61.2, 74.1]"


def test_paired_difference_is_narrower_than_two_wilson_intervals_when_items_agree():
    """Two models right and wrong on mostly the same items: the paired interval sees a 7-point gain that the two
    separate Wilson intervals, side by side, cannot tell from noise."""
    rng = np.random.default_rng(0)
    shared = rng.random(200) < 0.6
    better = shared | (rng.random(200) < 0.1)
    difference, (low, high) = paired_difference_interval(better, shared)
    assert difference == pytest.approx(better.mean() - shared.mean()) == pytest.approx(0.07)
    assert 0 < low < difference < high
    (better_low, _), (_, shared_high) = proportion_interval(better.sum(), 200), proportion_interval(shared.sum(), 200)
    assert better_low < shared_high  # the separate intervals overlap
    assert format_difference(difference, (low, high)) == f"+7 points [{100 * low:+.0f}, {100 * high:+.0f}]"


def test_paired_difference_needs_the_same_items():
    with pytest.raises(ValueError, match="same items; got 3 and 2"):
        paired_difference_interval([1, 0, 1], [1, 0])
