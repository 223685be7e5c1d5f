"""huang2023: one GD step (η = 1, spec H13 (a)) on Q of the spec H one-layer attention model;
mean per-prompt loss ½(ŷ − y_q)² on B materialised prompts (spec H4–H6), balanced features,
d = K [C].

Q ~ N(0, 0.5²) instead of Q⁰ = 0 [C]: at Q = 0 the attention is uniform and the softmax backward
is a special case.
"""

from __future__ import annotations

import functools

import numpy as np

from refimpl.core.rng import spawn

DEFAULT_SIZES = {"K": 10, "N": 100, "B": 256}
SMALL = {"K": 4, "N": 8, "B": 16}
LARGE = {"K": 10, "N": 100, "B": 8192}
OPTIONS = {"attend_to_query": (False, True), "loss": ("sample",)}
SCALING = {"N": (25, 50, 100, 200, 400), "B": (64, 256, 1024)}


@functools.lru_cache(maxsize=64)
def _config(K: int, d: int, N: int, loss: str, attend_to_query: bool):
    """The ``refimpl.huang2023.Config`` (what ``loss_and_grads`` reads: ``loss``,
    ``attend_to_query``), built once per combination (~13 µs, 4% of a step)."""
    from refimpl.huang2023 import Config

    return Config(K=K, d=d, N=N, loss=loss, attend_to_query=attend_to_query)


def build(s: dict, rng: np.random.Generator, dtype: str, options: dict):
    from refimpl.benchmarks.problems import Problem
    from refimpl.huang2023 import make_features, preset, sample_prompts

    eta = float(preset("balanced").eta)  # spec H13 (a): η = 1
    K, N, B = s["K"], s["N"], s["B"]
    d = K  # spec H1 [C]: d = K
    r_v, r_q, r_data = spawn(rng, 3)
    V = make_features(d, K, r_v)  # (d, K) orthonormal features, spec H1
    b = sample_prompts(V, np.full(K, 1.0 / K), N, B, r_data)  # spec H1–H2, balanced p; one w per prompt
    Q = 0.5 * r_q.standard_normal((d, d))  # [C] random Q (Q⁰ = 0 gives uniform attention)
    return Problem(name="huang2023", model="huang2023", config={**s, "d": d, "p": "balanced"}, params={"Q": Q},
                   batch={"X": b["X"], "xq": b["xq"], "y": b["y"], "yq": b["yq"]},
                   options={"loss": "sample", "attend_to_query": False, **options},
                   optimizer={"name": "sgd", "lr": eta}, trainable=("Q",))


def loss_and_grads(problem, params, backend, *, check=True, outputs=True):
    from refimpl.huang2023 import loss_and_grads as lg

    c, o = problem.config, problem.options
    cfg = _config(c["K"], c["d"], c["N"], o["loss"], bool(o["attend_to_query"]))
    res = lg(params, problem.batch, cfg, backend, check=check, return_aux=outputs)
    return res[0], res[1], ({"attn": res[2]["attn"], "y_hat": res[2]["out"]} if outputs else None)


def flops(config: dict) -> dict:
    """Spec H4–H6 per-sample loss on B materialised prompts (refimpl/huang2023/model.py)."""
    B, N = config["B"], config["N"]
    d = config.get("d") or config["K"]
    J = N + 1 if config.get("attend_to_query") else N
    fwd = B * (d * d + J * d + N)  # Q x_q, s = keys (Q x_q), ŷ = Σ attn y
    bwd = B * (J * d + d * d)      # Σ_j ds_j key_j, ∇Q = Σ_b (·) x_qᵀ
    elementwise = B * (8 * J + 4) + 2 * d * d
    return {"matmul": 2 * (fwd + bwd), "elementwise": elementwise}
