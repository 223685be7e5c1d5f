"""huang2023_C: one GD step (η = 1, spec H13 (a)) of the reduced population update on C: the
loss L(C) over M Monte-Carlo count vectors, every query feature k with weight p_k (spec H7,
H8 (b)), balanced features.

C ~ N(0, 0.5²) instead of C⁰ = 0 [C] (C⁰ = 0 gives uniform attention). refimpl computes this
update in float64 whatever the dtype of C (the population's counts and weights are float64), so
the problem is float64 only.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.rng import spawn

DEFAULT_SIZES = {"K": 10, "N": 100, "M": 4000}
SMALL = {"K": 4, "N": 8, "M": 50}
LARGE = {"K": 10, "N": 100, "M": 32000}
OPTIONS = {"attend_to_query": (False, True)}
DTYPES = ("float64",)
# the reduced update on C (population.run_gd, kernels._loss_grad_C) is a K × K problem with one
# single-threaded kernel: no "numba_parallel" row (it would time the "numba" kernel again)
BACKENDS = ("numpy", "numba")
SCALING = {"M": (1000, 2000, 4000, 8000, 16000)}


def population(problem):
    """The ``refimpl.huang2023.population.Population`` of a problem (its batch and options)."""
    from refimpl.huang2023.population import from_counts

    b = problem.batch
    return from_counts(b["p"], b["counts"], b["weights"], attend_to_query=problem.options["attend_to_query"])


def build(s: dict, rng: np.random.Generator, dtype: str, options: dict):
    from refimpl.benchmarks.problems import Problem
    from refimpl.huang2023 import population as popmod
    from refimpl.huang2023 import preset

    K, N, M = s["K"], s["N"], s["M"]
    r_pop, r_c = spawn(rng, 2)
    pop = popmod.monte_carlo(np.full(K, 1.0 / K), N, M, r_pop)  # spec H8 (b): M count vectors, weight 1/M
    C = 0.5 * r_c.standard_normal((K, K))  # [C] random C (C⁰ = 0 gives uniform attention)
    return Problem(name="huang2023_C", model="huang2023", config={**s, "p": "balanced"}, params={"C": C},
                   batch={"p": pop.p, "counts": pop.counts, "weights": pop.weights},
                   options={"attend_to_query": False, **options},
                   optimizer={"name": "sgd", "lr": float(preset("balanced").eta)},  # spec H13 (a): η = 1
                   trainable=("C",))


def loss_and_grads(problem, params, backend, *, check=True, outputs=True):
    pop = population(problem)
    C = params["C"]
    if backend == "numpy":
        from refimpl.huang2023.population import loss_and_grad_C

        L, Lk, G, Ea = loss_and_grad_C(C, pop)  # spec H7
    else:
        from refimpl.huang2023.kernels import _loss_grad_C

        K = pop.K
        G, Lk, Ea = np.zeros((K, K)), np.zeros(K), np.zeros((K, K))

        def f(a):
            return np.ascontiguousarray(a, dtype=np.float64)

        L = _loss_grad_C(f(C), f(pop.p), f(pop.counts), f(pop.weights), bool(pop.attend_to_query),
                         G, Lk, Ea, np.arange(K, dtype=np.int64))  # spec H7, the Numba kernel
    return float(L), {"C": G}, ({"Lk": Lk, "Ealpha": Ea} if outputs else None)


def own_trainer(problem, steps: int, backend: str):
    """refimpl's own GD on C (``population.run_gd``): the loss before each step and C after."""
    from refimpl.huang2023.population import run_gd

    traj = run_gd(population(problem), problem.optimizer["lr"], steps, C0=problem.params["C"], backend=backend)
    return traj.records["L"][:steps], {"C": traj.records["C"][steps]}


def flops(config: dict) -> dict:
    """Spec H7 reduced update over M count vectors (population.loss_and_grad_C): about 14
    arithmetic operations per (query k, count vector c, column m), no matrix products."""
    K, M = config["K"], config["M"]
    return {"matmul": 0, "elementwise": 14 * K * M * K + 3 * K * K}
