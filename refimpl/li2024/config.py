"""Configuration for spec L (Li et al. 2024): frozen dataclasses validated on construction.

Every default tagged [C] in the spec is a documented choice (``docs/math/li2024.md``, spec L §8):

============================  =========  ===========================================================
field                         default    spec
============================  =========  ===========================================================
DataConfig.d_x, M1, M2        30, 6, 24  L1 [P: M1 = 6, M2 = 24; C: d_X = 30]
DataConfig.d_y                10         L5 [C]
DataConfig.beta               1.0        L1 [C]
DataConfig.kappa_max          0.5        L2 [P: K_κ ≤ 1/2]
DataConfig.basis              "random"   L1 [C] orthonormal patterns from the QR of a Gaussian
DataConfig.train_shifts       (1, 2, 3)  L3 [C] T_tr = {(a, a + s mod M1) : s ∈ S}
DataConfig.train_tasks        None       L3: an explicit T_tr (pairs) overrides train_shifts
DataConfig.alpha, l_train     0.8, 20    L4 [C] (the paper's training α is not recoverable)
DataConfig.alpha_test, l_test 0.8, 20    L13 / issue target (α' = 0.8, l_ts = 20)
DataConfig.M1_ood, S1         3, 1.0     L6 [P: M1' = 3; C: µ'_j = (S1/2)(µ_{2j−1} + µ_{2j})]
ModelConfig.m                 100        L8 [C]
ModelConfig.m_a, m_b          d          L8 [C]
ModelConfig.delta, xi         0.2, 0.01  L8 [C] W_Q⁰ = W_K⁰ = δ[I 0; 0 0], W_V⁰ = I, W_O⁰ ~ N(0, ξ²)
ModelConfig.attend_to_query   False      L7 [D] softmax over the l context columns
ModelConfig.train_a           False      L8 [C] a fixed, a_i = ±1/√m
ModelConfig.relu_at_zero      0.0        L12 [C] ReLU derivative at h = 0
TrainConfig.batch_size, lr    64, 0.5    L11 [C]
TrainConfig.steps             2000       L11 [C] (same-pattern attention ≈0.93; 0.90 at 1000)
============================  =========  ===========================================================
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from refimpl.core.arrays import is_int as _is_int
from refimpl.core.arrays import require as _require
from refimpl.core.config import apply_overrides


def _is_real(x) -> bool:
    """True for Python and NumPy real numbers (ints and floats), False for bools and the rest."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _is_sequence(x) -> bool:
    """A list, tuple or array of items (not a string, bytes, a number or another object)."""
    return isinstance(x, (list, tuple, np.ndarray))


def _as_builtin(obj, name: str) -> None:
    """Store a NumPy scalar field as the Python number it equals (so configs stay JSON-friendly)."""
    v = getattr(obj, name)
    if isinstance(v, np.generic):
        object.__setattr__(obj, name, v.item())


