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
