"""Shared math and infrastructure: forward/backward pairs, finite-difference checks, golden files.

Nothing here computes at import time; Numba kernels compile on first call (and are cached on disk).
"""

from refimpl.core.gradcheck import GradcheckError, GradcheckReport, gradcheck
from refimpl.core.ops import (
    hinge_backward,
    hinge_forward,
    relu_backward,
    relu_forward,
    softmax_backward,
    softmax_forward,
    squared_backward,
    squared_forward,
)
from refimpl.core.rng import make_rng

__all__ = [
    "softmax_forward", "softmax_backward", "relu_forward", "relu_backward",
    "hinge_forward", "hinge_backward", "squared_forward", "squared_backward",
    "gradcheck", "GradcheckReport", "GradcheckError", "make_rng",
]
