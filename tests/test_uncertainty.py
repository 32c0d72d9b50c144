"""Confidence intervals printed next to every accuracy."""

from __future__ import annotations

import math

import pytest

from evaluation.uncertainty import format_accuracy, proportion_interval


@pytest.mark.parametrize("successes, trials", [(136, 200), (0, 8), (8, 8), (1, 3)])
def test_wilson_interval_matches_its_closed_form(successes, trials):
    z, p = 1.959963984540054, successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    low, high = proportion_interval(successes, trials)
    assert low == pytest.approx(max(0.0, centre - half), abs=1e-9) and high == pytest.approx(min(1.0, centre + half), abs=1e-9)


def test_interval_needs_trials_and_formats_in_percent():
    with pytest.raises(ValueError, match="at least one trial"):
        proportion_interval(0, 0)
    assert format_accuracy(0.68, (0.6124, 0.7407)) == "68.0% [61.2, 74.1]"
