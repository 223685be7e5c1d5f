"""Statistics used by the checks: every fit and interval in one tested place.

Intervals and fits return plain floats and tuples; they never count NaN as data (a non-finite
input raises ``ValueError``).
"""

from __future__ import annotations

from scipy import stats


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial confidence interval for k errors out of n."""
    lo = 0.0 if k == 0 else float(stats.beta.ppf((1 - level) / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - (1 - level) / 2, k + 1, n - k))
    return lo, hi


# --- fits used by the spec H checks (refimpl/huang2023/checks.py; tests/test_core_stats_huang.py)
def _finite_1d(name: str, x):
    import numpy as np

    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be real numbers, got {x!r}") from exc
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {a.tolist()}")
    return a


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (the exponent of a power law y ∝ x^slope).

    ``x``, ``y``: equal-length sequences of positive finite numbers with at least two distinct
    x; anything else (a None for "never reached", a zero, a NaN) raises ``ValueError``."""
    import numpy as np

    xa, ya = _finite_1d("x", x), _finite_1d("y", y)
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same length, got {xa.size} and {ya.size}")
    if np.any(xa <= 0) or np.any(ya <= 0):
        raise ValueError(f"x and y must be positive for a log-log fit, got x={xa.tolist()}, y={ya.tolist()}")
    if np.unique(xa).size < 2:
        raise ValueError(f"a slope needs at least two distinct x, got {xa.tolist()}")
    return float(np.polyfit(np.log(xa), np.log(ya), 1)[0])


def ratio_range(t, measured, predicted, window) -> tuple[float, float]:
    """(min, max) of measured/predicted over the entries with window[0] ≤ t ≤ window[1].

    ``t`` (T,) the abscissa, ``measured`` (T,); ``predicted`` a scalar, an array (T,), or a
    function of the t inside the window (evaluated there only). The ratio is taken entry by
    entry. An empty window, a zero prediction or a non-finite ratio in the window raises
    ``ValueError``."""
    import numpy as np

    ta = _finite_1d("t", t)
    lo, hi = window
    if not lo <= hi:
        raise ValueError(f"window must be (lo, hi) with lo ≤ hi, got {window!r}")
    m = np.asarray(measured, dtype=float)
    if m.shape != ta.shape:
        raise ValueError(f"measured must have the shape of t {ta.shape}, got {m.shape}")
    sel = (ta >= lo) & (ta <= hi)
    if not np.any(sel):
        raise ValueError(f"no t in the window [{lo}, {hi}] (t spans [{ta.min()}, {ta.max()}])")
    if callable(predicted):
        p = np.asarray(predicted(ta[sel]), dtype=float)
    elif np.ndim(predicted):
        p = np.asarray(predicted, dtype=float)
        if p.shape != ta.shape:
            raise ValueError(f"predicted must be a scalar or have the shape of t {ta.shape}, got {p.shape}")
        p = p[sel]
    else:
        p = float(predicted)
    if np.any(p == 0):
        raise ValueError("predicted is 0 inside the window")
    r = m[sel] / p
    if not np.all(np.isfinite(r)):
        raise ValueError(f"measured/predicted is not finite inside the window: {r.tolist()}")
    return float(r.min()), float(r.max())


# --- fits used by the spec Y checks
# (numpy is imported inside the functions: the top of this file is edited elsewhere)
def log_linear_fit(x, y, lo: float, hi: float) -> tuple[float, float, int]:
    """Least-squares fit of ln y = a − ρ x on the points with lo ≤ y ≤ hi: ``(ρ, R², n)``.

    ``(nan, nan, n)`` when fewer than 3 points lie in the window (a rate from 2 points has no R²).
    Used for linear convergence, y = L − L* decaying like e^{−ρt} (spec Y11). Non-finite x or y
    raise ``ValueError`` (a NaN is never silently left out of the window)."""
    import numpy as np

    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of one length, got shapes {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    if not (0 < lo <= hi):
        raise ValueError(f"the window must satisfy 0 < lo ≤ hi, got lo={lo!r}, hi={hi!r}")
    sel = (y >= lo) & (y <= hi)
    if sel.sum() < 3:
        return float("nan"), float("nan"), int(sel.sum())
    xs, ly = x[sel].astype(float), np.log(y[sel])
    A = np.vstack([np.ones_like(xs), xs]).T
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    res = ly - A @ coef
    r2 = 1 - np.sum(res ** 2) / np.sum((ly - ly.mean()) ** 2)
    return float(-coef[1]), float(r2), int(sel.sum())


def spearman(x, y) -> float:
    """Spearman's rank correlation ρ(x, y); 0.0 when either sequence is constant (no monotone
    association; scipy would return NaN with a warning). Non-finite input raises ``ValueError``."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"x and y must be 1-D of one length ≥ 2, got shapes {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    if len(set(x.tolist())) < 2 or len(set(y.tolist())) < 2:
        return 0.0
    return float(stats.spearmanr(x, y)[0])


def log_interp(x: float, xp, fp) -> float:
    """f(x) interpolated linearly in ln f between the points (xp, fp) (xp increasing, fp > 0;
    entries ≤ 1e−300 are taken as 1e−300); NaN beyond the last point (not reached)."""
    import numpy as np

    xp = np.asarray(xp, dtype=float)
    fp = np.asarray(fp, dtype=float)
    if x > xp[-1]:
        return float("nan")
    return float(np.exp(np.interp(x, xp, np.log(np.maximum(fp, 1e-300)))))
