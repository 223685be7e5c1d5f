"""Helpers shared by the gradient-check tests: the finite-difference noise floor.

A central difference (f(x + εv) − f(x − εv)) / (2ε) of a function evaluated in float64 carries a
rounding error of about u · S / ε, where u = 2^-52 is the unit roundoff and S the magnitude of the
terms that are summed to form f (each evaluation is exact to a few ulps of S, not of |f|: when the
terms cancel, |f| can be far below S). That is the smallest error a correct gradient can show, so
it is the honest ``atol`` of a check; everything above it must be explained by ``rtol``.

``NOISE_ULPS`` (the "few ulps") is 8: measured over 6000 random cases of the softmax fake loss
and the spec L loss (shapes and scales as in the tests), the largest central-difference error of
a correct gradient that exceeded its rtol share was 1.4 u·S/ε; 8 leaves a margin of 5 without
hiding anything a relative error of 1e-6 would show. It is a constant, not tuned per test.
"""

from __future__ import annotations

import numpy as np

UNIT_ROUNDOFF = np.finfo(np.float64).eps  # 2.22e-16
NOISE_ULPS = 8.0
EPS = 1e-6  # central-difference step: truncation O(EPS² f''') ~ 1e-12 for O(1) inputs
RTOL = 1e-6  # the requirement: relative error ≤ 1e-6


def fd_noise_floor(scale: float, eps: float = EPS) -> float:
    """Absolute rounding noise of a central difference of a function whose terms sum to ``scale``."""
    return NOISE_ULPS * UNIT_ROUNDOFF * max(float(scale), 1e-300) / eps
