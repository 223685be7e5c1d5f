"""Forward/backward pairs shared by every model: softmax, ReLU, hinge loss, squared loss (and,
appended for spec T, GELU-tanh and layer norm).

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


# --------------------------------------------------------------------------------------------
# GELU (tanh approximation, GPT-2)
# --------------------------------------------------------------------------------------------
_GELU_C = 0.7978845608028654  # √(2/π)
_GELU_A = 0.044715


def gelu_forward(x: np.ndarray):
    """GELU, tanh approximation (Hendrycks & Gimpel 2016; GPT-2; torch ``approximate="tanh"``):

    y = ½ x (1 + tanh(u)),  u = √(2/π) (x + 0.044715 x³).  Returns ``(y, cache)``.
    """
    u = _GELU_C * (x + _GELU_A * x * x * x)
    t = np.tanh(u)
    return 0.5 * x * (1.0 + t), (x, t)


def gelu_backward(dy: np.ndarray, cache):
    """dx = dy · [½ (1 + t) + ½ x (1 − t²) √(2/π) (1 + 3·0.044715 x²)],  t = tanh(u)."""
    x, t = cache
    du_dx = _GELU_C * (1.0 + 3.0 * _GELU_A * x * x)  # u = √(2/π)(x + a x³)
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx)


# --------------------------------------------------------------------------------------------
# layer norm (over the last axis, with gain and bias)
# --------------------------------------------------------------------------------------------
LAYERNORM_EPS = 1e-5


def layernorm_forward(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = LAYERNORM_EPS):
    """Layer norm over the last axis (Ba et al. 2016), as ``torch.nn.LayerNorm``:

    μ = mean(x),  σ² = mean((x − μ)²) (biased),  x̂ = (x − μ) / √(σ² + ε),  y = g ⊙ x̂ + b.
    ``g``, ``b``: (n,) with n = x.shape[-1]. Returns ``(y, cache)``.
    """
    mu = np.mean(x, axis=-1, keepdims=True)  # (..., 1)
    xc = x - mu  # (..., n)
    var = np.mean(xc * xc, axis=-1, keepdims=True)  # (..., 1) biased variance
    rstd = 1.0 / np.sqrt(var + eps)  # (..., 1)
    xhat = xc * rstd  # (..., n)
    return xhat * g + b, (xhat, rstd, g)


def layernorm_backward(dy: np.ndarray, cache):
    """Returns ``(dx, dg, db)``; dg, db summed over all leading axes.

    dx̂ = dy ⊙ g;  dx = (1/√(σ² + ε)) (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂)) (means over the last axis).
    """
    xhat, rstd, g = cache
    lead = tuple(range(dy.ndim - 1))
    dg = np.sum(dy * xhat, axis=lead)  # y = g ⊙ x̂ + b
    db = np.sum(dy, axis=lead)
    dxhat = dy * g  # (..., n)
    dx = rstd * (dxhat - np.mean(dxhat, axis=-1, keepdims=True)
                 - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True))  # x̂ = (x − μ) rstd
    return dx, dg, db
