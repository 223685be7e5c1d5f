"""Training for spec H: GD on the population loss (spec H5) through the reduced dynamics of
C = Vᵀ Q V (spec H7) at the configured population level (spec H8).

GD on Q from Q⁰ = 0 *is* GD on C (spec H7: the loss depends on Q only through C, and
∇_Q L = V (∇_C L) Vᵀ), so :func:`train` runs :func:`population.run_gd` and maps the result back
with Q = V C Vᵀ. The population loss is the same for both batch losses of ``cfg.loss`` (the E_w
loss is the w-average of the sample loss, spec H6).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from refimpl.core.arrays import check_choice
from refimpl.huang2023 import population as P
from refimpl.huang2023.config import Config
from refimpl.huang2023.data import data_from_rng, streams
from refimpl.huang2023.model import BACKENDS, init_params


def train(cfg: Config, seed, *, backend: str = "numpy", progress: bool | None = None, record=None,
          columns=None):
    """GD with step ``cfg.eta`` for ``cfg.steps`` steps on the population loss (spec H5, H7, H8).

    Runs the reduced dynamics of C = Vᵀ Q V (K, K) from C⁰ = 0 at the population level
    ``cfg.population`` and maps the result back with Q = V C Vᵀ (GD on Q from 0 is GD on C).

    Parameters
    ----------
    cfg : refimpl.huang2023.config.Config
        The run (``eta``, ``steps``, ``population``, ``M``, sizes and probabilities).
    seed : int or numpy.random.Generator
        Draws the features V (:func:`refimpl.huang2023.data.make_data`, first stream) and, for
        ``cfg.population="monte_carlo"``, the ``cfg.M`` count vectors (second stream).
    backend : {"numpy", "numba", "numba_parallel"}
        The NumPy loop or the fused kernel (the same numbers to ~1e−13). ``"numba_parallel"``
        runs the same single-threaded kernel as ``"numba"`` (the reduced dynamics is a K × K
        problem; only ``loss_and_grads`` on materialised prompts splits work over threads).
    progress : bool, optional
        A bar over the steps (NumPy backend; ``None``: only on a terminal).
    record : array_like of int, optional
        The steps to record (default every step 0..steps); the run stops at the last one.
    columns : sequence of int, optional
        Evolve only these query columns of C (exact: the columns evolve independently, spec H9).

    Returns
    -------
    refimpl.core.trajectory.Trajectory
        ``model="huang2023"``, ``config=cfg``; ``params`` ``{"Q": V C Vᵀ}`` (d, d) at the last
        recorded step; ``history``: ``step``, ``loss`` (T,), L before each update; ``records``
        at the R recorded steps: ``step`` (R,), ``L`` (R,), ``Lk`` (R, K) the per-query-feature
        losses, ``alpha`` (R, K, K) with ``alpha[t, k, m]`` = E_n[α_{k→m}], the expected
        attention from a query v_k to the tokens v_m, and ``C`` (R, K, K); ``data``
        ``{"features": Data, "population": Population}``; ``extra``: ``kind``, ``M``, ``eta``,
        ``columns`` and ``C`` at the last recorded step.

    Raises
    ------
    refimpl.core.errors.NonFiniteError
        Naming the step and tensor if C, the loss or its gradient becomes non-finite.
    """
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a huang2023 Config, got {type(cfg).__name__}")
    check_choice("backend", backend, BACKENDS)
    r_features, r_population = streams(seed)
    data = data_from_rng(cfg, r_features)  # V (d, K), p (K,), N   spec H1
    pop = P.make_population(cfg, r_population)  # spec H8 (a)–(c)
    C0 = P.C_from_Q(init_params(cfg, seed)["Q"], data.V)  # (K, K)  spec H4 [C]: Q⁰ = 0, so C⁰ = 0
    traj = P.run_gd(pop, cfg.eta, cfg.steps, C0=C0, record=record, columns=columns,
                    backend="numba" if backend == "numba_parallel" else backend,
                    progress=progress)  # spec H5, H7
    C = traj.params["C"]
    return dataclasses.replace(
        traj, config=cfg, seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
        params={"Q": P.Q_from_C(C, data.V)},  # (d, d)  spec H7: Q = V C Vᵀ
        data={"features": data, "population": pop}, extra={**traj.extra, "C": C},
    )
