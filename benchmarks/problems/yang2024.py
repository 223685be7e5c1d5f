"""yang2024: one Adam step (lr 1e−4, spec Y9 [P]) of the spec Y multi-head attention model on B
sampled prompts of the fixed dictionary; the sample loss (1/2K)·mean_b Σ_k (ŷ_k − y_k)²
(spec Y5, Y7, Y9); Q and w trained.

Sizes: H heads, N prompt tokens, K dictionary size, d token dimension, m features, B prompts.
Q per spec Y6 (N(0, β²)), but w ~ N(0, 0.1²) instead of w⁰ = 0 [C]: with w = 0 the Q gradient is
exactly zero (spec §7) and the problem would not exercise it.
"""

from __future__ import annotations

import functools

import numpy as np

from refimpl.core.arrays import require
from refimpl.core.rng import spawn

DEFAULT_SIZES = {"H": 64, "N": 30, "K": 200, "d": 100, "m": 20, "B": 256}
SMALL = {"H": 4, "N": 5, "K": 12, "d": 6, "m": 3, "B": 16}
LARGE = dict(DEFAULT_SIZES)  # the paper size is already ~0.2 GFLOP a step
OPTIONS = {"loss": ("sample",)}  # the minibatch loss is the benchmark problem (the population loss has no batch)
SCALING = {"N": (10, 20, 30, 60, 120), "H": (8, 16, 32, 64, 128), "d": (50, 100, 200), "B": (64, 256, 1024)}


@functools.lru_cache(maxsize=64)
def _config(K, N, d, m, H, tau, B, loss):
    """The spec Y ``Config`` (Adam, lr 1e−4, batch B as the ``fig2`` preset, spec Y9 [P])."""
    from refimpl.yang2024 import preset

    return preset("fig2", K=K, N=N, d=d, m=m, H=H, tau=tau, batch_size=B, loss=loss)


def config_of(problem):
    c = problem.config
    return _config(c["K"], c["N"], c["d"], c["m"], c["H"], c["tau"], c["B"], problem.options["loss"])


def build(s: dict, rng: np.random.Generator, dtype: str, options: dict):
    from refimpl.benchmarks.problems import Problem
    from refimpl.yang2024 import init_params, make_dictionary, preset, sample_prompts

    require(s["N"] <= s["K"], f"yang2024 needs N ≤ K (spec Y4), got N={s['N']}, K={s['K']}")
    cfg = preset("fig2", K=s["K"], N=s["N"], d=s["d"], m=s["m"], H=s["H"], beta=1.0)
    tau = cfg.tau  # spec Y §8 [C]: τ = 0.01 for Fig. 2
    r_dict, r_init, r_w, r_data = spawn(rng, 4)
    V_all, Z_all = make_dictionary(s["K"], s["d"], s["m"], r_dict)  # spec Y2
    params = init_params(cfg, r_init)  # spec Y6: Q⁰ ~ N(0, 1)
    params["w"] = 0.1 * r_w.standard_normal((s["H"], s["K"]))  # [C] w ≠ 0 so ∇Q ≠ 0 (spec Y §7)
    data = sample_prompts(Z_all, s["N"], tau, s["B"], r_data, keep_eps=False)  # spec Y1: B prompts
    batch = {"V_all": V_all, "N": s["N"], "y": data["y"], "y_all": data["y_all"]}
    return Problem(name="yang2024", model="yang2024", config={**s, "tau": tau}, params=params, batch=batch,
                   options={"loss": "sample", **options},
                   optimizer={"name": "adam", "lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8},  # spec Y9 [P]
                   trainable=("Q", "w"))


def loss_and_grads(problem, params, backend, *, check=True, outputs=True):
    from refimpl.yang2024 import loss_and_grads as lg

    res = lg(params, problem.batch, config_of(problem), backend, check=check, return_aux=outputs)
    return res[0], res[1], ({"A_hat": res[2]["A_hat"], "S": res[2]["attn"]} if outputs else None)


def flops(config: dict) -> dict:
    """Spec Y5/Y8 (refimpl/yang2024/model.py): P_h = (Vᵀ Q_h) Ṽ, ∇Q_h = V (dP_h Ṽᵀ); sample loss
    over B prompts ŷ = y Â; Adam update."""
    H, N, K, d, B = (config[k] for k in ("H", "N", "K", "d", "B"))
    fwd = H * (N * d * d + N * d * K) + H * N * K + B * N * K  # VᵀQ_h, (VᵀQ_h)Ṽ, Â = Σ_h S_h w_h, ŷ = yÂ
    bwd = B * N * K + H * N * K + H * (N * K * d + d * N * d)  # ∂Â = yᵀr, ∇w, dP_h Ṽᵀ, V(·)
    elementwise = 8 * H * N * K + 3 * B * K + 12 * H * (d * d + K)  # softmax fwd/bwd, loss, Adam
    return {"matmul": 2 * (fwd + bwd), "elementwise": elementwise}
