"""Random generators: every random draw in the project goes through an explicit Generator."""

from __future__ import annotations

import numpy as np


def make_rng(seed: int | np.random.Generator | None, name: str = "seed") -> np.random.Generator:
    """Return ``np.random.Generator`` for ``seed`` (an int ≥ 0, or an existing Generator).

    ``None`` is rejected: every result in this project must be reproducible from a seed. ``name``
    is the argument the error message names (``"rng"`` where a function takes a generator).
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def spawn(rng: np.random.Generator, n: int) -> list[np.random.Generator]:
    """``n`` independent child generators of ``rng`` (for separate streams: data, init, ...)."""
    return [np.random.default_rng(s) for s in rng.bit_generator.seed_seq.spawn(n)]
