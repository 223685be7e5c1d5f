"""Parity of the PyTorch examples (examples/torch/) with refimpl (issue 6 item 4, issue 12 item 4).

For every benchmark problem, every form of its example and every option: the forward outputs,
the loss, every gradient and a 10-step trajectory of ``torch.nn`` + autograd + fused
``torch.optim`` agree with every registered refimpl path in float64, and with refimpl's float32
path within ``refimpl.testing.assert_matches``'s tolerances in float32. ``torch.compile`` of the
same example: at the small sizes (slow: it compiles every case).

Cases, tolerances and the shared test bodies: tests/_parity.py.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0); parity tests skipped")

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
    """One thread for torch and BLAS: on the shared 2-core machine two threads are slower (and
    torch's intra-op pool stalls when the other core is busy)."""
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_forward_loss_grads_and_trajectory(case):
    check_forward_loss_grads_and_trajectory("torch", "eager", case)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c[1] == "small" and not c[2]],
                         ids=[case_id(c) for c in CASES if c[1] == "small" and not c[2]])
def test_torch_compile_forward_loss_grads_and_trajectory(case):
    check_forward_loss_grads_and_trajectory("torch", "compile", case)


@pytest.mark.parametrize("name, form", FLOAT32_CASES)
def test_float32(name, form):
    check_float32("torch", "eager", name, form)


@pytest.mark.parametrize("name, opts, backend", TRAINER_CASES, ids=[f"{n}-{o}-{b}" for n, o, b in TRAINER_CASES])
def test_own_trainer(name, opts, backend):
    """The torch training loop equals the model's own trainer on the problem."""
    check_own_trainer("torch", "eager", name, backend, opts)


def test_every_problem_has_a_torch_example_with_its_forms():
    import importlib

    for name in P.names():
        mod = importlib.import_module(f"refimpl.examples.torch.{name}")
        assert list(getattr(mod, "FORMS", {"": None})) == forms(name), name
