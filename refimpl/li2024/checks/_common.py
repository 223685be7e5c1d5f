"""Shared by the check modules of spec L: the ``fit`` convention, report formatting, curve reading."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refimpl.core.trajectory import Trajectory
from refimpl.li2024.config import Config
from refimpl.li2024.train import train

#: ``fit(cfg, seed, **train_kwargs) -> Trajectory``: how checks that need trained models get them
Fit = Callable[..., Trajectory]


def plain_fit(cfg: Config, seed: int, **kwargs) -> Trajectory:
    """Train without caching or progress bar (for tests and scripts)."""
    return train(cfg, seed, progress=False, **kwargs)


def fmt(values, spec: str = ".2e") -> str:
    """Comma-separated numbers for the report's measured column."""
    return ", ".join(format(float(v), spec) for v in np.atleast_1d(values))


def first_length_below(lengths, errors, eps: float) -> float:
    """The smallest l whose error is ≤ eps and stays ≤ eps for every longer l (inf if none)."""
    lengths, errors = np.asarray(lengths), np.asarray(errors)
    for i in range(len(lengths)):
        if np.all(errors[i:] <= eps):
            return float(lengths[i])
    return float("inf")
