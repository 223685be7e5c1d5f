"""Forward/backward pairs shared by every model: softmax, ReLU, hinge loss, squared loss.

Each ``*_forward`` returns ``(out, cache)``; each ``*_backward(dout, cache)`` returns the gradient
with respect to the forward's input, i.e. the vector-Jacobian product ``Jᵀ dout``. Losses are
elementwise (one value per sample); callers take the mean and scale ``dout`` accordingly.
"""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------------------------------
# softmax
# --------------------------------------------------------------------------------------------
def softmax_forward(x: np.ndarray, axis: int = 0):
    """Numerically stable softmax along ``axis`` (default 0: column-wise, as in the papers).

    σ = exp(x − max x) / Σ exp(x − max x). Returns ``(σ, cache)`` with ``cache = (σ, axis)``.
    """
    with np.errstate(over="ignore"):  # x − max may round to −inf for |x| ~ 1e308; exp(−inf) = 0 is right
        shifted = x - np.max(x, axis=axis, keepdims=True)  # max subtracted: exp never overflows
    e = np.exp(shifted)
    sigma = e / np.sum(e, axis=axis, keepdims=True)
    return sigma, (sigma, axis)


def softmax_backward(dsigma: np.ndarray, cache):
    """Softmax Jacobian-vector product: dx_i = σ_i (dσ_i − Σ_j σ_j dσ_j) along the axis."""
    sigma, axis = cache
    return sigma * (dsigma - np.sum(sigma * dsigma, axis=axis, keepdims=True))


# --------------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------------
def relu_forward(h: np.ndarray, at_zero: float = 0.0):
    """r = max(h, 0). ``at_zero`` is the derivative used at h == 0 exactly (0: 𝟙[h > 0]; 1: 𝟙[h ≥ 0])."""
    r = np.maximum(h, 0.0)
    return r, (h, at_zero)


def relu_backward(dr: np.ndarray, cache):
    """dh = dr ⊙ 𝟙[h > 0] (with ``at_zero`` at h == 0)."""
    h, at_zero = cache
    mask = np.where(h > 0, 1.0, np.where(h == 0, at_zero, 0.0)).astype(dr.dtype, copy=False)
    return dr * mask


# --------------------------------------------------------------------------------------------
# hinge loss
# --------------------------------------------------------------------------------------------
def hinge_forward(F: np.ndarray, z: np.ndarray):
    """Elementwise hinge loss ℓ = max{0, 1 − z F} with labels z ∈ {±1}. Returns ``(ℓ, cache)``."""
    margin = z * F
    return np.maximum(0.0, 1.0 - margin), (margin, z)


def hinge_backward(dloss: np.ndarray, cache):
    """dF = dℓ · (−z 𝟙[zF < 1]); the subgradient at the kink zF = 1 is taken as 0."""
    margin, z = cache
    return dloss * np.where(margin < 1.0, -z, 0.0)


# --------------------------------------------------------------------------------------------
# squared loss
# --------------------------------------------------------------------------------------------
def squared_forward(pred: np.ndarray, target: np.ndarray):
    """Elementwise squared loss ℓ = ½ (pred − target)². Returns ``(ℓ, cache)``."""
    diff = pred - target
    return 0.5 * diff * diff, diff


def squared_backward(dloss: np.ndarray, cache):
    """dpred = dℓ · (pred − target)."""
    return dloss * cache
