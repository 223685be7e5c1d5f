"""Training the spec T transformer: Adam (or SGD) on minibatches, for a number of steps or a
wall-clock budget.

:func:`train_adam` runs Adam on minibatches from a ``batch_fn`` for a number of steps or for a
wall-clock budget. Only the training steps (minibatch, forward, backward, Adam) run on the clock;
evaluations at the record points are excluded from it. Every record stores the step, the training
time so far and the metrics of ``eval_fn``, so a budget run can be plotted against time and
against iterations. BLAS threads are pinned (``threads``, default 1) so that runs of different
sizes compete for the same resources; wall-clock results are not bit-reproducible, step-count
results are (same seed → same numbers).
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from refimpl.core.arrays import is_int
from refimpl.core.optim import Adam, lr_at
from refimpl.transformer.model import loss_and_grads


def train_adam(params: dict, cfg, batch_fn: Callable[[int], dict], *, lr: float, steps: int | None = None,
               budget_s: float | None = None, eval_fn: Callable[[dict], dict] | None = None,
               eval_every: int | None = None, eval_every_s: float | None = None, snapshot_every: int | None = None,
               threads: int | None = 1, progress: bool | None = None, desc: str = "transformer Adam",
               max_steps: int = 10 ** 9, schedule: str = "constant", warmup: int = 0) -> dict:
    """Adam (β = (0.9, 0.999), ε = 1e−8) on ``loss_and_grads(params, batch_fn(step), cfg)``.

    Stop after ``steps`` steps, or once the training time reaches ``budget_s`` seconds (exactly
    one of the two). Records (step 0, every ``eval_every`` steps or every ``eval_every_s`` seconds
    of training time, and the end): ``step``, ``time`` (training seconds, evaluations excluded) and
    every metric of ``eval_fn(params)``. ``loss`` holds the minibatch loss of every step (before
    its update) and ``step_time`` its duration. ``params`` is updated in place and returned.
    A non-finite loss stops training and sets ``diverged``; ``max_steps`` caps a budget run.

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
    opt = Adam(lr)

    rec: dict[str, list] = {"step": [], "time": []}
    losses, step_times, lrs, snapshots = [], [], [], {}
    clock = 0.0
    next_eval_s = 0.0
    diverged = False

    def record(step):
        rec["step"].append(step)
        rec["time"].append(clock)
        if eval_fn is not None:
            for k, v in eval_fn(params).items():
                rec.setdefault(k, []).append(v)

    total = steps if steps is not None else None
    bar = tqdm(total=total, desc=desc, disable=(None if progress is None else not progress), leave=False)
    with threadpool_limits(limits=threads):
        step = 0
        while True:
            done = (steps is not None and step >= steps) or (budget_s is not None and clock >= budget_s) \
                or step >= max_steps or diverged
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
            loss, grads = loss_and_grads(params, batch, cfg, check=(step == 0))
            if not np.isfinite(loss):
                diverged = True
            else:
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
    bar.close()
    out = {k: np.asarray(v) for k, v in rec.items()}
    out.update(loss=np.asarray(losses), step_time=np.asarray(step_times), lr=np.asarray(lrs), steps_done=step,
               train_time=clock, diverged=diverged, params=params, snapshots=snapshots, threads=threads)
    return out


def train_steps(params: dict, cfg, batch_fn, steps: int, opt, *, progress: bool = False) -> list[float]:
    """Run ``steps`` optimiser steps on ``batch_fn(step) -> {"X", "target"}``; returns the loss of
    each step (measured before its update). ``params`` is updated in place."""
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an int ≥ 0, got {steps!r}")
    it = range(steps)
    if progress:
        it = tqdm(it, desc="train", disable=None)
    losses = []
    for s in it:
        loss, grads = loss_and_grads(params, batch_fn(s), cfg, check=(s == 0))
        opt.step(params, grads)
        losses.append(loss)
    return losses
