"""refimpl.core.stats, the fits used by the spec Y checks: the log-linear rate fit (Y11), Spearman's
ρ (Fig. 5(b)) and log interpolation (Fig. 5 per iteration) — exact on constructed data, honest at
the edges (too few points, constant input, past the last record), and refusing non-finite input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from refimpl.core.stats import log_interp, log_linear_fit, spearman


@settings(max_examples=50)
@given(rho=st.floats(1e-4, 1.0), a=st.floats(-5, 5), n=st.integers(3, 60))
def test_log_linear_fit_recovers_an_exact_exponential(rho, a, n):
    t = np.arange(n) * 10
    y = np.exp(a - rho * t)
    got, r2, k = log_linear_fit(t, y, 1e-300, 1e300)
    assert k == n and got == pytest.approx(rho, rel=1e-9, abs=1e-12) and r2 == pytest.approx(1.0, abs=1e-9)


def test_log_linear_fit_uses_only_the_window_and_reports_noise_in_r2():
    t = np.arange(100.0)
    y = np.exp(-0.3 * t)  # 1 … 1.6e-13
    rho, r2, n = log_linear_fit(t, y, 1e-10, 1e-2)
    assert n == np.sum((y >= 1e-10) & (y <= 1e-2)) and rho == pytest.approx(0.3, rel=1e-12)
    # a plateau inside the window is not linear convergence: the fit says so through R²
    y2 = np.where(t < 50, np.exp(-0.3 * t), np.exp(-0.3 * 49))
    rho2, r2b, _ = log_linear_fit(t, y2, 1e-10, 1e-2)
    assert r2b < 0.9 and rho2 < 0.3
    # fewer than 3 points in the window: no rate
    rho3, r23, n3 = log_linear_fit(t, y, 0.5, 0.9)
    assert n3 == 2 and np.isnan(rho3) and np.isnan(r23)


def test_log_linear_fit_refuses_bad_input():
    with pytest.raises(ValueError, match="finite"):
        log_linear_fit([0, 1, 2], [1.0, np.nan, 0.1], 1e-3, 1.0)
    with pytest.raises(ValueError, match="shape"):
        log_linear_fit([0, 1, 2], [1.0, 0.5], 1e-3, 1.0)
    with pytest.raises(ValueError, match="window"):
        log_linear_fit([0, 1, 2], [1.0, 0.5, 0.2], 0.0, 1.0)


def test_spearman():
    assert spearman([1, 2, 4, 8], [10, 9, 3, 1]) == -1.0
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == 1.0
    x, y = [1, 2, 4, 8, 16, 32, 64], [99, 95, 79, 77, 49, 18, 10]
    assert spearman(x, y) == pytest.approx(sps.spearmanr(x, y)[0], rel=1e-15)
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0  # constant: no monotone association
    with pytest.raises(ValueError, match="finite"):
        spearman([1, 2, 3], [1, np.inf, 2])
    with pytest.raises(ValueError, match="length"):
        spearman([1, 2, 3], [1, 2])


def test_log_interp():
    xp, fp = [0, 10, 20], [1.0, 1e-2, 1e-4]
    assert log_interp(5, xp, fp) == pytest.approx(1e-1, rel=1e-12)  # geometric, not arithmetic, mean
    assert log_interp(20, xp, fp) == pytest.approx(1e-4, rel=1e-12)
    assert np.isnan(log_interp(21, xp, fp))  # past the last record: not reached
    assert log_interp(5, xp, [1.0, 0.0, 0.0]) == pytest.approx(np.sqrt(1e-300), rel=1e-9)  # 0 taken as 1e-300
