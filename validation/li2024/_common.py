"""Shared by the li2024 validation modules: cached training runs, so a trained model at a given
configuration and seed is computed once and reused by every figure and check."""

from __future__ import annotations

from refimpl.core.jit import jit_disabled
from refimpl.li2024 import train


def fitter(ctx):
    """``fit(cfg, seed, **train_kwargs)`` that caches through ``ctx.cached``.

    The Numba path is used unless NUMBA_DISABLE_JIT is set (then the NumPy path is faster); the
    two agree to ~1e−12 per step, and the backend is part of the cache key."""
    backend = "numpy" if jit_disabled() else "numba"

    def fit(cfg, seed, **kwargs):
        key = {"config": cfg.to_dict(), "seed": seed, "backend": backend, "kwargs": kwargs}
        return ctx.cached(
            "li2024/train", key,
            lambda: train(cfg, seed, backend=backend, progress=ctx.progress,
                          desc=f"li2024 train seed {seed}", **kwargs),
        )

    return fit
