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
