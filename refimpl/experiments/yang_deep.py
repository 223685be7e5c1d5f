"""Spec Y Fig. 2(b) and Fig. 5 with the spec T transformer (a 4-layer Vaswani model).

:func:`make_yang_data` draws the dictionary (spec Y2), a pool of ``n_train`` training prompts
(λ ~ N(0, I), spec Y3), and ``n_test`` in-domain (λ ~ N(0, I)) and OOD (λ ~ N(1, 4I)) test prompts with
their ridge targets ŷ* = (y, Z_Qᵀ λ̂), λ̂ = (ZZᵀ + mτ I)⁻¹ Z y (spec Y12), exactly as the Fig. 2(a)
module does for the Y5 model. The training loss is (1/2K) mean_b Σ_k (ŷ_k − y_k)² on minibatches
from the pool (spec Y7 sampled; the transformer's squared loss with T = K), recorded on a fixed
subset of the pool; the inference loss is (1/K) mean_b ‖ŷ − ŷ*‖² on the test prompts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refimpl.core.rng import make_rng
from refimpl.core.trajectory import Trajectory
from refimpl.experiments.adapters import yang_tokens
from refimpl.transformer.model import init_params, predict_chunked
from refimpl.transformer.train import train_adam


def make_yang_data(ycfg, n_train: int, n_test: int, seed: int, n_train_eval: int = 256) -> dict:
    """Dictionary, training pool, test prompts and ridge targets for the spec Y config ``ycfg``.

    Streams as in ``validation/yang2024/figures.py``: dictionary from ``seed``, test prompts from
    ``seed + 10`` (in-domain) and ``seed + 11`` (OOD), training pool from ``seed + 2``.
    ``train_eval``: the first ``n_train_eval`` pool prompts, on which the training loss is recorded."""
    from refimpl.yang2024.data import make_dictionary, sample_prompts
    from refimpl.yang2024.population import ridge_predict

    V_all, Z_all = make_dictionary(ycfg.K, ycfg.d, ycfg.m, seed, normalize_tokens=ycfg.normalize_tokens)
    pool = sample_prompts(Z_all, ycfg.N, ycfg.tau, n_train, seed + 2, keep_eps=False)["y_all"]  # (n_train, K)
    tests, stars = {}, {}
    for i, kind in enumerate(("in", "ood")):
        y_all = sample_prompts(Z_all, ycfg.N, ycfg.tau, n_test, seed + 10 + i, kind=kind)["y_all"]  # (n_test, K)
        tests[kind] = y_all
        stars[kind] = ridge_predict(Z_all, ycfg.N, y_all[:, :ycfg.N], ycfg.m * ycfg.tau)  # (n_test, K) spec Y12
    return {"V_all": V_all, "Z_all": Z_all, "N": ycfg.N, "tau": ycfg.tau, "m": ycfg.m, "pool": pool,
            "train_eval": pool[:n_train_eval], "tests": tests, "stars": stars}


def yang_batch_fn(data: dict, batch_size: int, rng) -> Callable[[int], dict]:
    """Minibatches of ``batch_size`` prompts drawn with replacement from the training pool."""
    rng = make_rng(rng)
    pool = data["pool"]

    def batch_fn(step):
        idx = rng.integers(0, pool.shape[0], size=batch_size)
        X, target = yang_tokens(data["V_all"], pool[idx], data["N"])  # (b, K, d+1), (b, K)
        return {"X": X, "target": target}

    return batch_fn


def yang_losses(params: dict, cfg, data: dict, which=("train", "in", "ood")) -> dict:
    """``train``: (1/2K) mean_b Σ_k (ŷ_k − y_k)² on the fixed training subset (spec Y7, sampled);
    ``in`` / ``ood``: the inference loss (1/K) mean_b ‖ŷ − ŷ*‖² on the test prompts (spec Y12, Fig. 2).
    ``which``: the subset of these to compute."""
    K = data["V_all"].shape[1]
    out = {}
    if "train" in which:
        X, t = yang_tokens(data["V_all"], data["train_eval"], data["N"])
        y_hat = predict_chunked(params, X, cfg)  # (b, K)
        out["train"] = float(np.mean(np.sum((y_hat - t) ** 2, axis=1)) / (2 * K))
    for kind in ("in", "ood"):
        if kind in which:
            X, _ = yang_tokens(data["V_all"], data["tests"][kind], data["N"])
            y_hat = predict_chunked(params, X, cfg)  # (n_test, K)
            out[kind] = float(np.mean(np.sum((y_hat - data["stars"][kind]) ** 2, axis=1)) / K)
    return out


def run_yang(tcfg, data: dict, *, lr: float, batch_size: int, seed: int, steps: int | None = None,
             budget_s: float | None = None, eval_every: int | None = None, eval_every_s: float | None = None,
             threads: int | None = 1, progress: bool | None = None, desc: str = "yang2024 transformer",
             backend: str = "numpy") -> Trajectory:
    """Train ``tcfg`` (read-out "all", squared loss, d_in = d + 1) on the spec Y data by Adam and
    record the training loss and the in-domain / OOD inference losses (:func:`yang_losses`):
    the :class:`~refimpl.core.trajectory.Trajectory` of ``train_adam`` with records ``step``,
    ``time``, ``train``, ``in``, ``ood`` (no snapshots). ``seed`` drives the initialisation
    (``seed``) and the minibatch stream (``seed + 1``). ``backend`` (``"numpy"`` or ``"numba"``)
    computes the training steps; the evaluations use the NumPy forward."""
    d = data["V_all"].shape[0]
    if tcfg.d_in != d + 1 or tcfg.readout != "all" or tcfg.loss != "squared":
        raise ValueError(f"tcfg must have d_in = d + 1 = {d + 1}, readout 'all' and loss 'squared'; got "
                         f"d_in={tcfg.d_in}, readout={tcfg.readout!r}, loss={tcfg.loss!r}")
    params = init_params(tcfg, seed)
    return train_adam(params, tcfg, yang_batch_fn(data, batch_size, seed + 1), lr=lr, steps=steps,
                      budget_s=budget_s, eval_fn=lambda p: yang_losses(p, tcfg, data), eval_every=eval_every,
                      eval_every_s=eval_every_s, threads=threads, progress=progress, desc=desc, seed=seed,
                      backend=backend)
