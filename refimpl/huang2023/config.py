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
steps                         1000           H5 number of GD steps
attend_to_query               False          H4 [C] softmax over the N prompt columns only
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

P_KINDS = ("balanced", "imbalanced")


@dataclass(frozen=True)
class Config:
    """Data model H1–H3, model H4 and GD H5 in one frozen record."""

    K: int = 10
    d: int | None = None
    N: int = 100
    p_kind: str = "balanced"
    p1: float = 0.5
    eta: float = 1.0
    steps: int = 1000
    attend_to_query: bool = False

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


PRESETS: dict[str, Config] = {}


def _build_presets() -> None:
    # H10: d = 5, K = 3, N = 6, p = (0.5, 0.25, 0.25), η = 1
    PRESETS["golden_h10"] = Config(K=3, d=5, N=6, p_kind="imbalanced", p1=0.5, eta=1.0, steps=10)
    # H13 (a): balanced K = 10, N = 100, η = 1
    PRESETS["balanced"] = Config(K=10, N=100, p_kind="balanced", eta=1.0, steps=40000)
    # H13 (b): imbalanced K = 10, N = 200, p_1 = 0.5
    PRESETS["imbalanced"] = Config(K=10, N=200, p_kind="imbalanced", p1=0.5, eta=1.0, steps=3000)
    # golden file (spec H §6): small, as H10, a batch of materialised prompts
    PRESETS["golden"] = Config(K=3, d=5, N=6, p_kind="imbalanced", p1=0.5, eta=1.0, steps=10)


def preset(name: str) -> Config:
    """The named preset; ``ValueError`` listing the allowed names for an unknown one."""
    if not PRESETS:
        _build_presets()
    if name not in PRESETS:
        raise ValueError(f"unknown huang2023 preset {name!r}; allowed: {sorted(PRESETS)}")
    return PRESETS[name]
