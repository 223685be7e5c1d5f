"""SGD trainer of spec L11 and the evaluation metrics used by the checks and figures.

Each step draws B fresh prompts (task ~ Unif T_tr, length l_tr, fraction α) and updates W_Q, W_K,
W_V, W_O (and a, if ``train_a``) simultaneously from the same Ψ^(t): W ← W − η (1/B) Σ_n ∇_W ℓ.
Every ``eval_every`` steps, fixed evaluation batches (drawn once) record the classification error,
the hinge loss and the attention mass on same-pattern contexts (spec L16): "train" (tasks T_tr at the
training α, l_tr), "unseen" (T \\ T_tr) and "ood" (T') at the test α', l_ts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from refimpl.core.rng import make_rng  # noqa: F401
from refimpl.li2024.config import Config
from refimpl.li2024.data import Instance, make_instance, sample_batch, streams
from refimpl.li2024.model import PARAM_NAMES, check_params, loss_and_grads, predict

EVAL_SETS = ("train", "unseen", "ood")


@dataclass
class TrainResult:
    """Trained parameters, the per-step training curve and the periodic evaluations."""

    config: Config
    seed: int
    instance: Instance
    params: dict
    history: dict = field(default_factory=dict)  # step, loss, error: the SGD batch, before the update
    evals: dict = field(default_factory=dict)  # step, <set>/error, <set>/hinge, <set>/attn_same
    wall_s: float = 0.0
    backend: str = "numba"
    snapshots: dict = field(default_factory=dict)  # step -> params (with ``snapshot_every``)
    stopped_at: int | None = None  # the evaluation step that met ``stop_when``, if any


def attention_same_pattern(attn: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Σ_{i ≤ l: pattern(x_i) = pattern(x_q)} attn_i per prompt (spec L16). attn (B, J), pattern (B, l+1)."""
    l = pattern.shape[1] - 1
    same = pattern[:, :l] == pattern[:, l:]  # (B, l)
    return np.sum(attn[:, :l] * same, axis=1)  # (B,)


def evaluate(params, batch, *, attend_to_query=False, relu_at_zero=0.0, keep=None) -> dict:
    """Classification error (z F ≤ 0), mean hinge loss and mean same-pattern attention mass on a batch."""
    F, attn = predict(params, batch["P"], attend_to_query=attend_to_query, relu_at_zero=relu_at_zero, keep=keep)
    z = batch["z"]
    out = {
        "error": float(np.mean(z * F <= 0)),
        "hinge": float(np.mean(np.maximum(0.0, 1.0 - z * F))),
    }
    if "pattern" in batch:
        out["attn_same"] = float(np.mean(attention_same_pattern(attn, batch["pattern"])))
    return out


