"""Statistics used by the checks: every fit and interval in one tested place (tests/test_core_stats.py).

Intervals and fits return plain floats and tuples; they never count NaN as data (a non-finite
input raises ``ValueError``).

=========================  =================================================================
function                   what
=========================  =================================================================
``clopper_pearson``        exact binomial confidence interval for k events out of n
``loglog_fit``             least-squares slope of log y on log x with a t-interval
``residual_slope``         least-squares slope of log y on log x (nan when undefined)
``paired_contrast``        mean and SE of a linear combination of paired batch means
``paired_difference``      mean and SE of per-item paired differences from running sums
``mean_of_independent``    mean of independent estimates and its SE
``binomial_strata``        strata over k ~ Binomial(n, p) and their exact probabilities
``stratified_rate``        stratified mean Σ_h W_h mean_h and its SE
=========================  =================================================================
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def _finite(name: str, x) -> np.ndarray:
    """``x`` as a float array; ``ValueError`` naming ``name`` if any entry is NaN or ±inf."""
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {a.reshape(-1)[~np.isfinite(a.reshape(-1))][0]}")
    return a


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial confidence interval for k errors out of n."""
    _finite("k", k)
    _finite("n", n)
    _finite("level", level)
    if not (0 <= k <= n and n >= 1 and 0 < level < 1):
        raise ValueError(f"need 0 ≤ k ≤ n, n ≥ 1 and 0 < level < 1, got k={k!r}, n={n!r}, level={level!r}")
    lo = 0.0 if k == 0 else float(stats.beta.ppf((1 - level) / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - (1 - level) / 2, k + 1, n - k))
    return lo, hi


def _positive_pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _finite("x", x), _finite("y", y)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape}, {y.shape}")
    return x, y


def loglog_fit(x, y, level: float = 0.95) -> dict:
    """Least-squares slope of log y on log x (``scipy.stats.linregress``) with a two-sided t-interval
    at ``level`` (infinite with two points). Returns ``slope``, ``intercept``, ``ci``, ``r2``,
    ``n_points``. x and y must be finite and > 0, at least two points with distinct x."""
    x, y = _positive_pairs(x, y)
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("loglog_fit needs x > 0 and y > 0")
    if len(np.unique(x)) < 2:
        raise ValueError(f"loglog_fit needs at least two distinct x, got {x.tolist()}")
    lx, ly = np.log(x), np.log(y)
    res = stats.linregress(lx, ly)
    dof = len(lx) - 2
    half = stats.t.ppf(0.5 + level / 2, dof) * res.stderr if dof > 0 else float("inf")
    return {"slope": float(res.slope), "intercept": float(res.intercept), "ci": (res.slope - half, res.slope + half),
            "r2": float(res.rvalue ** 2), "n_points": len(lx)}


def residual_slope(x, y) -> float:
    """Least-squares slope of log y against log x (``np.polyfit``); nan when there are fewer than two
    distinct x or some y ≤ 0 (a slope that is not defined is reported as such, not raised)."""
    x, y = _positive_pairs(x, y)
    if len(np.unique(x)) < 2 or np.any(y <= 0):
        return float("nan")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def paired_contrast(values, weights, c) -> tuple[float, float]:
    """Mean and standard error of Σ_k c_k X_k when the K quantities X_k were measured on the same
    items, summarised as J batch means ``values`` (J, K) with batch weights ``weights`` (J,)
    (summing to 1): v_j = Σ_k c_k values_jk, mean = Σ_j w_j v_j,
    SE = √(J/(J − 1) Σ_j w_j² (v_j − mean)²) (the batch-means estimate; needs J ≥ 2)."""
    values, w, c = _finite("values", values), _finite("weights", weights), _finite("c", c)
    if values.ndim != 2 or w.shape != (values.shape[0],) or c.shape != (values.shape[1],) or len(w) < 2:
        raise ValueError(f"need values (J ≥ 2, K), weights (J,), c (K,); got {values.shape}, {w.shape}, {c.shape}")
    v = values @ c  # (J,)
    mean = float(w @ v)
    J = len(v)
    se = float(np.sqrt(J / (J - 1) * np.sum(w ** 2 * (v - mean) ** 2)))
    return mean, se


def paired_difference(sum_d, sum_d2, n: int) -> tuple[float, float]:
    """Mean and standard error of n paired differences d_i given Σ d_i and Σ d_i²: mean = Σd/n,
    SE = √(max(Σd²/n − mean², 0) / n) (the plug-in variance; 0 when every d_i is equal)."""
    s1, s2, nn = float(_finite("sum_d", sum_d)), float(_finite("sum_d2", sum_d2)), _finite("n", n)
    if not nn >= 1:
        raise ValueError(f"n must be ≥ 1, got {n!r}")
    mean = s1 / n
    return mean, float(np.sqrt(max(s2 / n - mean**2, 0.0) / n))


