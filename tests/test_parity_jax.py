"""Parity of the JAX examples (examples/jax/) with refimpl (issue 6 item 4, issue 12 item 4).

For every benchmark problem, every form of its example and every option: the forward outputs,
the loss, every gradient and a 10-step trajectory of ``jax.value_and_grad`` + the jitted
functional SGD / Adam step (donated buffers) agree with every registered refimpl path in float64,
and with refimpl's float32 path within ``refimpl.testing.assert_matches``'s tolerances in
float32. Skipped when jax is not installed.

Cases, tolerances and the shared test bodies: tests/_parity.py.
"""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax", reason="jax is not installed (pip install jax); JAX parity tests skipped")

from _parity import (  # noqa: E402  (after importorskip)
    CASES,
    FLOAT32_CASES,
    TRAINER_CASES,
    case_id,
    check_float32,
    check_forward_loss_grads_and_trajectory,
    check_own_trainer,
    forms,
)

from refimpl.benchmarks import problems as P  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS thread for the reference paths (the shared 2-core machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_forward_loss_grads_and_trajectory(case):
    check_forward_loss_grads_and_trajectory("jax", "jit", case)


@pytest.mark.parametrize("name, form", FLOAT32_CASES)
def test_float32(name, form):
    check_float32("jax", "jit", name, form)


@pytest.mark.parametrize("name, opts, backend", TRAINER_CASES, ids=[f"{n}-{o}-{b}" for n, o, b in TRAINER_CASES])
def test_own_trainer(name, opts, backend):
    """The jitted JAX training loop equals the model's own trainer on the problem."""
    check_own_trainer("jax", "jit", name, backend, opts)


def test_every_problem_has_a_jax_example_with_its_forms():
    import importlib

    for name in P.names():
        mod = importlib.import_module(f"refimpl.examples.jax.{name}")
        assert list(getattr(mod, "FORMS", {"": None})) == forms(name), name


def test_runner_rejects_unknown_variant():
    from refimpl.benchmarks.competitors import make_runner

    name = P.names()[0]
    with pytest.raises(ValueError, match="variant"):
        make_runner(P.make_problem(name, **P.sizes_of(name, "small")), "jax", "eager")
