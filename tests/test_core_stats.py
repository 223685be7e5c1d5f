"""refimpl.core.stats: every fit and interval against a case computed by hand or in closed form,
and every function refusing NaN input (a ``ValueError``, never a NaN counted as data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from refimpl.core import stats


# --------------------------------------------------------------------------------------------
# Clopper–Pearson
# --------------------------------------------------------------------------------------------
def test_clopper_pearson_closed_forms():
    # k = 0: the upper end solves (1 − p)^n = α/2, i.e. p = 1 − (α/2)^(1/n); the lower end is 0
    lo, hi = stats.clopper_pearson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 20), rel=1e-12)
    # k = n: the mirror image
    lo, hi = stats.clopper_pearson(20, 20)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 20), rel=1e-12)
    # n = 1, k = 1 at level 0.9: lower end p with p¹ = 0.05
    assert stats.clopper_pearson(1, 1, level=0.9)[0] == pytest.approx(0.05, rel=1e-12)
    # an interior case brackets the point estimate, and the interval is symmetric under k -> n − k
    lo, hi = stats.clopper_pearson(7, 50)
    assert lo < 7 / 50 < hi
    lo2, hi2 = stats.clopper_pearson(43, 50)
    assert lo2 == pytest.approx(1 - hi, rel=1e-12) and hi2 == pytest.approx(1 - lo, rel=1e-12)


@pytest.mark.parametrize("k, n, level", [(np.nan, 10, 0.95), (1, np.nan, 0.95), (1, 10, np.nan), (11, 10, 0.95),
                                         (1, 10, 1.0)])
def test_clopper_pearson_refuses_bad_input(k, n, level):
    with pytest.raises(ValueError):
        stats.clopper_pearson(k, n, level)


# --------------------------------------------------------------------------------------------
# log–log fits
# --------------------------------------------------------------------------------------------
def test_loglog_fit_exact_power_law_and_interval():
    x = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    exact = stats.loglog_fit(x, 3.0 * x ** -0.5)
    assert exact["slope"] == pytest.approx(-0.5, abs=1e-12)
    assert exact["intercept"] == pytest.approx(math.log(3.0), abs=1e-12)
    assert exact["r2"] == pytest.approx(1.0) and exact["n_points"] == 5
    noisy = stats.loglog_fit(x, 3.0 * x ** -0.5 * np.exp([0.01, -0.02, 0.0, 0.02, -0.01]))
    assert noisy["ci"][0] < -0.5 < noisy["ci"][1]
    # the interval is slope ± t_{0.975, n−2} · SE, with SE from the residuals (by hand)
    lx, ly = np.log(x), np.log(3.0 * x ** -0.5 * np.exp([0.01, -0.02, 0.0, 0.02, -0.01]))
    b = np.polyfit(lx, ly, 1)
    resid = ly - np.polyval(b, lx)
    se = math.sqrt(np.sum(resid ** 2) / 3 / np.sum((lx - lx.mean()) ** 2))
    half = sps.t.ppf(0.975, 3) * se
    assert noisy["ci"][1] - noisy["slope"] == pytest.approx(half, rel=1e-10)
    two = stats.loglog_fit([1.0, 2.0], [1.0, 4.0])  # two points: slope 2, no interval
    assert two["slope"] == pytest.approx(2.0) and two["ci"] == (-math.inf, math.inf)


@pytest.mark.parametrize("x, y", [([1, 2, np.nan], [1, 2, 3]), ([1, 2, 3], [1, np.inf, 3]), ([1, 2, 3], [1, 0, 3]),
                                  ([1, 1, 1], [1, 2, 3])])
def test_loglog_fit_refuses_bad_input(x, y):
    with pytest.raises(ValueError):
        stats.loglog_fit(x, y)


def test_residual_slope_exact_and_undefined():
    x = np.array([4.0, 6.0, 8.0, 10.0])
    assert stats.residual_slope(x, 0.3 * x ** -0.5) == pytest.approx(-0.5, abs=1e-12)
    assert math.isnan(stats.residual_slope([6, 6], [1.0, 2.0]))  # one distinct x
    assert math.isnan(stats.residual_slope([1, 2], [1.0, 0.0]))  # y ≤ 0
    with pytest.raises(ValueError):
        stats.residual_slope([1, 2], [1.0, np.nan])


# --------------------------------------------------------------------------------------------
# paired comparisons
# --------------------------------------------------------------------------------------------
def test_paired_contrast_by_hand():
    values = np.array([[1.0, 2.0], [3.0, 3.0], [2.0, 5.0]])  # J = 3 batches, K = 2 quantities
    w = np.array([0.25, 0.25, 0.5])
    mean, se = stats.paired_contrast(values, w, [-1.0, 1.0])  # v = (1, 0, 3)
    assert mean == pytest.approx(0.25 * 1 + 0.5 * 3)  # 1.75
    dev = np.array([1.0, 0.0, 3.0]) - 1.75
    assert se == pytest.approx(math.sqrt(3 / 2 * np.sum(w ** 2 * dev ** 2)))
    assert stats.paired_contrast(values, w, [1.0, -1.0])[0] == pytest.approx(-1.75)
    # identical quantities: contrast exactly 0 with SE 0
    assert stats.paired_contrast(values[:, [0, 0]], w, [1.0, -1.0]) == (0.0, 0.0)
    with pytest.raises(ValueError):
        stats.paired_contrast(np.array([[1.0, np.nan], [1.0, 1.0]]), [0.5, 0.5], [1.0, -1.0])
    with pytest.raises(ValueError):
        stats.paired_contrast(values[:1], [1.0], [1.0, -1.0])  # one batch: no standard error


def test_paired_difference_by_hand():
    d = np.array([1, 0, 0, -1, 1, 1, 0, 0])  # per-item paired differences
    mean, se = stats.paired_difference(d.sum(), (d * d).sum(), len(d))
    assert mean == pytest.approx(d.mean())
    assert se == pytest.approx(d.std() / math.sqrt(len(d)))  # plug-in (ddof = 0) variance
    assert stats.paired_difference(0, 0, 10) == (0.0, 0.0)
    with pytest.raises(ValueError):
        stats.paired_difference(np.nan, 0, 10)


def test_mean_of_independent_by_hand():
    est = np.array([[0.1, 0.2], [0.3, 0.2]])
    se = np.array([[0.03, 0.0], [0.04, 0.0]])
    m, s = stats.mean_of_independent(est, se)
    np.testing.assert_allclose(m, [0.2, 0.2])
    np.testing.assert_allclose(s, [0.05 / 2, 0.0])  # √(0.03² + 0.04²) / 2
    with pytest.raises(ValueError):
        stats.mean_of_independent(np.array([np.nan, 1.0]), np.array([0.1, 0.1]))


# --------------------------------------------------------------------------------------------
# stratified sampling
# --------------------------------------------------------------------------------------------
def test_binomial_strata_weights_and_merging():
    groups, w = stats.binomial_strata(20, 0.3, 100_000, 3, 50)  # P(k = 0) = 0.7^20 ≈ 8e-4: kept
    assert groups == [(0, 0), (1, 1), (2, 2), (3, 20)]
    assert w[0] == pytest.approx(0.7 ** 20, rel=1e-12) and w.sum() == pytest.approx(1.0, abs=1e-12)
    groups, w = stats.binomial_strata(20, 0.4, 100_000, 3, 50)  # P(k = 0) = 0.6^20 ≈ 4e-5: merged up
    assert groups == [(0, 1), (2, 2), (3, 20)]
    assert w[0] == pytest.approx(0.6 ** 20 + 20 * 0.4 * 0.6 ** 19, rel=1e-12)
    groups, w = stats.binomial_strata(2, 0.5, 10, 3, 50)  # every stratum rare: one stratum, weight 1
    assert groups == [(0, 2)] and w == pytest.approx([1.0])
    with pytest.raises(ValueError):
        stats.binomial_strata(20, np.nan, 1000, 3, 50)


def test_stratified_rate_by_hand():
    stratum = np.array([0, 0, 1, 1, 1, 1])
    values = np.array([1, 0, 0, 0, 0, 1])
    est, se = stats.stratified_rate(values, stratum, np.array([0.2, 0.8]))
    assert est == pytest.approx(0.2 * 0.5 + 0.8 * 0.25)
    assert se == pytest.approx(math.sqrt(0.04 * 0.5 / 2 + 0.64 * 0.25 / 4))  # sample variances, ddof = 1
    one, se1 = stats.stratified_rate(np.array([1, 0, 1]), np.array([0, 1, 1]), np.array([0.5, 0.5]))
    assert one == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    assert se1 == pytest.approx(math.sqrt(0.25 * 1.0 / 1 + 0.25 * 0.5 / 2))  # one item: s² bound 1
    with pytest.raises(ValueError, match="stratum 2"):
        stats.stratified_rate(values, stratum, np.array([0.2, 0.7, 0.1]))
    with pytest.raises(ValueError):
        stats.stratified_rate(np.array([1.0, np.nan]), np.array([0, 0]), np.array([1.0]))
