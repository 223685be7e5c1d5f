"""Configuration of the reference transformer (spec T): a frozen dataclass validated on construction.

==============  ==========  =========================================================================
field           default     meaning
==============  ==========  =========================================================================
n_layers        2           number of transformer layers (attention + feed-forward each), ≥ 1
d_model         16          residual-stream width; divisible by n_heads
n_heads         2           H attention heads of size d_head = d_model / H
d_ff            32          feed-forward hidden width
d_in            4           input token dimension (read-in maps d_in → d_model)
norm            "pre"       "post": x = LN(x + f(x)) (Vaswani);  "pre": x = x + f(LN(x)), final LN (GPT-2)
activation      "gelu"      feed-forward activation: "relu" or "gelu" (tanh approximation)
causal          False       causal mask: query t attends to keys ≤ t
positions       "none"      "none" or "learned" (GPT-2 style table ``pos`` (max_T, d_model))
max_T           64          longest sequence the learned position table covers
readout         "all"       "all": d_model → 1 at every position, out (B, T); "last": out (B,)
loss            "squared"   "squared" (spec Y) or "hinge" (spec L, targets ±1)
init            "gpt2"      "gpt2": N(0, init_std²), residual projections / √(2 n_layers);
                            "xavier": Glorot-uniform weights (see ``model.init_params``)
init_std        0.02        standard deviation of the "gpt2" init and of ``pos`` in both schemes
==============  ==========  =========================================================================

Presets (spec T): ``vaswani4``, ``gpt2_3l2h`` and ``tiny`` (tests), in :data:`PRESETS`;
``preset(name, **overrides)`` applies overrides through :func:`refimpl.core.config.apply_overrides`.
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

NORMS = ("post", "pre")
ACTIVATIONS = ("relu", "gelu")
POSITIONS = ("none", "learned")
READOUTS = ("all", "last")
LOSSES = ("squared", "hinge")
INITS = ("gpt2", "xavier")


def _choice(name, value, allowed):
    _require(isinstance(value, str) and value in allowed, f"{name} must be one of {list(allowed)}, got {value!r}")


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture, read-in/read-out, loss and initialisation of one spec T transformer."""

    n_layers: int = 2
    d_model: int = 16
    n_heads: int = 2
    d_ff: int = 32
    d_in: int = 4
    norm: str = "pre"
    activation: str = "gelu"
    causal: bool = False
    positions: str = "none"
    max_T: int = 64
    readout: str = "all"
    loss: str = "squared"
    init: str = "gpt2"
    init_std: float = 0.02

    def __post_init__(self):
        for name in ("n_layers", "d_model", "n_heads", "d_ff", "d_in", "max_T"):
            v = getattr(self, name)
            _require(_is_int(v) and v >= 1, f"{name} must be an int ≥ 1, got {v!r}")
        _require(self.d_model % self.n_heads == 0,
                 f"d_model must be divisible by n_heads; got d_model={self.d_model}, n_heads={self.n_heads}")
        _choice("norm", self.norm, NORMS)
        _choice("activation", self.activation, ACTIVATIONS)
        _require(isinstance(self.causal, (bool, np.bool_)), f"causal must be a bool, got {self.causal!r}")
        _choice("positions", self.positions, POSITIONS)
        _choice("readout", self.readout, READOUTS)
        _choice("loss", self.loss, LOSSES)
        _choice("init", self.init, INITS)
        s = self.init_std
        _require(isinstance(s, numbers.Real) and not isinstance(s, bool) and math.isfinite(s) and s > 0,
                 f"init_std must be a finite number > 0, got {s!r}")

    @property
    def d_head(self) -> int:
        """Head size d_model / H."""
        return self.d_model // self.n_heads

    def replace(self, **changes) -> TransformerConfig:
        """A copy with ``changes`` applied (validated); unknown field names → ``ValueError``."""
        return apply_overrides(self, changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, TransformerConfig] = {
    # spec T / spec Y Fig. 2(b), Fig. 5: Vaswani et al. 2017 block, 4 layers, d_model 256, d_ff 512,
    # post-norm, ReLU, no mask, no positions (Y prompts are sets), per-position read-out, squared
    # loss. [C] H = 8, d_in = 101 (spec Y tokens d = 100 plus the label row), Xavier init (the
    # usual choice for post-norm models); override any of them.
    "vaswani4": TransformerConfig(
        n_layers=4, d_model=256, n_heads=8, d_ff=512, d_in=101, norm="post", activation="relu",
        causal=False, positions="none", max_T=256, readout="all", loss="squared", init="xavier",
    ),
    # spec T / spec L E1, E2, E7: small GPT-2, 3 layers, 2 heads, pre-norm, GELU, causal mask,
    # learned positions, last-position read-out, hinge loss. [C] d_model 64, d_ff 256, GPT-2 init
    # N(0, 0.02²); d_in = 41 and max_T = 64 are defaults to override with the data's sizes.
    "gpt2_3l2h": TransformerConfig(
        n_layers=3, d_model=64, n_heads=2, d_ff=256, d_in=41, norm="pre", activation="gelu",
        causal=True, positions="learned", max_T=64, readout="last", loss="hinge", init="gpt2",
    ),
    # tests: every feature small (both norms etc. are exercised through overrides)
    "tiny": TransformerConfig(
        n_layers=2, d_model=8, n_heads=2, d_ff=12, d_in=3, norm="pre", activation="gelu",
        causal=True, positions="learned", max_T=8, readout="all", loss="squared", init="gpt2",
    ),
}


def preset(name: str, **overrides) -> TransformerConfig:
    """A named spec T configuration, with fields replaced.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`: ``"vaswani4"`` (Yang et al.'s 4-layer post-norm model, d_model 256,
        8 heads, ReLU, per-position read-out, squared loss), ``"gpt2_3l2h"`` (Li et al.'s 3-layer,
        2-head GPT-2: pre-norm, GELU, causal, learned positions, last-position read-out, hinge
        loss) or ``"tiny"`` (2 layers, d_model 8: seconds-long runs).
    **overrides
        :class:`TransformerConfig` fields to replace, e.g. ``preset("tiny", norm="post")``.

    Returns
    -------
    TransformerConfig
        A frozen, validated configuration.

    Raises
    ------
    ValueError
        For an unknown preset or field, or a value the config rejects.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown transformer preset {name!r}; allowed: {list(PRESETS)}")
    return apply_overrides(PRESETS[name], overrides)
