"""Parity of the JAX competitor (benchmarks/jax_backend.py) with refimpl (issue 6 item 4).

For every model (li2024, yang2024, huang2023 and the reduced huang2023_C update), at small sizes
and at the paper sizes, float64: the forward outputs, the loss, every gradient and a 10-step
trajectory (the loss before each step and the final parameters) of jax.value_and_grad + the
jitted functional SGD / Adam step agree with refimpl's NumPy path and its Numba path. The options
that change the math (li2024 attend_to_query / train_a, huang2023 attend_to_query) are covered.
Skipped when jax is not installed (CI does not install it).

Tolerance and the shared test bodies: tests/_parity.py.
"""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax", reason="jax is not installed (pip install jax); JAX parity tests skipped")

from _parity import (  # noqa: E402  (after importorskip)
    CASES,
    SMALL,
    case_id,
    check_float32_runs_in_float32,
    check_forward_loss_grads_and_trajectory,
    check_huang2023_C_trajectory_matches_population_run_gd,
)

from refimpl.benchmarks import jax_backend  # noqa: E402
from refimpl.benchmarks.problems import make_problem  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS thread for the reference paths (the shared 2-core machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


IDS = [case_id(c) for c in CASES]


def _runner(prob):
    return jax_backend.make_runner(prob, "jit")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_loss_grads_and_trajectory(case):
    """jax.jit vs refimpl (NumPy and Numba paths): outputs, loss, grads, then 10 steps."""
    check_forward_loss_grads_and_trajectory(_runner, case)


@pytest.mark.parametrize("attend_to_query", [False, True])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_huang2023_C_trajectory_matches_population_run_gd(backend, attend_to_query):
    """The jitted JAX GD on C equals refimpl's own population trainer (spec H7, H8 (b))."""
    check_huang2023_C_trajectory_matches_population_run_gd(_runner, backend, attend_to_query)


def test_float32_runs_in_float32():
    """The f32 problem stays in f32 in JAX (x64 enabled) and agrees with refimpl to f32 accuracy."""
    check_float32_runs_in_float32(_runner)


def test_runner_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variant"):
        jax_backend.make_runner(make_problem("huang2023", **SMALL["huang2023"]), "eager")