@dataclass(frozen=True)
class DataConfig:
    """Data model L1–L6."""

    d_x: int = 30
    d_y: int = 10
    M1: int = 6
    M2: int = 24
    beta: float = 1.0
    kappa_max: float = 0.5
    basis: str = "random"
    train_shifts: tuple = (1, 2, 3)
    train_tasks: tuple | None = None
    alpha: float = 0.8
    l_train: int = 20
    alpha_test: float = 0.8
    l_test: int = 20
    M1_ood: int = 3
    S1: float = 1.0

    def __post_init__(self):
        for name in ("d_x", "d_y", "M1", "M2", "l_train", "l_test", "M1_ood"):
            v = getattr(self, name)
            _require(_is_int(v) and v >= 1, f"{name} must be an int ≥ 1, got {v!r}")
        _require(self.M1 >= 2, f"M1 must be ≥ 2 (a task needs two relevant patterns), got {self.M1}")
        _require(
            self.d_x >= self.M1 + self.M2,
            f"d_x must be ≥ M1 + M2 = {self.M1 + self.M2} (orthogonal patterns, spec L1), got d_x={self.d_x}",
        )
        _require(_is_real(self.beta) and self.beta > 0 and math.isfinite(self.beta), f"beta must be > 0, got {self.beta!r}")
        _require(
            _is_real(self.kappa_max) and 0 <= self.kappa_max <= 0.5,
            f"kappa_max must be in [0, 0.5] (spec L2: K_κ ≤ 1/2), got {self.kappa_max!r}",
        )
        _require(self.basis in ("random", "standard"), f"basis must be 'random' or 'standard', got {self.basis!r}")
        msg = f"train_shifts must be distinct ints in [1, M1 − 1] = [1, {self.M1 - 1}], got {self.train_shifts!r}"
        _require(_is_sequence(self.train_shifts), msg)  # a number or a string is not a list of shifts
        object.__setattr__(self, "train_shifts", tuple(self.train_shifts))
        s = self.train_shifts
        _require(
            len(s) >= 1 and all(_is_int(x) and 1 <= x <= self.M1 - 1 for x in s) and len(set(s)) == len(s), msg,
        )
        if self.train_tasks is not None:
            msg = (f"train_tasks must be distinct pairs (a, b), a ≠ b, of pattern indices in [0, {self.M1}), "
                   f"got {self.train_tasks!r}")
            _require(_is_sequence(self.train_tasks) and all(_is_sequence(t) for t in self.train_tasks), msg)
            tt = tuple(tuple(int(x) if _is_int(x) else x for x in t) for t in self.train_tasks)
            object.__setattr__(self, "train_tasks", tt)
            _require(
                len(tt) >= 1
                and all(len(t) == 2 and all(_is_int(x) and 0 <= x < self.M1 for x in t) and t[0] != t[1] for t in tt)
                and len(set(tt)) == len(tt),
                f"train_tasks must be distinct pairs (a, b), a ≠ b, of pattern indices in [0, {self.M1}), got {tt!r}",
            )
        for name in ("alpha", "alpha_test"):
            v = getattr(self, name)
            _require(_is_real(v) and 0 <= v <= 1, f"{name} must be in [0, 1], got {v!r}")
        _require(
            2 * self.M1_ood <= self.M1,
            f"M1_ood must be ≤ M1 / 2 = {self.M1 // 2} (each ODR pattern mixes two IDR patterns, spec L6 [C]), got {self.M1_ood}",
        )
        _require(self.M1_ood >= 2, f"M1_ood must be ≥ 2 (an OOD task needs two patterns), got {self.M1_ood}")
        _require(
            self.M1_ood > 2 or self.alpha_test == 1,
            f"with M1_ood = 2 OOD prompts have no task-irrelevant pattern, so alpha_test must be 1 (got {self.alpha_test})",
        )
        _require(_is_real(self.S1) and self.S1 > 0 and math.isfinite(self.S1), f"S1 must be > 0, got {self.S1!r}")
        for name in ("beta", "kappa_max", "alpha", "alpha_test", "S1"):
            _as_builtin(self, name)

    @property
    def d(self) -> int:
        """Embedding dimension d = d_X + d_Y."""
        return self.d_x + self.d_y


@dataclass(frozen=True)
class ModelConfig:
    """Model L7–L9. ``m_a``/``m_b`` of ``None`` mean d (spec L8 [C])."""

    m: int = 100
    m_a: int | None = None
    m_b: int | None = None
    delta: float = 0.2
    xi: float = 0.01
    attend_to_query: bool = False
    train_a: bool = False
    relu_at_zero: float = 0.0

    def __post_init__(self):
        _require(_is_int(self.m) and self.m >= 1, f"m must be an int ≥ 1, got {self.m!r}")
        for name in ("m_a", "m_b"):
            v = getattr(self, name)
            _require(v is None or (_is_int(v) and v >= 1), f"{name} must be None (= d) or an int ≥ 1, got {v!r}")
        _require(_is_real(self.delta) and self.delta >= 0 and math.isfinite(self.delta),
                 f"delta must be ≥ 0, got {self.delta!r}")
        _require(_is_real(self.xi) and self.xi >= 0 and math.isfinite(self.xi), f"xi must be ≥ 0, got {self.xi!r}")
        _require(_is_real(self.relu_at_zero) and self.relu_at_zero in (0, 1),
                 f"relu_at_zero must be 0 or 1, got {self.relu_at_zero!r}")
        for name in ("attend_to_query", "train_a"):
            v = getattr(self, name)
            _require(isinstance(v, (bool, np.bool_)), f"{name} must be a bool, got {v!r}")
            object.__setattr__(self, name, bool(v))
        for name in ("delta", "xi", "relu_at_zero"):
            _as_builtin(self, name)

    def options(self) -> dict:
        """The options that change the math, as a dict (``forward`` and ``loss_and_grads`` read them
        from ``cfg.model`` itself; the benchmark problems carry this dict)."""
        return dict(attend_to_query=self.attend_to_query, train_a=self.train_a, relu_at_zero=float(self.relu_at_zero))