def train(
    cfg: Config,
    seed: int = 0,
    *,
    backend: str = "numba",
    instance: Instance | None = None,
    params: dict | None = None,
    progress: bool | None = None,
    desc: str = "li2024 SGD",
    snapshot_every: int | None = None,
    stop_when: tuple | None = None,
) -> TrainResult:
    """Train by SGD (spec L11). ``seed`` drives the instance, the initialisation and the data.

    ``progress``: None shows a bar only on a terminal; True/False force it on/off.
    ``snapshot_every``: keep a copy of Ψ every that many steps (and at the end) in ``snapshots``.
    ``stop_when``: ``(set, metric, threshold)``, e.g. ``("train", "hinge", 0.05)``: stop at the first
    evaluation where that metric is ≤ threshold (``stopped_at``; the curves end there).
    """
    if snapshot_every is not None and not (isinstance(snapshot_every, int) and snapshot_every >= 1):
        raise ValueError(f"snapshot_every must be None or an int ≥ 1, got {snapshot_every!r}")
    if stop_when is not None:
        if not (len(stop_when) == 3 and stop_when[0] in EVAL_SETS and stop_when[1] in ("error", "hinge", "attn_same")):
            raise ValueError(f"stop_when must be (set in {EVAL_SETS}, metric in (error, hinge, attn_same), "
                             f"threshold), got {stop_when!r}")
    st = streams(seed)  # spawned in the order of data.STREAMS
    inst_rng, init_rng, data_rng, eval_rng = st["instance"], st["init"], st["data"], st["eval"]
    inst = instance if instance is not None else make_instance(cfg.data, inst_rng)
    if params is None:
        from refimpl.li2024.model import init_params

        params = init_params(cfg, init_rng)
    params = {k: np.array(v, copy=True) for k, v in check_params(params).items()}
    opts = cfg.model.options()
    tc = cfg.train
    sets = {"train": inst.tasks_train, "unseen": inst.tasks_unseen, "ood": inst.tasks_ood}
    eval_batches = {  # an empty set (every task a training task) is not evaluated
        name: sample_batch(inst, tc.n_eval, eval_rng, tasks=name) for name in EVAL_SETS if len(sets[name])
    }
    if stop_when is not None and stop_when[0] not in eval_batches:
        raise ValueError(f"stop_when refers to the evaluation set {stop_when[0]!r}, which is empty here")
    n_evals = tc.steps // tc.eval_every + 1 + (tc.steps % tc.eval_every != 0)
    evals = {"step": np.zeros(n_evals, dtype=np.int64)}
    for name in eval_batches:
        for metric in ("error", "hinge", "attn_same"):
            evals[f"{name}/{metric}"] = np.zeros(n_evals)
    hist = {"step": np.arange(tc.steps), "loss": np.zeros(tc.steps), "error": np.zeros(tc.steps)}
    trained = [k for k in PARAM_NAMES if k != "a" or opts["train_a"]]

    k_eval = 0
    snapshots = {}

    def record(step) -> bool:
        """Evaluate at ``step``; True when the stop condition is met."""
        nonlocal k_eval
        evals["step"][k_eval] = step
        for name, eb in eval_batches.items():
            res = evaluate(params, eb, attend_to_query=opts["attend_to_query"], relu_at_zero=opts["relu_at_zero"])
            for metric, value in res.items():
                evals[f"{name}/{metric}"][k_eval] = value
        k_eval += 1
        return stop_when is not None and evals[f"{stop_when[0]}/{stop_when[1]}"][k_eval - 1] <= stop_when[2]

    t0 = time.perf_counter()
    stopped_at = None
    bar = tqdm(total=tc.steps, desc=desc, disable=(None if progress is None else not progress), leave=False)
    for step in range(tc.steps):
        if snapshot_every is not None and step % snapshot_every == 0:
            snapshots[step] = {k: v.copy() for k, v in params.items()}
        if step % tc.eval_every == 0 and record(step):
            stopped_at = step
            break
        batch = sample_batch(inst, tc.batch_size, data_rng, tasks="train")
        loss, grads, aux = loss_and_grads(params, batch, backend, check=False, return_aux=True, **opts)
        hist["loss"][step] = loss
        hist["error"][step] = np.mean(batch["z"] * aux["F"] <= 0)
        for k in trained:  # spec L11: simultaneous update from Ψ^(t)
            params[k] -= tc.lr * grads[k]
        if not np.isfinite(loss):
            bar.close()
            raise FloatingPointError(f"training diverged at step {step} (loss {loss}); lower lr (now {tc.lr})")
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss:.3g}")
    bar.close()
    if stopped_at is None:
        if record(tc.steps):
            stopped_at = tc.steps
        if snapshot_every is not None:
            snapshots[tc.steps] = {k: v.copy() for k, v in params.items()}
    else:  # curves end at the stopping evaluation
        evals = {k: v[:k_eval] for k, v in evals.items()}
        hist = {k: v[:stopped_at] for k, v in hist.items()}
    wall = time.perf_counter() - t0
    return TrainResult(cfg, int(seed), inst, params, hist, evals, wall, backend, snapshots, stopped_at)
