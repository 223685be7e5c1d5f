"""The fits of the spec H checks (refimpl/core/stats.py, ``# --- fits used by the spec H checks``):
known answers, the checks' own arithmetic, and refusals of what is not data."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.core.stats import loglog_slope, ratio_range


def test_loglog_slope_recovers_exact_power_laws():
    x = np.array([4, 8, 16, 32])
    for k in (0.0, 0.5, 2.0, -1.0):
        assert loglog_slope(x, 3.0 * x**k) == pytest.approx(k, abs=1e-12)
    # the H11a/H12b measurement: t½ = {4: 36, 8: 207, 16: 849, 32: 3096} (quick report) → 2.13
    assert loglog_slope([4, 8, 16, 32], [36, 207, 849, 3096]) == pytest.approx(2.13, abs=0.005)


def test_loglog_slope_is_the_least_squares_fit_of_the_logs():
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 100, 12)
    y = x**1.7 * np.exp(0.3 * rng.standard_normal(12))
    lx, ly = np.log(x), np.log(y)
    ref = np.sum((lx - lx.mean()) * (ly - ly.mean())) / np.sum((lx - lx.mean()) ** 2)
    assert loglog_slope(x, y) == pytest.approx(ref, rel=1e-12)
    # the value the checks used before the move (np.polyfit on the logs), bit for bit
    assert loglog_slope(x, y) == float(np.polyfit(lx, ly, 1)[0])


@pytest.mark.parametrize("x,y,match", [
    ([4, 8, 16], [10, None, 30], "finite"),             # a time that was never reached (None → nan)
    ([4, 8, 16], ["a", 2, 3], "real numbers"),
    ([4, 8, 16], [10, np.nan, 30], "finite"),
    ([4, 8, 16], [10, 0, 30], "positive"),
    ([4, 8], [10, 20, 30], "same length"),
    ([4, 4, 4], [1, 2, 3], "two distinct"),
    ([[4, 8]], [[1, 2]], "1-dimensional"),
])
def test_loglog_slope_refuses_what_is_not_data(x, y, match):
    with pytest.raises(ValueError, match=match):
        loglog_slope(x, y)


def test_ratio_range_selects_the_closed_window():
    t = np.arange(0, 11)
    measured = 2.0 * t
    assert ratio_range(t, measured, 2.0, (3, 7)) == (3.0, 7.0)  # t/1 over t ∈ [3, 7], both ends in
    # a function of t is evaluated inside the window only (t = 0 would divide by zero)
    lo, hi = ratio_range(t, measured, lambda tw: 2.0 * tw, (1, 10))
    assert lo == hi == 1.0
    assert ratio_range(t, measured, 2.0 * np.maximum(t, 1), (2, 4)) == (1.0, 1.0)


def test_ratio_range_is_the_checks_arithmetic():
    """H11b and H11c: the same numbers as the inline selection the checks used before the move."""
    rng = np.random.default_rng(1)
    t = np.unique(np.concatenate([[0], rng.integers(1, 40000, 300)]))
    Lk = 2.5 / np.maximum(t, 1) * (1 + 0.1 * rng.standard_normal(t.size))
    sel = (t >= 5000) & (t <= 20000)
    old = Lk[sel] * t[sel] / (10 / 4.0)
    assert ratio_range(t, Lk * t, 10 / 4.0, (5000, 20000)) == (float(old.min()), float(old.max()))
    a = 1 - 0.5 / np.sqrt(np.maximum(t, 1))
    pred = (2 * 1.0 * (1 / 10) * t[sel]) ** -0.5
    old = (1 - a[sel]) / pred
    got = ratio_range(t, 1 - a, lambda tw: (2 * 1.0 * (1 / 10) * tw) ** -0.5, (5000, 20000))
    assert got == (float(old.min()), float(old.max()))


@pytest.mark.parametrize("kwargs,match", [
    ({"window": (20, 30)}, "no t in the window"),
    ({"window": (5, 2)}, "lo ≤ hi"),
    ({"predicted": 0.0}, "predicted is 0"),
    ({"measured": np.full(11, np.inf)}, "not finite"),
    ({"measured": np.ones(3)}, "shape of t"),
    ({"predicted": np.ones(3)}, "shape of t"),
])
def test_ratio_range_refuses_empty_windows_and_non_finite_ratios(kwargs, match):
    args = {"t": np.arange(11), "measured": np.ones(11), "predicted": 1.0, "window": (2, 5)} | kwargs
    with pytest.raises(ValueError, match=match):
        ratio_range(**args)
