"""Benchmark problem of the spec T transformer: one Adam step of ``gpt2_3l2h`` on Li-style
prompts (B = 64 prompts of T = l + 1 = 21 tokens of dimension d_in = 41, hinge loss at the last
position), the size of the papers' deeper-model experiment E1/E2 [C]. Sizes override for the
scaling curves (T, n_layers, B, d_model).

The batch is Gaussian tokens with ±1 targets: step cost does not depend on the values.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.arrays import check_choice, is_int, require
from refimpl.core.rng import make_rng, spawn

DEFAULT_SIZES = {"B": 64, "T": 21, "d_in": 41, "n_layers": 3, "d_model": 64, "d_ff": 256, "n_heads": 2}
LR = 1e-3


def make_problem(dtype: str = "float64", seed: int = 0, **sizes):
    from refimpl.benchmarks.problems import Problem
    from refimpl.transformer import init_params, preset

    check_choice("dtype", dtype, ("float64", "float32"))
    unknown = sorted(set(sizes) - set(DEFAULT_SIZES))
    if unknown:
        raise ValueError(f"unknown size(s) {unknown} for model 'transformer'; allowed: {list(DEFAULT_SIZES)}")
    s = {**DEFAULT_SIZES, **sizes}
    for k, v in s.items():
        require(is_int(v) and v >= 1, f"size {k} must be an int ≥ 1, got {v!r}")
    cfg = preset("gpt2_3l2h", d_in=s["d_in"], n_layers=s["n_layers"], d_model=s["d_model"], d_ff=s["d_ff"],
                 n_heads=s["n_heads"], max_T=max(s["T"], 64))
    r_p, r_x = spawn(make_rng(seed), 2)
    dt = np.dtype(dtype)
    params = {k: np.ascontiguousarray(v, dtype=dt) for k, v in init_params(cfg, r_p).items()}
    X = r_x.standard_normal((s["B"], s["T"], s["d_in"])).astype(dt)
    target = np.where(r_x.random(s["B"]) < 0.5, -1.0, 1.0).astype(dt)
    return Problem(model="transformer", config={**s, "preset": "gpt2_3l2h", "readout": cfg.readout},
                   params=params, batch={"X": X, "target": target}, options={"cfg": cfg},
                   optimizer={"name": "adam", "lr": LR, "betas": (0.9, 0.999), "eps": 1e-8}, dtype=dtype,
                   trainable=tuple(params))


class ReferenceRunner:
    """refimpl.transformer's step (NumPy + BLAS; there is no Numba path): loss_and_grads, Adam."""

    def __init__(self, problem):
        from refimpl.transformer import Adam

        self.problem = problem
        self._p = problem.copy_params()
        o = problem.optimizer
        self._opt = Adam(o["lr"], betas=tuple(o["betas"]), eps=o["eps"])

    def loss_and_grads(self):
        from refimpl.transformer import loss_and_grads

        loss, g = loss_and_grads(self._p, self.problem.batch, self.problem.options["cfg"], "numpy")
        return float(loss), g

    def step(self) -> None:
        _, g = self.loss_and_grads()
        self._opt.step(self._p, g)

    def params(self) -> dict:
        return {k: v.copy() for k, v in self._p.items()}
