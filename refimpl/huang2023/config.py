"""Configuration for spec H (Huang, Cheng, Liang 2023): a frozen dataclass validated on construction.

============================  =============  =====================================================
field                         default        spec
============================  =============  =====================================================
K                             10             H1 number of orthonormal features
d                             None (= K)     H1 token dimension, K ≤ d
N                             100            H1 prompt length
p_kind                        "balanced"     H1 balanced p_k = 1/K, or "imbalanced"
p1                            0.5            H1 [C] imbalanced: p_1 = c, p_k = (1 − c)/(K − 1)
eta                           1.0            H5 constant GD step
steps                         1000           H5 number of GD steps (``train``)
attend_to_query               False          H4 [C] softmax over the N prompt columns only
loss                          "sample"       H5 batch loss of ``loss_and_grads``: "sample"
                                             ½(ŷ − y_q)² (one w per prompt) or "Ew" ½‖u‖² (w
                                             integrated, spec H6)
population                    "monte_carlo"  H8 the expectation over prompts ``train`` uses:
                                             "exact" (a) every count vector, "monte_carlo" (b)
                                             M count vectors drawn once, "mean_field" (c) N → ∞
M                             1000           H8 (b) number of count vectors (``monte_carlo``)
============================  =============  =====================================================

``train`` minimises the population loss L = E ℓ (spec H5), the same for both batch losses (the
E_w loss is the w-average of the sample loss, spec H6), through the reduced dynamics of
C = Vᵀ Q V (spec H7) at the configured level. ``population="exact"`` enumerates
C(N + K − 1, K − 1) count vectors and is refused above 5 000 000 of them; ``"mean_field"`` has no
query column (its mass vanishes as N → ∞) and is refused with ``attend_to_query``.
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

P_KINDS = ("balanced", "imbalanced")
LOSSES = ("sample", "Ew")
POPULATIONS = ("exact", "monte_carlo", "mean_field")
MAX_EXACT = 5_000_000  # count vectors an exact population may enumerate (spec H8 (a))


@dataclass(frozen=True)
class Config:
    """Data model H1–H3, model H4, loss and GD H5, population level H8 in one frozen record."""

    K: int = 10
    d: int | None = None
    N: int = 100
    p_kind: str = "balanced"
    p1: float = 0.5
    eta: float = 1.0
    steps: int = 1000
    attend_to_query: bool = False
    loss: str = "sample"
    population: str = "monte_carlo"
    M: int = 1000

    def __post_init__(self):
        _require(_is_int(self.K) and self.K >= 2, f"K must be an int ≥ 2, got {self.K!r}")
        if self.d is not None:
            _require(_is_int(self.d) and self.d >= self.K,
                     f"d must be an int ≥ K = {self.K} (orthonormal features, spec H1), got d={self.d!r}")
        _require(_is_int(self.N) and self.N >= 1, f"N must be an int ≥ 1, got {self.N!r}")
        _require(self.p_kind in P_KINDS, f"p_kind must be one of {list(P_KINDS)}, got {self.p_kind!r}")
        _require(isinstance(self.p1, numbers.Real) and 0 < self.p1 < 1,
                 f"p1 must be in (0, 1), got {self.p1!r}")
        _require(isinstance(self.eta, numbers.Real) and self.eta > 0 and math.isfinite(self.eta),
                 f"eta must be a finite number > 0, got {self.eta!r}")
        _require(_is_int(self.steps) and self.steps >= 0, f"steps must be an int ≥ 0, got {self.steps!r}")
        _require(isinstance(self.attend_to_query, (bool, np.bool_)),
                 f"attend_to_query must be a bool, got {self.attend_to_query!r}")
        _require(self.loss in LOSSES, f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        _require(self.population in POPULATIONS,
                 f"population must be one of {list(POPULATIONS)}, got {self.population!r}")
        _require(_is_int(self.M) and self.M >= 1, f"M must be an int ≥ 1, got {self.M!r}")
        if self.population == "exact":
            n_rows = math.comb(self.N + self.K - 1, self.K - 1)
            _require(n_rows <= MAX_EXACT, f"population 'exact' would enumerate {n_rows} count vectors for "
                     f"N={self.N}, K={self.K} (at most {MAX_EXACT}); use population='monte_carlo'")
        _require(not (self.population == "mean_field" and self.attend_to_query),
                 "population 'mean_field' (N → ∞) has no query column; it needs attend_to_query=False")

    @property
    def dim(self) -> int:
        """The token dimension d (K when ``d`` is None)."""
        return self.K if self.d is None else self.d

    def p(self) -> np.ndarray:
        """Feature probabilities (K,) of spec H1."""
        return feature_probabilities(self.K, self.p_kind, self.p1)

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def feature_probabilities(K: int, kind: str = "balanced", p1: float = 0.5) -> np.ndarray:
    """p (K,): balanced p_k = 1/K; imbalanced p_1 = p1, p_k = (1 − p1)/(K − 1) (spec H1 [C])."""
    _require(_is_int(K) and K >= 2, f"K must be an int ≥ 2, got {K!r}")
    _require(kind in P_KINDS, f"kind must be one of {list(P_KINDS)}, got {kind!r}")
    if kind == "balanced":
        return np.full(K, 1.0 / K)  # spec H1
    _require(0 < p1 < 1, f"p1 must be in (0, 1), got {p1!r}")
    p = np.full(K, (1.0 - p1) / (K - 1))  # spec H1 [C]
    p[0] = p1
    return p


#: the named configurations (``preset(name)``)
PRESETS: dict[str, Config] = {
    # seconds-long runs for the contract tests: H10's sizes, exact enumeration (spec H8 (a))
    "tiny": Config(K=3, d=5, N=6, p_kind="imbalanced", p1=0.5, eta=1.0, steps=20, population="exact"),
    # H10: d = 5, K = 3, N = 6, p = (0.5, 0.25, 0.25), η = 1, exact enumeration
    "golden_h10": Config(K=3, d=5, N=6, p_kind="imbalanced", p1=0.5, eta=1.0, steps=10, population="exact"),
    # H13 (a): balanced K = 10, N = 100, η = 1, M = 4000 count vectors (the spec's reference)
    "balanced": Config(K=10, N=100, p_kind="balanced", eta=1.0, steps=40000, M=4000),
    # H13 (b) / H12: imbalanced K = 10, N = 200, p_1 = 0.5, M = 2000 count vectors
    "imbalanced": Config(K=10, N=200, p_kind="imbalanced", p1=0.5, eta=1.0, steps=3000, M=2000),
    # golden file (spec H §6): small, as H10, a batch of materialised prompts
    "golden": Config(K=3, d=5, N=6, p_kind="imbalanced", p1=0.5, eta=1.0, steps=10, population="exact"),
}


def preset(name: str, **overrides) -> Config:
    """A named configuration of spec H, with fields replaced.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`: ``"tiny"`` (H10's sizes d = 5, K = 3, N = 6, p = (0.5, 0.25, 0.25),
        20 steps, exact population: seconds-long), ``"golden_h10"`` (spec H10), ``"balanced"``
        (H13 (a): K = 10, N = 100, M = 4000), ``"imbalanced"`` (H13 (b) / H12: K = 10, N = 200,
        p_1 = 0.5) or ``"golden"`` (spec H §6).
    **overrides
        :class:`Config` fields to replace, e.g. ``preset("tiny", loss="Ew", steps=5)``.

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
        raise ValueError(f"unknown huang2023 preset {name!r}; allowed: {sorted(PRESETS)}")
    return apply_overrides(PRESETS[name], overrides)
