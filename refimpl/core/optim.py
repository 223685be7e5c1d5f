"""Optimisers shared by every model: SGD and Adam in torch's exact form, with a fused Numba path.

Both update a parameter dict in place, ``opt.step(params, grads)``, for the keys present in
``grads`` (parameters without a gradient, e.g. a fixed output layer, are left alone).

SGD:  θ ← θ − lr · g

Adam (Kingma & Ba 2015, written as ``torch.optim.Adam`` computes it, so a PyTorch run from the
same parameters follows the same trajectory; L2-style ``weight_decay`` added to the gradient):

    g ← g + λ θ                          (if λ > 0)
    m ← m + (1 − β1)(g − m)              (torch: exp_avg.lerp_(g, 1 − β1))
    v ← β2 v + ((1 − β2) g) g            (torch: exp_avg_sq.mul_(β2).addcmul_(g, g, value=1 − β2))
    θ ← θ − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)

``backend="numba"`` runs the same arithmetic in one fused pass per parameter
(:func:`refimpl.core.kernels.adam_step`) instead of ~8 NumPy temporaries; the two backends give
identical bits in float64 and float32 (tests/test_core_optim.py).

:func:`lr_at` is the learning-rate schedule of the deep-model experiments (linear warm-up, then
constant or cosine).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

BACKENDS = ("numpy", "numba")


def _check_pos(name, x, allow_zero=False):
    ok = isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) and (x >= 0 if allow_zero else x > 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'≥' if allow_zero else '>'} 0, got {x!r}")


class SGD:
    """θ ← θ − lr · g (spec L11, spec Y9, spec H5: plain gradient descent with a constant step)."""

    def __init__(self, lr: float):
        _check_pos("lr", lr)
        self.lr = float(lr)

    def step(self, params: dict, grads: dict) -> None:
        for k, g in grads.items():
            params[k] -= self.lr * g


class Adam:
    """Adam with per-parameter moments (keyed like ``params``) and a step count t (module docstring)."""

    def __init__(self, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, *,
                 backend: str = "numpy"):
        _check_pos("lr", lr)
        if (not hasattr(betas, "__len__") or len(betas) != 2
                or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        _check_pos("eps", eps, allow_zero=True)
        _check_pos("weight_decay", weight_decay, allow_zero=True)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.weight_decay, self.backend = float(weight_decay), backend
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> None:
        b1, b2 = self.betas
        self.t += 1
        bc1 = 1.0 - b1 ** self.t
        bc2_sqrt = (1.0 - b2 ** self.t) ** 0.5
        step_size = self.lr / bc1
        for k, g in grads.items():
            p = params[k]
            if k not in self.m:
                self.m[k] = np.zeros_like(p)
                self.v[k] = np.zeros_like(p)
            m, v = self.m[k], self.v[k]
            if self.backend == "numba" and p.flags.c_contiguous and p.dtype in (np.float64, np.float32):
                from refimpl.core.kernels import adam_step

                t = p.dtype.type
                gf = np.ascontiguousarray(g, dtype=p.dtype).reshape(-1)
                adam_step(p.reshape(-1), gf, m.reshape(-1), v.reshape(-1), t(1.0 - b1), t(b2), t(1.0 - b2),
                          t(-step_size), t(bc2_sqrt), t(self.eps), t(self.weight_decay))
                continue
            if self.weight_decay:
                g = g + self.weight_decay * p
            m += (1.0 - b1) * (g - m)  # lerp toward g
            v *= b2
            v += ((1.0 - b2) * g) * g
            denom = np.sqrt(v) / bc2_sqrt + self.eps
            p += -step_size * (m / denom)

    def state_dict(self) -> dict:
        return {"t": self.t, "m": {k: v.copy() for k, v in self.m.items()}, "v": {k: v.copy() for k, v in self.v.items()}}


def lr_at(t: int, lr: float, *, steps: int | None, warmup: int = 0, schedule: str = "constant") -> float:
    """The learning rate of step t (0-based): linear warm-up over ``warmup`` steps ((t + 1)/warmup · lr),
    then ``lr`` ("constant") or lr · ½(1 + cos(π (t − warmup)/(steps − warmup))) ("cosine")."""
    if t < warmup:
        return lr * (t + 1) / warmup
    if schedule == "cosine":
        return float(lr * 0.5 * (1 + np.cos(np.pi * (t - warmup) / max(steps - warmup, 1))))
    return lr
