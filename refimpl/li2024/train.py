"""SGD trainer of spec L11.

Each step draws B fresh prompts (task ~ Unif T_tr, length l_tr, fraction α) and updates W_Q, W_K,
W_V, W_O (and a, if ``train_a``) simultaneously from the same Ψ^(t): W ← W − η (1/B) Σ_n ∇_W ℓ
(:class:`refimpl.core.optim.SGD`). Every ``eval_every`` steps, fixed evaluation batches (drawn once)
record the classification error, the hinge loss and the attention mass on same-pattern contexts
(spec L16; :func:`refimpl.li2024.metrics.evaluate`): "train" (tasks T_tr at the training α, l_tr),
"unseen" (T \\ T_tr) and "ood" (T') at the test α', l_ts.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from refimpl.core.arrays import check_choice, is_int
from refimpl.core.errors import check_finite
from refimpl.core.optim import SGD
from refimpl.core.trajectory import Trajectory
from refimpl.li2024.config import Config
from refimpl.li2024.data import Instance, make_instance, sample_batch, streams
from refimpl.li2024.metrics import evaluate
from refimpl.li2024.model import BACKENDS, _check_cfg, _loss_grads, check_params, init_params

EVAL_SETS = ("train", "unseen", "ood")


def train(
    cfg: Config,
    seed: int = 0,
    *,
    backend: str = "numba",
    data: Instance | None = None,
    params: dict | None = None,
    progress: bool | None = None,
    desc: str = "li2024 SGD",
    snapshot_every: int | None = None,
    stop_when: tuple | None = None,
) -> Trajectory:
    """Train by SGD (spec L11): each step draws B fresh prompts from T_tr and updates every trained
    parameter from the same Ψ^(t), W ← W − η (1/B) Σ_n ∇_W ℓ_n.

    Parameters
    ----------
    cfg : refimpl.li2024.config.Config
        Data, model and training settings (``cfg.train``: ``steps``, ``batch_size`` B, ``lr`` η,
        ``eval_every``, ``n_eval``).
    seed : int or numpy.random.Generator
        Drives the instance, the initialisation, the minibatches and the evaluation batches (the
        streams of :func:`refimpl.li2024.data.streams`).
    backend : {"numba", "numpy", "numba_parallel"}
        The gradient backend (:func:`refimpl.li2024.model.loss_and_grads`).
    data : Instance, optional
        Replaces the drawn instance (:func:`refimpl.li2024.data.make_data`).
    params : dict of numpy.ndarray, optional
        Replaces the initial Ψ (:func:`refimpl.li2024.model.init_params`); copied, not modified.
    progress : bool, optional
        ``None`` shows a progress bar only on a terminal; ``True``/``False`` force it on/off.
    desc : str
        The progress bar's label.
    snapshot_every : int, optional
        Keep a copy of Ψ every that many steps (and at the end) in ``snapshots``.
    stop_when : tuple, optional
        ``(set, metric, threshold)``, e.g. ``("train", "hinge", 0.05)``: stop at the first
        evaluation where that metric is ≤ threshold (``stopped_at``; the curves end there).

    Returns
    -------
    refimpl.core.trajectory.Trajectory
        ``model="li2024"``; ``params`` the final Ψ; ``history`` per SGD step (T = steps): ``step``,
        ``loss`` and ``error`` of the step's batch (before the update), each (T,); ``records`` the
        evaluations every ``eval_every`` steps and at the end (R of them): ``step`` (R,) and
        ``<set>/error``, ``<set>/hinge``, ``<set>/attn_same`` (R,) for each non-empty set of
        :data:`EVAL_SETS` (``train`` at the training α and l_tr, ``unseen`` and ``ood`` at α' and
        l_ts, ``n_eval`` prompts each, drawn once); ``data`` the :class:`Instance`;
        ``snapshots``, ``stopped_at``, ``wall_s``, ``backend``.

    Raises
    ------
    refimpl.core.errors.NonFiniteError
        When the loss, an output or a gradient is not finite (naming the step and the tensor,
        before that step's update), on either backend.
    ValueError
        For bad ``backend``, ``snapshot_every`` or ``stop_when``.
    """
    if snapshot_every is not None and not (isinstance(snapshot_every, int) and snapshot_every >= 1):
        raise ValueError(f"snapshot_every must be None or an int ≥ 1, got {snapshot_every!r}")
    if stop_when is not None:
        if not (len(stop_when) == 3 and stop_when[0] in EVAL_SETS and stop_when[1] in ("error", "hinge", "attn_same")):
            raise ValueError(f"stop_when must be (set in {EVAL_SETS}, metric in (error, hinge, attn_same), "
                             f"threshold), got {stop_when!r}")
    _check_cfg(cfg)
    check_choice("backend", backend, BACKENDS)
    st = streams(seed)  # spawned in the order of data.STREAMS
    inst_rng, init_rng, data_rng, eval_rng = st["instance"], st["init"], st["data"], st["eval"]
    inst = data if data is not None else make_instance(cfg.data, inst_rng)
    if params is None:
        params = init_params(cfg, init_rng)
    params = {k: np.array(v, copy=True) for k, v in check_params(params).items()}
    tc = cfg.train
    opt = SGD(tc.lr)  # spec L11: W ← W − η ∇W, every trained parameter from the same Ψ^(t)
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

    k_eval = 0
    snapshots = {}

    def record(step) -> bool:
        """Evaluate at ``step``; True when the stop condition is met."""
        nonlocal k_eval
        evals["step"][k_eval] = step
        for name, eb in eval_batches.items():
            res = evaluate(params, eb, cfg)
            for metric, value in res.items():
                evals[f"{name}/{metric}"][k_eval] = value
        k_eval += 1
        return stop_when is not None and evals[f"{stop_when[0]}/{stop_when[1]}"][k_eval - 1] <= stop_when[2]

    hint = f"training diverged; lower lr (now {tc.lr})"
    t0 = time.perf_counter()
    stopped_at = None
    bar = tqdm(total=tc.steps, desc=desc, disable=(None if progress is None else not progress), leave=False)
    try:
        for step in range(tc.steps):
            if snapshot_every is not None and step % snapshot_every == 0:
                snapshots[step] = {k: v.copy() for k, v in params.items()}
            if step % tc.eval_every == 0 and record(step):
                stopped_at = step
                break
            batch = sample_batch(inst, tc.batch_size, data_rng, tasks="train")
            loss, grads, F, _, _ = _loss_grads(params, batch["P"], batch["z"], cfg, backend, None)
            # the step where the loss, an output or a gradient first becomes non-finite raises
            check_finite("loss", loss, step=step, hint=hint)
            check_finite("F", F, step=step, hint=hint)
            check_finite("grads", grads, step=step, hint=hint)
            hist["loss"][step] = loss
            hist["error"][step] = np.mean(batch["z"] * F <= 0)
            opt.step(params, grads)  # spec L11: simultaneous update from Ψ^(t) (grads: the trained keys)
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss:.3g}")
    finally:
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
    return Trajectory(model="li2024", config=cfg, seed=int(seed) if is_int(seed) else None, params=params,
                      history=hist, records=evals, backend=backend, wall_s=wall, snapshots=snapshots,
                      stopped_at=stopped_at, data=inst)
