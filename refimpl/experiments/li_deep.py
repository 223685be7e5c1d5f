"""Spec L E1, E2 and E7 with the spec T transformer (the paper's 3-layer, 2-head GPT-2).

:func:`li_instance` is the instance (patterns, q, task sets) that ``refimpl.li2024.train`` uses for
the same seed (``refimpl.li2024.make_data``), so the deep model and the one-layer model see the
same data model. The GPT-2 reads the prompt as tokens (query last, causal mask, read-out at the last
position) and is trained by Adam on the hinge loss [C: the paper's optimiser for its GPT-2 is not
recoverable]. [C] Each minibatch has one prompt length l drawn uniformly from ``l_range``, so that
every learned position (up to the longest test length) is trained as a context and as the query
position; training tasks T_tr, α = α_train as in the one-layer model. Test curves use the same
prompt streams (``refimpl.li2024.prompt_rng``) as the one-layer curves (paired comparisons).

Glossary: B prompts, T tokens, L layers, H heads; ``attn[layer]`` (B, H, T, T) (query, key).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refimpl.core.arrays import is_int
from refimpl.core.rng import make_rng, spawn
from refimpl.core.stats import clopper_pearson
from refimpl.core.trajectory import Trajectory
from refimpl.experiments.adapters import li_token_roles, li_tokens
from refimpl.li2024.data import make_data, prompt_rng, sample_batch, with_ood
from refimpl.transformer.model import init_params, predict_chunked
from refimpl.transformer.train import train_adam


def li_instance(li_cfg, seed: int):
    """The instance ``refimpl.li2024.train(li_cfg, seed)`` draws (``make_data``, its ``instance`` stream)."""
    return make_data(li_cfg, seed)


def li_batch_fn(inst, batch_size: int, l_range: tuple[int, int], rng, *, tasks="train",
                alpha: float | None = None) -> Callable[[int], dict]:
    """Minibatches of ``batch_size`` training prompts, one length l ~ U{l_range[0]..l_range[1]} per
    minibatch [C] (spec L4 with the training α)."""

    lo, hi = l_range
    if not (is_int(lo) and is_int(hi) and 1 <= lo <= hi):
        raise ValueError(f"l_range must be two ints 1 ≤ lo ≤ hi, got {l_range!r}")
    rng = make_rng(rng)

    def batch_fn(step):
        l = int(rng.integers(lo, hi + 1))
        b = sample_batch(inst, batch_size, rng, tasks=tasks, l=l, alpha=alpha)
        X, z = li_tokens(b)  # (B, l+1, d), (B,)
        return {"X": X, "target": z}

    return batch_fn


def li_eval(params: dict, tcfg, batch: dict) -> dict:
    """Error (z F ≤ 0), mean hinge loss and, per layer, the mean attention mass from the query
    (last token) to same-pattern and to "other" contexts, averaged over heads and prompts."""
    X, z = li_tokens(batch)
    F, attn = predict_chunked(params, X, tcfg, with_attn=True)  # (B,), L × (B, H, T, T)
    zF = z * F
    roles = li_token_roles(batch)
    same, other = attention_mass(attn, roles["same"]), attention_mass(attn, roles["other"])  # (B, L, H)
    return {"error": float(np.mean(zF <= 0)), "hinge": float(np.mean(np.maximum(0.0, 1.0 - zF))),
            "attn_same": same.mean(axis=0), "attn_other": other.mean(axis=0)}  # (L, H) each


def attention_mass(attn: list, mask: np.ndarray) -> np.ndarray:
    """Per prompt, layer and head: Σ_{keys i in mask} attn[layer][b, h, T−1, i], the attention the
    last (query) token pays to the masked tokens. attn: L × (B, H, T, T); mask (B, T) → (B, L, H)."""
    return np.stack([np.einsum("bht,bt->bh", a[:, :, -1, :], mask.astype(a.dtype)) for a in attn], axis=1)


def train_li(tcfg, inst, *, lr: float, steps: int, batch_size: int, l_range: tuple[int, int], seed: int,
             snapshot_every: int | None = None, eval_every: int = 100, n_eval: int = 500, threads: int | None = 1,
             schedule: str = "constant", warmup: int = 0, progress: bool | None = None,
             desc: str = "li2024 transformer", backend: str = "numpy") -> Trajectory:
    """Train ``tcfg`` (read-out "last", hinge loss) on spec L training prompts by Adam. ``seed``
    drives the initialisation and (through a spawned stream) the minibatches. Returns the
    :class:`~refimpl.core.trajectory.Trajectory` of ``train_adam`` (``seed``; ``extra["l_range"]``)
    whose records hold the unseen-task ``error`` / ``hinge`` / ``attn_same`` / ``attn_other``
    (:func:`li_eval`) on ``n_eval`` fixed prompts at (α', l_ts) every ``eval_every`` steps.
    ``backend`` (``"numpy"`` or ``"numba"``) computes the training steps; the evaluations use the
    NumPy forward."""

    d = inst.cfg.d
    if tcfg.d_in != d or tcfg.readout != "last" or tcfg.loss != "hinge":
        raise ValueError(f"tcfg must have d_in = d = {d}, readout 'last' and loss 'hinge'; got d_in={tcfg.d_in}, "
                         f"readout={tcfg.readout!r}, loss={tcfg.loss!r}")
    if tcfg.positions == "learned" and tcfg.max_T < l_range[1] + 1:
        raise ValueError(f"tcfg.max_T must be ≥ l_range[1] + 1 = {l_range[1] + 1}, got {tcfg.max_T}")
    data_rng, eval_rng = spawn(make_rng(seed), 2)
    eval_batch = sample_batch(inst, n_eval, eval_rng, tasks="unseen")
    params = init_params(tcfg, seed)
    res = train_adam(params, tcfg, li_batch_fn(inst, batch_size, l_range, data_rng), lr=lr, steps=steps,
                     eval_fn=lambda p: li_eval(p, tcfg, eval_batch), eval_every=eval_every,
                     snapshot_every=snapshot_every, threads=threads, schedule=schedule, warmup=warmup,
                     progress=progress, desc=desc, seed=seed, backend=backend)
    res.extra["l_range"] = tuple(l_range)
    return res


def li_error_curve(params: dict, tcfg, inst, lengths, n: int, *, seed: int, tasks="unseen", alpha: float,
                   key: int = 0) -> dict:
    """Error and hinge vs l_ts on ``n`` prompts per length, from the prompt streams
    ``prompt_rng(seed, key, l)`` of ``refimpl.li2024.metrics.error_curve`` (for n ≤ its chunk of
    2000 these are the one-layer curve's first n prompts). Same keys as ``error_curve``."""

    err, hin, ci = [], [], []
    for l in lengths:
        b = sample_batch(inst, n, prompt_rng(seed, key, int(l)), tasks=tasks, l=int(l), alpha=alpha)
        X, z = li_tokens(b)
        zF = z * predict_chunked(params, X, tcfg)
        k = int(np.sum(zF <= 0))
        err.append(k / n)
        hin.append(float(np.mean(np.maximum(0.0, 1.0 - zF))))
        ci.append(clopper_pearson(k, n))
    return {"lengths": np.asarray(lengths), "error": np.array(err), "hinge": np.array(hin),
            "error_ci95": np.array(ci), "n": n}


def li_ood_curves(params: dict, tcfg, inst, S1s, lengths, n: int, *, seed: int, alpha: float) -> dict:
    """OOD error vs l_ts for each S1 (spec L6, E1), streams as ``refimpl.li2024.checks.ood.ood_curves``."""

    return {float(s): li_error_curve(params, tcfg, with_ood(inst, S1=s), lengths, n, seed=seed, tasks="ood",
                                     alpha=alpha, key=14) for s in S1s}


def li_attention_trajectory(run: Trajectory, tcfg, inst, n: int, *, l: int | None = None,
                            alpha: float | None = None) -> dict:
    """Per snapshot of ``run`` (``train_li`` with ``snapshot_every``): the attention mass from the
    query to same-pattern and "other" contexts, per layer and head, on ``n`` fixed unseen-task
    prompts (l_ts, α' by default; stream ``prompt_rng(seed, 170, 7)``), and the error.
    Returns ``step`` (S,), ``same`` / ``other`` (S, L, H), ``error`` (S,), ``uniform_same``:
    the same-pattern mass of uniform causal attention, mean over prompts of (#same)/(l + 1)."""

    d = inst.cfg
    l = d.l_test if l is None else l
    alpha = d.alpha_test if alpha is None else alpha
    if not run.snapshots:
        raise ValueError("li_attention_trajectory needs parameter snapshots: train_li with snapshot_every=k")
    batch = sample_batch(inst, n, prompt_rng(run.seed, 170, 7), tasks="unseen", l=l, alpha=alpha)
    steps = sorted(run.snapshots)
    same, other, err = [], [], []
    for s in steps:
        r = li_eval(run.snapshots[s], tcfg, batch)
        same.append(r["attn_same"])
        other.append(r["attn_other"])
        err.append(r["error"])
    roles = li_token_roles(batch)
    return {"step": np.array(steps), "same": np.array(same), "other": np.array(other), "error": np.array(err),
            "uniform_same": float(np.mean(roles["same"].sum(axis=1) / (l + 1))), "l": l, "alpha": alpha,
            "seed": run.seed}
