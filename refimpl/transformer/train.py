"""Training the spec T transformer: Adam on minibatches, for a number of steps or a wall-clock
budget, returning the shared :class:`refimpl.core.trajectory.Trajectory`.

:func:`train_adam` runs Adam on minibatches from a ``batch_fn`` for a number of steps or for a
wall-clock budget. Only the training steps (minibatch, forward, backward, Adam) run on the clock;
evaluations at the record points are excluded from it. Every record stores the step, the training
time so far and the metrics of ``eval_fn``, so a budget run can be plotted against time and
against iterations. BLAS threads are pinned (``threads``, default 1) so that runs of different
sizes compete for the same resources; wall-clock results are not bit-reproducible, step-count
results are (same seed → same numbers). :func:`train` is the contract's ``train``: ``train_adam``
on the synthetic teacher task of ``refimpl.transformer.data``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from refimpl.core.arrays import check_choice, is_int
from refimpl.core.errors import check_finite
from refimpl.core.optim import Adam, lr_at
from refimpl.core.trajectory import Trajectory
from refimpl.transformer.data import make_data, sample_batch, streams
from refimpl.transformer.model import BACKENDS, init_params, loss_and_grads, loss_from_output, predict


def train_adam(params: dict, cfg, batch_fn: Callable[[int], dict], *, lr: float, steps: int | None = None,
               budget_s: float | None = None, eval_fn: Callable[[dict], dict] | None = None,
               eval_every: int | None = None, eval_every_s: float | None = None, snapshot_every: int | None = None,
               threads: int | None = 1, progress: bool | None = None, desc: str = "transformer Adam",
               max_steps: int = 10 ** 9, schedule: str = "constant", warmup: int = 0,
               seed: int | None = None, backend: str = "numpy") -> Trajectory:
    """Adam (β = (0.9, 0.999), ε = 1e−8) on ``loss_and_grads(params, batch_fn(step), cfg, backend)``
    (``backend``: one of ``BACKENDS``; the inputs are validated at the first step only).

    Stop after ``steps`` steps, or once the training time reaches ``budget_s`` seconds (exactly
    one of the two); ``max_steps`` caps a budget run. ``params`` is updated in place. Returns a
    :class:`Trajectory` (model ``"transformer"``, ``config`` = cfg, ``seed`` as given, ``params``
    the trained dict itself):

    - ``history``: per step ``step``, ``loss`` (the minibatch loss before the step's update),
      ``lr`` (the learning rate used) and ``step_time`` (its duration in seconds);
    - ``records`` (step 0, every ``eval_every`` steps or every ``eval_every_s`` seconds of training
      time, and the end): ``step``, ``time`` (training seconds, evaluations excluded) and every
      metric of ``eval_fn(params)``, stacked along the first axis;
    - ``snapshots``: {step: params copy} every ``snapshot_every`` steps and at the end;
    - ``extra``: ``train_time`` (seconds on the clock), ``threads``, ``budget_s``, ``schedule``;
      ``wall_s``: the whole run, evaluations included.

    A non-finite loss or gradient raises :class:`refimpl.core.errors.NonFiniteError` naming the
    step and the tensor (before the step's update).

    Learning rate (:func:`lr_at`, recorded per step in ``lr``): a linear warm-up over ``warmup``
    steps, then ``lr`` (``schedule="constant"``) or a cosine decay to 0 at ``steps``
    (``"cosine"``, GPT-2 practice; needs ``steps``)."""
    if (steps is None) == (budget_s is None):
        raise ValueError("give exactly one of steps (an int ≥ 0) and budget_s (seconds > 0)")
    if steps is not None and not (is_int(steps) and steps >= 0):
        raise ValueError(f"steps must be an int ≥ 0, got {steps!r}")
    if budget_s is not None and not (np.isfinite(budget_s) and budget_s > 0):
        raise ValueError(f"budget_s must be a finite number > 0, got {budget_s!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if eval_every is not None and not (is_int(eval_every) and eval_every >= 1):
        raise ValueError(f"eval_every must be None or an int ≥ 1, got {eval_every!r}")
    if eval_every_s is not None and not (np.isfinite(eval_every_s) and eval_every_s > 0):
        raise ValueError(f"eval_every_s must be None or a number > 0, got {eval_every_s!r}")
    if snapshot_every is not None and not (is_int(snapshot_every) and snapshot_every >= 1):
        raise ValueError(f"snapshot_every must be None or an int ≥ 1, got {snapshot_every!r}")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be one of ['constant', 'cosine'], got {schedule!r}")
    if schedule == "cosine" and steps is None:
        raise ValueError("schedule 'cosine' needs steps (a budget run has no known length)")
    if not (is_int(warmup) and warmup >= 0):
        raise ValueError(f"warmup must be an int ≥ 0, got {warmup!r}")
    check_choice("backend", backend, BACKENDS)
    opt = Adam(lr, backend=backend)  # core.optim's backends are "numpy" and "numba", bit-identical

    rec: dict[str, list] = {"step": [], "time": []}
    losses, step_times, lrs, snapshots = [], [], [], {}
    clock = 0.0
    next_eval_s = 0.0
    wall0 = time.perf_counter()

    def record(step):
        rec["step"].append(step)
        rec["time"].append(clock)
        if eval_fn is not None:
            for k, v in eval_fn(params).items():
                rec.setdefault(k, []).append(v)

    bar = tqdm(total=steps, desc=desc, disable=(None if progress is None else not progress), leave=False)
    with threadpool_limits(limits=threads), bar:
        step = 0
        while True:
            done = (steps is not None and step >= steps) or (budget_s is not None and clock >= budget_s) \
                or step >= max_steps
            if snapshot_every is not None and (step % snapshot_every == 0 or done):
                snapshots[step] = {k: v.copy() for k, v in params.items()}
            due = (step == 0 or (eval_every is not None and step % eval_every == 0)
                   or (eval_every_s is not None and clock >= next_eval_s))
            if done or due:
                if not rec["step"] or rec["step"][-1] != step:
                    record(step)
                if eval_every_s is not None:
                    while next_eval_s <= clock:
                        next_eval_s += eval_every_s
            if done:
                break
            t0 = time.perf_counter()
            batch = batch_fn(step)
            loss, grads = loss_and_grads(params, batch, cfg, backend, check=(step == 0))
            hint = f"after {step} Adam steps at lr {opt.lr:g} (a smaller lr, or check the minibatch)"
            check_finite("loss", loss, step=step, hint=hint)
            check_finite("grads", grads, step=step, hint=hint)
            opt.lr = lr_at(step, lr, steps=steps, warmup=warmup, schedule=schedule)
            lrs.append(opt.lr)
            opt.step(params, grads)
            dt = time.perf_counter() - t0
            clock += dt
            losses.append(float(loss))
            step_times.append(dt)
            step += 1
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss:.3g}", t=f"{clock:.0f}s")
    history = {"step": np.arange(step), "loss": np.asarray(losses), "lr": np.asarray(lrs),
               "step_time": np.asarray(step_times)}
    return Trajectory(model="transformer", config=cfg, seed=seed, params=params, history=history,
                      records={k: np.asarray(v) for k, v in rec.items()}, backend=backend,
                      wall_s=time.perf_counter() - wall0, snapshots=snapshots,
                      extra={"train_time": clock, "threads": threads, "budget_s": budget_s, "schedule": schedule})


def train(cfg, seed: int, *, backend: str = "numpy", steps: int | None = 200, lr: float = 1e-2,
          batch_size: int = 16, T: int | None = None, budget_s: float | None = None, eval_every: int | None = None,
          n_eval: int = 256, snapshot_every: int | None = None, schedule: str = "constant", warmup: int = 0,
          dtype=np.float64, threads: int | None = 1, progress: bool | None = None) -> Trajectory:
    """Train ``init_params(cfg, seed, dtype)`` by Adam on the synthetic teacher task [C] of
    ``make_data(cfg, seed, T=T)`` (``refimpl.transformer.data``).

    Parameters
    ----------
    cfg : refimpl.transformer.config.TransformerConfig
        The architecture and loss.
    seed : int
        ≥ 0; draws the initialisation, the teacher, the minibatches (``batches`` stream) and the
        evaluation sequences (``eval`` stream).
    backend : str
        One of ``BACKENDS`` of :mod:`refimpl.transformer.model`: ``"numpy"`` (the readable
        reference) or ``"numba"`` (fused kernels, equal up to rounding).
    steps : int or None
        Adam steps; ``None`` trains for ``budget_s`` seconds instead.
    lr : float
        Adam's learning rate (β = (0.9, 0.999), ε = 1e−8).
    batch_size : int
        Fresh sequences per step.
    T : int, optional
        Sequence length (default min(cfg.max_T, 8)).
    budget_s : float, optional
        Training seconds (with ``steps=None``).
    eval_every : int, optional
        Steps between evaluations (default steps / 10).
    n_eval : int
        Fixed evaluation sequences.
    snapshot_every : int, optional
        Keep a copy of the parameters every that many steps (and at the end).
    schedule : {"constant", "cosine"}
        Learning-rate schedule after a linear warm-up of ``warmup`` steps (:func:`train_adam`).
    warmup : int
        Warm-up steps.
    dtype : {numpy.float64, numpy.float32}
        The parameters' dtype.
    threads : int or None
        BLAS threads during training (default 1; ``None`` leaves them).
    progress : bool, optional
        ``None`` shows a progress bar only on a terminal.

    Returns
    -------
    refimpl.core.trajectory.Trajectory
        As :func:`train_adam` returns it (``history``: ``step``, ``loss``, ``lr``, ``step_time``
        per step), with ``seed``, ``data`` the :class:`refimpl.transformer.data.TeacherTask`, and
        ``records``: ``step``, ``time`` and ``eval_loss``, the configured loss on the ``n_eval``
        sequences at step 0, every ``eval_every`` steps and at the end.

    Raises
    ------
    refimpl.core.errors.NonFiniteError
        When the loss or a gradient is not finite (naming the step and the tensor).
    ValueError
        For a bad seed, batch size, ``n_eval``, or steps/budget combination.
    """
    check_choice("backend", backend, BACKENDS)
    if not (is_int(seed) and seed >= 0):
        raise ValueError(f"seed must be an int ≥ 0 (the run records it), got {seed!r}")
    if not (is_int(batch_size) and batch_size >= 1):
        raise ValueError(f"batch_size must be an int ≥ 1, got {batch_size!r}")
    if not (is_int(n_eval) and n_eval >= 1):
        raise ValueError(f"n_eval must be an int ≥ 1, got {n_eval!r}")
    params = init_params(cfg, seed, dtype)
    data = make_data(cfg, seed, T=T)
    rngs = streams(seed)
    eval_batch = sample_batch(data, n_eval, rngs["eval"])
    eval_target = eval_batch["target"].astype(params["read_in.W"].dtype)

    def batch_fn(step):
        return sample_batch(data, batch_size, rngs["batches"])

    def eval_fn(p):
        return {"eval_loss": loss_from_output(predict(p, eval_batch, cfg, check=False), eval_target, cfg)[0]}

    if eval_every is None and steps:
        eval_every = max(1, steps // 10)
    traj = train_adam(params, cfg, batch_fn, lr=lr, steps=steps, budget_s=budget_s, eval_fn=eval_fn,
                      eval_every=eval_every, snapshot_every=snapshot_every, threads=threads, progress=progress,
                      desc="transformer (teacher task)", schedule=schedule, warmup=warmup, seed=seed,
                      backend=backend)
    traj.data = data
    return traj