@dataclass(frozen=True)
class TrainConfig:
    """SGD, spec L11: B fresh prompts per step from T_tr, W ← W − η mean-gradient."""

    steps: int = 2000
    batch_size: int = 64
    lr: float = 0.5
    eval_every: int = 50
    n_eval: int = 2000

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "n_eval"):
            v = getattr(self, name)
            lo = 0 if name == "steps" else 1
            _require(_is_int(v) and v >= lo, f"{name} must be an int ≥ {lo}, got {v!r}")
        _require(_is_real(self.lr) and self.lr > 0 and math.isfinite(self.lr), f"lr must be > 0, got {self.lr!r}")
        _as_builtin(self, "lr")


@dataclass(frozen=True)
class Config:
    """A full Li et al. 2024 setting: data, model and training."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        for name, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
            _require(isinstance(getattr(self, name), cls), f"{name} must be a {cls.__name__}")

    @property
    def m_a(self) -> int:
        return self.model.m_a if self.model.m_a is not None else self.data.d

    @property
    def m_b(self) -> int:
        return self.model.m_b if self.model.m_b is not None else self.data.d

    def replace(self, **sections) -> Config:
        """Copy with fields replaced per section: ``cfg.replace(train=dict(steps=10))``."""
        new = {}
        for name, changes in sections.items():
            if name not in ("data", "model", "train"):
                raise ValueError(f"unknown config section {name!r}; allowed: data, model, train")
            new[name] = dataclasses.replace(getattr(self, name), **changes)
        return dataclasses.replace(self, **new)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        return cls(
            data=DataConfig(**d.get("data", {})),
            model=ModelConfig(**d.get("model", {})),
            train=TrainConfig(**d.get("train", {})),
        )


def _build_presets() -> dict[str, Config]:
    return {
        # default: the spec's L1–L8 [C] defaults, SGD of L11 (B = 64, η = 0.5)
        "default": Config(),
        # tiny: seconds-long runs for tests and smoke checks
        "tiny": Config(
            data=DataConfig(d_x=12, d_y=4, M1=6, M2=6, l_train=8, l_test=8),
            model=ModelConfig(m=16),
            train=TrainConfig(steps=300, batch_size=16, eval_every=25, n_eval=64),
        ),
        # golden: the default model and data, a batch of 16 prompts (spec L §7 golden file)
        "golden": Config(train=TrainConfig(batch_size=16)),
    }


#: the named configurations, name -> frozen :class:`Config`
PRESETS: dict[str, Config] = _build_presets()


def preset(name: str, **overrides) -> Config:
    """A named configuration of spec L, with fields replaced.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`: ``"default"`` (the spec's L1–L8 [C] defaults and the SGD of L11:
        d_x = 30, d_y = 10, M1 = 6, M2 = 24, l = 20, m = 100, B = 64, η = 0.5, 2000 steps),
        ``"tiny"`` (d_x = 12, d_y = 4, M2 = 6, l = 8, m = 16, B = 16, 300 steps: seconds-long runs)
        or ``"golden"`` (the default model and data with B = 16, spec L §7).
    **overrides
        Fields to replace (:func:`refimpl.core.config.apply_overrides`), by dotted name
        (``preset("tiny", **{"data.alpha": 0.4})``) or by section
        (``preset("tiny", train={"steps": 10})``). Sections: ``data`` (:class:`DataConfig`),
        ``model`` (:class:`ModelConfig`), ``train`` (:class:`TrainConfig`).

    Returns
    -------
    Config
        A frozen, validated configuration.

    Raises
    ------
    ValueError
        For an unknown preset or field (listing the allowed names), or a value the config rejects
        (its own message, naming the field).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown li2024 preset {name!r}; allowed: {sorted(PRESETS)}")
    return apply_overrides(PRESETS[name], overrides)
