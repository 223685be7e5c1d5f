"""Configuration for spec Y (Yang, Huang, Liang, Chi 2024): a frozen dataclass validated on construction.

============================  =============  =====================================================
field                         default        spec
============================  =============  =====================================================
K                             12             Y2 dictionary size (all tokens)
N                             4              Y4 prompt length (tokens 1..N carry labels)
d                             5              Y2 token dimension
m                             3              Y1 number of basic tasks
H                             8              Y5 number of attention heads
tau                           0.1            Y1 feature-noise level, ε_k ~ N(0, τ I_m)
beta                          1.0            Y6 Q⁰ entries ~ N(0, β²)
normalize_tokens              True           Y2 [C] unit-norm tokens (the theory assumes it)
loss                          "population"   Y7 "population": the closed form L(θ); "sample": its
                                             Monte-Carlo version (1/2K)·mean_b Σ_k (ŷ_k − y_k)²
                                             on minibatches of sampled prompts (Y1)
optimizer                     "gd"           Y9 "gd": Q ← Q − η_Q ∇_Q, w ← w − γ²η_Q ∇_w (the
                                             theory); "adam": the paper's experiments (torch's
                                             Adam, β = (0.9, 0.999), ε = 1e−8)
eta_Q                         1.0            Y9 GD step for Q
gamma                         1.0            Y9 η_w = γ² η_Q
lr                            1e-4           Y9 [P] Adam learning rate of the experiments
batch_size                    256            Y9 [P] prompts per minibatch (``loss="sample"``)
n_train                       10000          Y9 [P] size of the fixed pool of training prompts
                                             the minibatches are drawn from (``loss="sample"``)
steps                         1000           Y9 number of optimiser steps
record_every                  1              steps between records of L and L − L* (the last
                                             step is always recorded)
============================  =============  =====================================================
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

import numpy as np

from refimpl.core.arrays import is_int as _is_int
from refimpl.core.arrays import require as _require
from refimpl.core.config import apply_overrides

LOSSES = ("population", "sample")
OPTIMIZERS = ("gd", "adam")


def _pos(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@dataclass(frozen=True)
class Config:
    """Data model Y1–Y4, model Y5, initialisation Y6, loss Y7 and training Y9 in one frozen record."""

    K: int = 12
    N: int = 4
    d: int = 5
    m: int = 3
    H: int = 8
    tau: float = 0.1
    beta: float = 1.0
    normalize_tokens: bool = True
    loss: str = "population"
    optimizer: str = "gd"
    eta_Q: float = 1.0
    gamma: float = 1.0
    lr: float = 1e-4
    batch_size: int = 256
    n_train: int = 10000
    steps: int = 1000
    record_every: int = 1

    def __post_init__(self):
        _require(_is_int(self.K) and self.K >= 2, f"K must be an int ≥ 2, got {self.K!r}")
        _require(_is_int(self.N) and 1 <= self.N <= self.K,
                 f"N must be an int with 1 ≤ N ≤ K = {self.K} (spec Y4), got {self.N!r}")
        _require(_is_int(self.d) and self.d >= 1, f"d must be an int ≥ 1, got {self.d!r}")
        _require(_is_int(self.m) and self.m >= 1, f"m must be an int ≥ 1, got {self.m!r}")
        _require(_is_int(self.H) and self.H >= 1, f"H must be an int ≥ 1, got {self.H!r}")
        _require(_pos(self.tau), f"tau must be a finite number > 0, got {self.tau!r}")
        _require(_pos(self.beta), f"beta must be a finite number > 0, got {self.beta!r}")
        _require(isinstance(self.normalize_tokens, (bool, np.bool_)),
                 f"normalize_tokens must be a bool, got {self.normalize_tokens!r}")
        _require(isinstance(self.loss, str) and self.loss in LOSSES,
                 f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        _require(isinstance(self.optimizer, str) and self.optimizer in OPTIMIZERS,
                 f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        _require(_pos(self.eta_Q), f"eta_Q must be a finite number > 0, got {self.eta_Q!r}")
        _require(_pos(self.gamma), f"gamma must be a finite number > 0, got {self.gamma!r}")
        _require(_pos(self.lr), f"lr must be a finite number > 0, got {self.lr!r}")
        _require(_is_int(self.batch_size) and self.batch_size >= 1,
                 f"batch_size must be an int ≥ 1, got {self.batch_size!r}")
        _require(_is_int(self.n_train) and self.n_train >= 1, f"n_train must be an int ≥ 1, got {self.n_train!r}")
        _require(_is_int(self.steps) and self.steps >= 0, f"steps must be an int ≥ 0, got {self.steps!r}")
        _require(_is_int(self.record_every) and self.record_every >= 1,
                 f"record_every must be an int ≥ 1, got {self.record_every!r}")

    @property
    def eta_w(self) -> float:
        """η_w = γ² η_Q (spec Y9, paper eq. 16)."""
        return self.gamma ** 2 * self.eta_Q

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, Config] = {
    # Y11/Y12 small instance of the issue: K = 12, N = 4, d = 5, m = 3, τ = 0.1
    "small": Config(K=12, N=4, d=5, m=3, H=8, tau=0.1),
    # Fig. 2 / Fig. 4 [P]: N = 30, K = 200, d = 100, m = 20, H = 64, Adam lr 1e−4 on minibatches of
    # 256 from 10 000 training tasks; τ = 0.01 [C], 10 000 steps [C] (spec Y §8)
    "fig2": Config(K=200, N=30, d=100, m=20, H=64, tau=0.01, loss="sample", optimizer="adam", lr=1e-4,
                   batch_size=256, n_train=10000, steps=10000, record_every=100),
    # Fig. 3 [P]: m = 100, τ = 0.01, K = 200, d = 100 [C]; N is swept over [50, 150]
    "fig3": Config(K=200, N=100, d=100, m=100, H=1, tau=0.01),
    # golden file (spec Y §7)
    "golden": Config(K=7, N=3, d=4, m=2, H=3, tau=0.1, eta_Q=0.5, gamma=1.0, steps=10),
    # seconds-long runs for the contract tests (K = 8 leaves room for N up to 7)
    "tiny": Config(K=8, N=3, d=3, m=2, H=4, tau=0.1, eta_Q=0.5, batch_size=16, n_train=64, steps=50,
                   record_every=10),
}


def preset(name: str, **overrides) -> Config:
    """A named configuration of spec Y, with fields replaced.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`: ``"small"`` (K = 12, N = 4, d = 5, m = 3, H = 8, τ = 0.1, GD on the
        closed form), ``"fig2"`` (the paper's Fig. 2/4 setting: K = 200, N = 30, d = 100, m = 20,
        H = 64, Adam on sampled prompts), ``"fig3"`` (m = 100, H = 1, N swept by the check),
        ``"golden"`` (spec Y §7) or ``"tiny"`` (K = 8, N = 3, d = 3, m = 2, H = 4: seconds-long).
    **overrides
        :class:`Config` fields to replace, e.g. ``preset("small", H=2, steps=100)``.

    Returns
    -------
    Config
        A frozen, validated configuration.

    Raises
    ------
    ValueError
        For an unknown preset or field (listing the allowed names), or a value the config rejects.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown yang2024 preset {name!r}; allowed: {sorted(PRESETS)}")
    return apply_overrides(PRESETS[name], overrides)
