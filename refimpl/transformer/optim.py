"""Optimisers for the reference transformer (spec T): Adam (with torch.optim.Adam's exact update,
so a PyTorch run from the same parameters follows the same trajectory) and plain SGD.

Both update a parameter dict in place: ``opt.step(params, grads)``.

Adam (Kingma & Ba 2015, as ``torch.optim.Adam``, L2-style ``weight_decay`` added to the gradient):

    g ← g + λ θ                          (if λ > 0)
    m ← m + (1 − β1)(g − m)              (torch: exp_avg.lerp_(g, 1 − β1))
    v ← β2 v + (1 − β2) g²
    θ ← θ − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _check_pos(name, x, allow_zero=False):
    ok = isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) and (x >= 0 if allow_zero else x > 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'≥' if allow_zero else '>'} 0, got {x!r}")


class SGD:
    """θ ← θ − lr · g."""

    def __init__(self, lr: float):
        _check_pos("lr", lr)
        self.lr = float(lr)

    def step(self, params: dict, grads: dict) -> None:
        for k, g in grads.items():
            params[k] -= self.lr * g


class Adam:
    """Adam with per-parameter first and second moments (keyed like ``params``) and a step count t."""

    def __init__(self, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        _check_pos("lr", lr)
        if len(betas) != 2 or not all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        _check_pos("eps", eps, allow_zero=True)
        _check_pos("weight_decay", weight_decay, allow_zero=True)
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), (float(betas[0]), float(betas[1])), float(eps), float(weight_decay)
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
            if self.weight_decay:
                g = g + self.weight_decay * p
            if k not in self.m:
                self.m[k] = np.zeros_like(p)
                self.v[k] = np.zeros_like(p)
            m, v = self.m[k], self.v[k]
            m += (1.0 - b1) * (g - m)  # lerp toward g
            v *= b2
            v += ((1.0 - b2) * g) * g
            denom = np.sqrt(v) / bc2_sqrt + self.eps
            p += -step_size * (m / denom)

    def state_dict(self) -> dict:
        return {"t": self.t, "m": {k: v.copy() for k, v in self.m.items()}, "v": {k: v.copy() for k, v in self.v.items()}}


def train(params: dict, cfg, batch_fn, steps: int, opt, *, progress: bool = False) -> list[float]:
    """Run ``steps`` optimiser steps on ``batch_fn(step) -> {"X", "target"}``; returns the loss of
    each step (measured before its update). ``params`` is updated in place."""
    from refimpl.transformer.model import loss_and_grads

    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an int ≥ 0, got {steps!r}")
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="train", disable=None)
    losses = []
    for s in it:
        loss, grads = loss_and_grads(params, batch_fn(s), cfg, check=(s == 0))
        opt.step(params, grads)
        losses.append(loss)
    return losses
