"""li2024: one SGD step of the spec L transformer (one softmax-attention layer + two-layer ReLU
MLP) on B fixed prompts; mean hinge loss (spec L7–L12), W_Q, W_K, W_V, W_O trained (a fixed
unless ``train_a``), η of the default preset.

Sizes: B prompts, l context columns, d = d_X + d_Y, m MLP neurons (m_a = m_b = d). The examples
come in two forms: "naive" (the formula as a user writes it) and "matched" (refimpl's
contraction order s = Cᵀ(W_Kᵀ u), v = W_V(C σ)); the table shows both, so the ratio separates
a better algorithm from a better implementation (issue 16).

Note: refimpl's Numba kernel skips prompts whose hinge is inactive (zF ≥ 1); the harness restarts
every round from the initial parameters, so every backend times the same steps of the same
trajectory.
"""

from __future__ import annotations

import functools

import numpy as np

from refimpl.core.arrays import is_int, require
from refimpl.core.rng import spawn

DEFAULT_SIZES = {"B": 64, "l": 20, "d": 40, "m": 100}
SMALL = {"B": 8, "l": 6, "d": 12, "m": 16}
LARGE = {"B": 2048, "l": 20, "d": 40, "m": 100}
OPTIONS = {"attend_to_query": (False, True), "train_a": (False, True), "relu_at_zero": (0.0, 1.0)}
FORMS = {"naive": "naive order", "matched": "algebra-matched"}
SCALING = {"l": (5, 10, 20, 40, 80), "B": (16, 32, 64, 128, 256), "d": (20, 40, 80, 160)}


def data_config(d: int, l: int):
    """A spec L data config with embedding dimension d = d_X + d_Y and context length l.

    d = 40 gives the default preset (d_X = 30, d_Y = 10, M1 = 6, M2 = 24). Other d [C]:
    d_Y = max(1, d // 4), d_X = d − d_Y, M1 = 6, M2 = d_X − M1, so that the patterns stay
    orthogonal (d_X ≥ M1 + M2, spec L1) and the OOD set of the default config stays valid
    (M1 ≥ 2 M1' = 6). Needs d ≥ 9.
    """
    from refimpl.li2024.config import DataConfig

    require(is_int(d) and d >= 9, f"li2024 size d must be ≥ 9 (d_X ≥ M1 + M2 = 6 + 1, d_Y ≥ 2), got {d!r}")
    d_y = max(1, d // 4)
    d_x = d - d_y
    return DataConfig(d_x=d_x, d_y=d_y, M1=6, M2=d_x - 6, l_train=l, l_test=l)


def build(s: dict, rng: np.random.Generator, dtype: str, options: dict):
    from refimpl.benchmarks.problems import Problem
    from refimpl.li2024 import init_params, make_instance, preset, sample_batch

    base = preset("default")  # spec L8 / L11 [C]: model and SGD step of the default preset
    cfg = base.replace(data=vars(data_config(s["d"], s["l"])), model={"m": s["m"], **options},
                       train={"batch_size": s["B"]})
    r_inst, r_init, r_batch = spawn(rng, 3)
    inst = make_instance(cfg.data, r_inst)  # spec L1–L6
    params = init_params(cfg, r_init)  # spec L8: W_Q⁰ = W_K⁰ = δ[I 0; 0 0], W_V⁰ = I, W_O⁰ ~ N(0, ξ²)
    b = sample_batch(inst, s["B"], r_batch)  # one fixed batch of B training prompts (spec L4, L5)
    opts = cfg.model.options()  # attend_to_query, train_a, relu_at_zero
    config = {**s, "d_x": cfg.data.d_x, "d_y": cfg.data.d_y, "M1": cfg.data.M1, "M2": cfg.data.M2,
              "m_a": cfg.m_a, "m_b": cfg.m_b}
    return Problem(name="li2024", model="li2024", config=config, params=params,
                   batch={"P": b["P"], "z": b["z"].astype(np.float64)}, options=opts,
                   optimizer={"name": "sgd", "lr": float(cfg.train.lr)},
                   trainable=("W_Q", "W_K", "W_V", "W_O") + (("a",) if opts["train_a"] else ()))


@functools.lru_cache(maxsize=16)
def _config(attend_to_query: bool, train_a: bool, relu_at_zero: float):
    """The li2024 config carrying a problem's options (``loss_and_grads`` reads them from
    ``cfg.model``), built once per combination, outside the timed step."""
    from refimpl.li2024 import preset

    return preset("default", model={"attend_to_query": attend_to_query, "train_a": train_a,
                                    "relu_at_zero": relu_at_zero})


def loss_and_grads(problem, params, backend, *, check=True, outputs=True):
    from refimpl.li2024 import loss_and_grads as lg

    o = problem.options
    cfg = _config(bool(o["attend_to_query"]), bool(o["train_a"]), float(o["relu_at_zero"]))
    res = lg(params, problem.batch, cfg, backend, check=check, return_aux=outputs)
    return res[0], res[1], ({"F": res[2]["out"], "attn": res[2]["attn"]} if outputs else None)


def flops(config: dict) -> dict:
    """Spec L7/L12 with s = Cᵀ(W_Kᵀ u) and v = W_V(C σ) (refimpl/li2024/model.py)."""
    B, l, d, m = config["B"], config["l"], config["d"], config["m"]
    m_a = config.get("m_a") or d
    m_b = config.get("m_b") or d
    J = l + 1 if config.get("attend_to_query") else l
    fwd = B * (m_b * d        # u = W_Q p_q
               + m_b * d      # W_Kᵀ u
               + d * J        # s = keysᵀ (W_Kᵀ u)
               + d * l        # c̄ = C σ
               + m_a * d      # v = W_V c̄
               + m * m_a      # h = W_O v
               + m)           # F = aᵀ r
    bwd = B * (2 * m * m_a    # ∇W_O = δh vᵀ, δv = W_Oᵀ δh
               + 2 * m_a * d  # ∇W_V = δv c̄ᵀ, δc̄ = W_Vᵀ δv
               + d * l        # c_i = p_iᵀ δc̄
               + d * J        # C γ
               + 3 * m_b * d)  # ∇W_K = u (Cγ)ᵀ, δu = W_K (Cγ), ∇W_Q = δu p_qᵀ
    elementwise = B * (4 * J + 4 * J + 3 * m) + 2 * (2 * m_b * d + m_a * d + m * m_a)  # softmax, relu, SGD
    return {"matmul": 2 * (fwd + bwd), "elementwise": elementwise}
