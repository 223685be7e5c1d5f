"""Training of spec Y9: gradient descent on the closed-form loss Y7 with (η_Q, η_w = γ² η_Q) — the
theory — and Adam on Y7 or on minibatches of sampled prompts — the paper's experiments (Adam,
lr 1e−4, batch 256).

:func:`train` is the contract's entry point (``cfg.optimizer`` and ``cfg.loss`` choose the run);
:func:`run_gd` and :func:`run_adam` are the same loop from given parameters and dictionary. Adam
is :class:`refimpl.core.optim.Adam` (torch's form; ``backend="numba"`` runs its fused kernel,
bit-equal to its NumPy path). Every run returns the shared
:class:`refimpl.core.trajectory.Trajectory`:

- ``history``: ``step``, ``loss`` (the optimised loss before each update: Y7, or the minibatch loss);
- ``records`` every ``record_every`` steps and after the last step: ``step``, ``loss``, ``excess``
  (L − L* of Y7 computed as (1/2K)Σ‖Z̄(â_k − a_k)‖², free of the cancellation in L − L*);
- ``extra["L_star"]``; ``data``: the dictionary {V_all, Z_all, N, tau}.

A non-finite loss or gradient raises :class:`refimpl.core.errors.NonFiniteError` naming the step
and the tensor, on both backends. How fast each backend is: ``refimpl bench``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from tqdm.auto import tqdm

from refimpl.core.arrays import check_choice
from refimpl.core.errors import NonFiniteError, check_finite
from refimpl.core.optim import Adam
from refimpl.core.rng import make_rng, spawn
from refimpl.core.trajectory import Trajectory
from refimpl.yang2024.data import make_data, sample_prompts
from refimpl.yang2024.model import BACKENDS, LOSSES, check_batch, evaluate, init_params
from refimpl.yang2024.population import population


def _pos(name, x):
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not (np.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    return float(x)


def _int(name, x, lo):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < lo:
        raise ValueError(f"{name} must be an int ≥ {lo}, got {x!r}")
    return int(x)


def _run(params, batch, steps: int, update, *, data: str, batch_size: int, n_train: int, rng, backend: str,
         record_every: int, callback, progress, config, seed, desc: str) -> Trajectory:
    """The one loop: evaluate, record, check, update (``update(t, p, grads)`` in place)."""
    check_choice("backend", backend, BACKENDS)
    check_choice("data", data, LOSSES)
    steps, record_every = _int("steps", steps, 0), _int("record_every", record_every, 1)
    if not isinstance(batch, Mapping) or not {"V_all", "Z_all", "N", "tau"} <= set(batch):
        raise ValueError("batch must be the dictionary {V_all (d, K), Z_all (m, K), N, tau} (make_data)")
    p, b = check_batch(params, batch, ("Z_all",), why="training")
    p = {k: np.array(v, dtype=np.float64, copy=True) for k, v in p.items()}
    N = b["N"]
    pop = population(b["Z_all"], N, float(b["tau"]))  # spec Y7 constants (checks Z_all, tau)
    base = {"V_all": np.asarray(b["V_all"], dtype=np.float64), "N": N}
    if data == "sample":
        batch_size, n_train = _int("batch_size", batch_size, 1), _int("n_train", n_train, 1)
        rng = make_rng(rng)
        pool = sample_prompts(b["Z_all"], N, float(b["tau"]), n_train, rng, keep_eps=False)  # spec Y1, Y3
    hist_loss = np.empty(steps)
    rec = {"step": [], "loss": [], "excess": []}
    t0 = time.perf_counter()
    bar = tqdm(total=steps, desc=desc, disable=(None if progress is None else not progress), leave=False)
    try:
        for t in range(steps + 1):
            record = t % record_every == 0 or t == steps
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow raises NonFiniteError below
                if data == "sample":
                    idx = rng.integers(0, n_train, size=batch_size)  # minibatch with replacement from the pool
                    val, g, _ = evaluate(p, {**base, "y": pool["y"][idx], "y_all": pool["y_all"][idx]}, "sample",
                                         backend)
                    if record:
                        aux = evaluate(p, base, "population", backend, pop)[2]
                else:
                    val, g, aux = evaluate(p, base, "population", backend, pop)
            if not np.isfinite(val):
                raise NonFiniteError(f"loss ({data})", t, val)
            check_finite("grads", g, step=t)
            if record:
                rec["step"].append(t)
                rec["loss"].append(val)
                rec["excess"].append(aux["excess"])  # (1/2K)Σ‖Z̄(â_k − a_k)‖², exact below the round-off of L
                if callback is not None:
                    callback(t, p)
            if t == steps:
                break
            hist_loss[t] = val
            with np.errstate(over="ignore", invalid="ignore"):
                update(t, p, g)
            bar.update(1)
    finally:
        bar.close()
    return Trajectory(
        model="yang2024", config=config, seed=seed, params=p,
        history={"step": np.arange(steps), "loss": hist_loss},
        records={"step": np.array(rec["step"]), "loss": np.array(rec["loss"]), "excess": np.array(rec["excess"])},
        backend=backend, wall_s=time.perf_counter() - t0,
        data={k: batch[k] for k in ("V_all", "Z_all", "N", "tau")}, extra={"L_star": pop.L_star},
    )


def run_gd(params, batch, eta_Q: float, gamma: float = 1.0, steps: int = 1000, *, data: str = "population",
           batch_size: int = 256, n_train: int = 10000, seed=0, backend: str = "numpy", record_every: int = 1,
           callback=None, progress: bool | None = False) -> Trajectory:
    """GD: Q ← Q − η_Q ∇_Q L, w ← w − γ²η_Q ∇_w L (spec Y9, eq. 16) on the closed form L(θ) of Y7
    (``data="population"``, the theory) or on minibatches of ``batch_size`` prompts drawn with
    replacement from a pool of ``n_train`` sampled tasks (``data="sample"``, drawn from ``seed``).

    ``batch``: the dictionary {V_all, Z_all, N, tau}. ``callback(t, params)`` runs at each record.
    """
    eta_Q, gamma = _pos("eta_Q", eta_Q), _pos("gamma", gamma)
    eta_w = gamma ** 2 * eta_Q  # spec Y9

    def update(t, p, g):
        p["Q"] -= eta_Q * g["Q"]  # spec Y9
        p["w"] -= eta_w * g["w"]  # spec Y9: η_w = γ² η_Q

    config = {"optimizer": "gd", "eta_Q": eta_Q, "gamma": gamma, "steps": steps, "loss": data}
    return _run(params, batch, steps, update, data=data, batch_size=batch_size, n_train=n_train, rng=seed,
                backend=backend, record_every=record_every, callback=callback, progress=progress, config=config,
                seed=seed if data == "sample" and not isinstance(seed, np.random.Generator) else None,
                desc="yang2024 GD")


def run_adam(params, batch, lr: float = 1e-4, steps: int = 1000, *, data: str = "population",
             batch_size: int = 256, n_train: int = 10000, seed=0, betas=(0.9, 0.999), adam_eps: float = 1e-8,
             backend: str = "numpy", record_every: int = 1, callback=None, progress: bool | None = False) -> Trajectory:
    """Adam (spec Y9 [P]; :class:`refimpl.core.optim.Adam`, torch's form, on ``backend``) on the
    closed form (``data="population"``) or on minibatches of ``batch_size`` prompts drawn with
    replacement from a fixed pool of ``n_train`` sampled tasks (``data="sample"``, spec Y1,
    λ ~ N(0, I); pool and minibatches drawn from ``seed``). ``records["loss"]`` is the optimised
    loss, ``records["excess"]`` always L − L* of Y7."""
    lr = _pos("lr", lr)
    check_choice("backend", backend, BACKENDS)
    opt = Adam(lr, betas, adam_eps, backend="numba" if backend == "numba_parallel" else backend)

    def update(t, p, g):
        opt.step(p, g)

    config = {"optimizer": "adam", "lr": lr, "betas": tuple(betas), "eps": adam_eps, "steps": steps, "loss": data,
              "batch_size": batch_size, "n_train": n_train}
    return _run(params, batch, steps, update, data=data, batch_size=batch_size, n_train=n_train, rng=seed,
                backend=backend, record_every=record_every, callback=callback, progress=progress, config=config,
                seed=seed if data == "sample" and not isinstance(seed, np.random.Generator) else None,
                desc="yang2024 Adam")


def train(cfg, seed, *, backend: str = "numpy", progress: bool | None = None, record_every: int | None = None,
          callback=None) -> Trajectory:
    """Train the Y5 model as ``cfg`` says (spec Y9).

    ``cfg.optimizer`` ``"gd"`` (Q ← Q − η_Q ∇_Q L, w ← w − γ²η_Q ∇_w L, the theory) or ``"adam"``
    (lr ``cfg.lr``, the paper's experiments) on ``cfg.loss`` (``"population"``: Y7;
    ``"sample"``: minibatches of ``cfg.batch_size`` drawn with replacement from a pool of
    ``cfg.n_train`` sampled prompts) for ``cfg.steps`` steps, in float64.

    Parameters
    ----------
    cfg : refimpl.yang2024.config.Config
        The run.
    seed : int or numpy.random.Generator
        Streams (as the validation modules draw them): the dictionary from ``seed``, the
        parameters (spec Y6) from ``seed + 1``, the prompt pool and minibatches from ``seed + 2``
        (a Generator is split into three).
    backend : {"numpy", "numba", "numba_parallel"}
        The gradient backend (and Adam's fused kernel with ``"numba"`` or ``"numba_parallel"``).
    progress : bool, optional
        ``None`` shows a progress bar only on a terminal; ``True``/``False`` force it on/off.
    record_every : int, optional
        Steps between records (default ``cfg.record_every``; the last step is always recorded).
    callback : callable, optional
        ``callback(t, params)`` at each record.

    Returns
    -------
    refimpl.core.trajectory.Trajectory
        ``model="yang2024"``, ``config=cfg``; ``params`` the final ``Q`` (H, d, d), ``w`` (H, K);
        ``history``: ``step``, ``loss`` (T,) (the optimised loss before each update, T = steps);
        ``records`` (R records): ``step``, ``loss``, ``excess`` (R,), ``excess`` being L − L* of
        Y7 whatever the optimised loss; ``extra["L_star"]`` the optimal loss L*; ``data`` the
        dictionary (:func:`refimpl.yang2024.data.make_data`).

    Raises
    ------
    refimpl.core.errors.NonFiniteError
        When the loss or a gradient is not finite (naming the step and the tensor).
    """
    if isinstance(seed, np.random.Generator):
        s_data, s_init, s_batch = spawn(seed, 3)
    else:
        make_rng(seed)  # validates the seed
        s_data, s_init, s_batch = seed, seed + 1, seed + 2
    data = make_data(cfg, s_data)  # spec Y2
    params = init_params(cfg, s_init)  # spec Y6
    every = cfg.record_every if record_every is None else record_every
    kw = dict(data=cfg.loss, batch_size=cfg.batch_size, n_train=cfg.n_train, seed=s_batch, backend=backend,
              record_every=every, callback=callback, progress=progress)
    if cfg.optimizer == "gd":
        traj = run_gd(params, data, cfg.eta_Q, cfg.gamma, cfg.steps, **kw)
    else:
        traj = run_adam(params, data, cfg.lr, cfg.steps, **kw)
    traj.config = cfg
    traj.seed = None if isinstance(seed, np.random.Generator) else int(seed)
    return traj
