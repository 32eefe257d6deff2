"""The Wilson score interval against published and reference values, not against itself."""

from __future__ import annotations

import pytest

from mirisk.metrics.intervals import wilson_interval

# (successes, trials) -> 95% Wilson interval. The first four are Newcombe (1998), "Two-sided
# confidence intervals for the single proportion", Statistics in Medicine 17:857-872, Table
# II, method 3; all eight were read from statsmodels 0.15.0,
# proportion_confint(successes, trials, method="wilson"), on 2026-12-07.
REFERENCE = {
    (81, 263): (0.255289, 0.366210),
    (15, 148): (0.062386, 0.160487),
    (0, 20): (0.000000, 0.161125),
    (1, 29): (0.006113, 0.171755),
    (1, 62): (0.002853, 0.085867),  # one person of LFW's 62 private people named
    (31, 62): (0.379227, 0.620773),
    (62, 62): (0.941656, 1.000000),
    (0, 1): (0.000000, 0.793451),
}


@pytest.mark.parametrize(("successes", "trials"), list(REFERENCE))
def test_the_interval_matches_the_reference_values(successes, trials):
    low, high = wilson_interval(successes, trials)
    assert (low, high) == pytest.approx(REFERENCE[(successes, trials)], abs=1e-6)


def test_no_trials_say_nothing_and_a_wider_confidence_widens():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    narrow, wide = wilson_interval(31, 62, 0.90), wilson_interval(31, 62, 0.99)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]