def mean_of_independent(estimates, ses, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean of S independent estimates along ``axis`` and its standard error √(Σ SE²) / S."""
    est, se = _finite("estimates", estimates), _finite("ses", ses)
    if est.shape != se.shape:
        raise ValueError(f"estimates and ses must have the same shape, got {est.shape}, {se.shape}")
    S = est.shape[axis]
    return est.mean(axis=axis), np.sqrt(np.sum(se ** 2, axis=axis)) / S


def binomial_strata(n_trials: int, p: float, n_candidates: int, split: int,
                    min_expected: float) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Strata over k ~ Binomial(n_trials, p) and their exact probabilities: ([(k_lo, k_hi)], weights
    (H,)), ranges inclusive, covering 0..n_trials.

    Start from {0}, {1}, ..., {split − 1}, {≥ split}; walk upward and merge a stratum whose expected
    number among ``n_candidates`` draws is below ``min_expected`` into the next one (a rare tail
    into the previous one). Depends only on the arguments, never on a sample."""
    for name, v in (("n_trials", n_trials), ("p", p), ("n_candidates", n_candidates), ("split", split),
                    ("min_expected", min_expected)):
        _finite(name, v)
    if not (0 <= p <= 1 and n_trials >= 0 and split >= 1):
        raise ValueError(f"need 0 ≤ p ≤ 1, n_trials ≥ 0, split ≥ 1; got p={p!r}, n_trials={n_trials!r}, split={split!r}")
    pmf = stats.binom.pmf(np.arange(n_trials + 1), n_trials, p)  # (n_trials + 1,)
    top = min(split, n_trials)
    base = [(k, k) for k in range(top)] + [(top, n_trials)]  # {0}, ..., {top − 1}, {top..n}

    def mass(g):
        return float(pmf[g[0] : g[1] + 1].sum())

    groups: list[tuple[int, int]] = []
    cur = None
    for g in base:
        cur = g if cur is None else (cur[0], g[1])
        if mass(cur) * n_candidates >= min_expected:
            groups.append(cur)
            cur = None
    if cur is not None:  # a rare tail left over: merge it into the previous stratum
        if groups:
            groups[-1] = (groups[-1][0], cur[1])
        else:
            groups.append(cur)
    return groups, np.array([mass(g) for g in groups])


def stratified_rate(values, stratum, weights) -> tuple[float, float]:
    """Stratified estimate Σ_h W_h mean_h(values) and its standard error √(Σ_h W_h² s_h² / n_h).

    ``values`` (n,) per-item values (e.g. errors 0/1 or paired differences −1/0/1); ``stratum`` (n,)
    the stratum index h of each item; ``weights`` (H,) the stratum probabilities W_h. A stratum with
    one item uses the bound s² ≤ 1 (values in [−1, 1]); an empty one is a ``ValueError``. A stratum
    whose values are all equal adds 0 to the SE."""
    values, weights = _finite("values", values), _finite("weights", weights)
    stratum = np.asarray(stratum)
    if stratum.shape != values.shape:
        raise ValueError(f"values and stratum must have the same shape, got {values.shape}, {stratum.shape}")
    est, var = 0.0, 0.0
    for h, w in enumerate(weights):
        v = values[stratum == h]
        if v.size == 0:
            raise ValueError(f"stratum {h} has no items; draw more (raise n_candidates)")
        est += w * v.mean()
        s2 = v.var(ddof=1) if v.size > 1 else 1.0
        var += w * w * s2 / v.size
    return float(est), float(math.sqrt(var))


# --- fits used by the spec H checks (refimpl/huang2023/checks.py; tests/test_core_stats_huang.py)
def _finite_1d(name: str, x):
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
def log_linear_fit(x, y, lo: float, hi: float) -> tuple[float, float, int]:
    """Least-squares fit of ln y = a − ρ x on the points with lo ≤ y ≤ hi: ``(ρ, R², n)``.

    ``(nan, nan, n)`` when fewer than 3 points lie in the window (a rate from 2 points has no R²).
    Used for linear convergence, y = L − L* decaying like e^{−ρt} (spec Y11). Non-finite x or y
    raise ``ValueError`` (a NaN is never silently left out of the window)."""
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
    xp = np.asarray(xp, dtype=float)
    fp = np.asarray(fp, dtype=float)
    if x > xp[-1]:
        return float("nan")
    return float(np.exp(np.interp(x, xp, np.log(np.maximum(fp, 1e-300)))))
