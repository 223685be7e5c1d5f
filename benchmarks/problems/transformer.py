"""transformer: one Adam step (lr 1e−3) of the spec T transformer ``gpt2_3l2h`` (3 layers, 2
heads, pre-norm, GELU, causal mask, learned positions, last-position read-out, hinge loss) on
Li-style prompts: B = 64 prompts of T = l + 1 = 21 tokens of dimension d_in = 41, the size of the
papers' deeper-model experiments E1/E2 [C]. Every trained tensor is a parameter.

The batch is Gaussian tokens with ±1 targets (one per prompt, or per position with readout
"all"): step cost does not depend on the values. The key bias b_K does not change the loss
(softmax ignores a shift shared by a query's scores): its gradient is rounding noise and its Adam
trajectory is not comparable between implementations (``UNIDENTIFIED``).
"""

from __future__ import annotations

import functools

import numpy as np

from refimpl.core.rng import spawn

DEFAULT_SIZES = {"B": 64, "T": 21, "d_in": 41, "n_layers": 3, "d_model": 64, "d_ff": 256, "n_heads": 2}
SMALL = {"B": 4, "T": 6, "d_in": 5, "n_layers": 2, "d_model": 8, "d_ff": 12, "n_heads": 2}
LARGE = {**DEFAULT_SIZES, "B": 256}
OPTIONS = {"norm": ("pre", "post"), "activation": ("gelu", "relu"), "causal": (True, False),
           "positions": ("learned", "none"), "readout": ("last", "all"), "loss": ("hinge", "squared")}
# B = 8 prompts; the fitted c0 + c1 T + c2 T² gives the length where attention (T²) overtakes the linear layers
SCALING = {"T": (32, 128, 512, 1024), "n_layers": (1, 2, 4, 8)}
SCALING_BASE = {"B": 8}
UNIDENTIFIED = ("attn.b_K",)
LR = 1e-3


@functools.lru_cache(maxsize=64)
def _config(d_in, n_layers, d_model, d_ff, n_heads, max_T, options: tuple):
    from refimpl.transformer import preset

    return preset("gpt2_3l2h", d_in=d_in, n_layers=n_layers, d_model=d_model, d_ff=d_ff, n_heads=n_heads,
                  max_T=max_T, **dict(options))


def config_of(problem):
    """The ``refimpl.transformer.TransformerConfig`` of a problem."""
    c, o = problem.config, problem.options
    return _config(c["d_in"], c["n_layers"], c["d_model"], c["d_ff"], c["n_heads"], c["max_T"],
                   tuple((k, o[k]) for k in OPTIONS))


def build(s: dict, rng: np.random.Generator, dtype: str, options: dict):
    from refimpl.benchmarks.problems import Problem
    from refimpl.transformer import init_params

    opts = {k: v[0] for k, v in OPTIONS.items()} | options
    config = {**s, "max_T": max(s["T"], 64), "preset": "gpt2_3l2h"}
    r_p, r_x = spawn(rng, 2)
    prob = Problem(name="transformer", model="transformer", config=config, params={}, batch={},
                   options={**opts, "n_layers": s["n_layers"], "n_heads": s["n_heads"]},
                   optimizer={"name": "adam", "lr": LR, "betas": (0.9, 0.999), "eps": 1e-8})
    cfg = config_of(prob)
    prob.params = init_params(cfg, r_p)
    prob.trainable = tuple(prob.params)
    X = r_x.standard_normal((s["B"], s["T"], s["d_in"]))
    shape = (s["B"],) if opts["readout"] == "last" else (s["B"], s["T"])
    prob.batch = {"X": X, "target": np.where(r_x.random(shape) < 0.5, -1.0, 1.0)}
    return prob


def loss_and_grads(problem, params, backend, *, check=True, outputs=True):
    from refimpl.transformer import loss_and_grads as lg

    res = lg(params, problem.batch, config_of(problem), backend, check=check, return_aux=outputs)
    return res[0], res[1], ({"out": res[2]["out"], "attn": np.stack(res[2]["attn"])} if outputs else None)


def flops(config: dict) -> dict:
    """Spec T: per layer 4 d_model² T (Q, K, V, O) + 2 T² d_model (scores, weighted sum) +
    2 d_model d_ff T (feed-forward) multiply-adds per prompt forward; backward ≈ 2× forward."""
    B, T, d_in, D, F, L = (config[k] for k in ("B", "T", "d_in", "d_model", "d_ff", "n_layers"))
    per_layer = 4 * D * D * T + 2 * T * T * D + 2 * D * F * T
    fwd = B * (d_in * D * T + L * per_layer + D * (T if config.get("readout") == "all" else 1))
    elementwise = B * L * (6 * T * T + 20 * T * D + 4 * T * F)
    return {"matmul": 2 * 3 * fwd, "elementwise": elementwise}


def fit_scaling(size: str, x, t) -> dict:
    """For the curve in T: t = c0 + c1 T + c2 T² (non-negative least squares), the linear layers
    and the T² attention term, and the length where the two are equal."""
    if size != "T" or len(x) < 3:
        return {}
    from scipy.optimize import nnls

    x, t = np.asarray(x, dtype=float), np.asarray(t, dtype=float)
    c, _ = nnls(np.vstack([np.ones_like(x), x, x * x]).T / t[:, None], np.ones_like(t))
    return {"c0_s": float(c[0]), "linear_s_per_token": float(c[1]), "quadratic_s_per_token2": float(c[2]),
            "crossover_T": float(c[1] / c[2]) if c[2] > 0 else None}
