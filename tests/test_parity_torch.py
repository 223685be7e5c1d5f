"""Parity of the PyTorch competitor (benchmarks/torch_backend.py) with refimpl (issue 6 item 4).

For every model (li2024, yang2024, huang2023 and the reduced huang2023_C update), at small sizes
and at the paper sizes, float64: the forward outputs, the loss, every gradient and a 10-step
trajectory (the loss before each step and the final parameters) of torch autograd +
torch.optim agree with refimpl's NumPy path and its Numba path. The options that change the math
(li2024 attend_to_query / train_a, huang2023 attend_to_query) are covered.

Tolerance and the shared test bodies: tests/_parity.py.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0); parity tests skipped")

from _parity import (  # noqa: E402  (after importorskip)
    CASES,
    SMALL,
    assert_close,
    case_id,
    check_float32_runs_in_float32,
    check_forward_loss_grads_and_trajectory,
    check_huang2023_C_trajectory_matches_population_run_gd,
)

from refimpl.benchmarks import torch_backend  # noqa: E402
from refimpl.benchmarks.problems import DEFAULT_SIZES, MODELS, make_problem, reference_step  # noqa: E402


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


IDS = [case_id(c) for c in CASES]


def _runner(prob):
    return torch_backend.make_runner(prob, "eager")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_loss_grads_and_trajectory(case):
    """torch eager vs refimpl (NumPy and Numba paths): outputs, loss, grads, then 10 steps."""
    check_forward_loss_grads_and_trajectory(_runner, case)


@pytest.mark.parametrize("attend_to_query", [False, True])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_huang2023_C_trajectory_matches_population_run_gd(backend, attend_to_query):
    """The torch GD on C equals refimpl's own population trainer (spec H7, H8 (b))."""
    check_huang2023_C_trajectory_matches_population_run_gd(_runner, backend, attend_to_query)


def test_float32_runs_in_float32():
    """The f32 problem stays in f32 in torch and agrees with refimpl to f32 accuracy."""
    check_float32_runs_in_float32(_runner)


# --------------------------------------------------------------------------------------------
# the problems themselves (numpy only; here because CI installs torch and runs this file)
# --------------------------------------------------------------------------------------------
def test_paper_default_sizes():
    assert make_problem("li2024").config["B"] == 64
    li = make_problem("li2024")
    assert li.batch["P"].shape == (64, 40, 21) and li.params["W_O"].shape == (100, 40)
    assert li.config["d_x"] == 30 and li.config["d_y"] == 10 and li.optimizer == {"name": "sgd", "lr": 0.5}
    y = make_problem("yang2024")
    assert y.params["Q"].shape == (64, 100, 100) and y.params["w"].shape == (64, 200)
    assert y.batch["y"].shape == (256, 30) and y.batch["y_all"].shape == (256, 200)
    assert y.optimizer["name"] == "adam" and y.optimizer["lr"] == 1e-4
    h = make_problem("huang2023")
    assert h.batch["X"].shape == (256, 100, 10) and h.params["Q"].shape == (10, 10)
    c = make_problem("huang2023_C")
    assert c.batch["counts"].shape == (4000, 10) and np.all(c.batch["counts"].sum(1) == 100)
    for model in MODELS:
        assert {k: make_problem(model).config[k] for k in DEFAULT_SIZES[model]} == DEFAULT_SIZES[model]


def test_problem_is_a_function_of_the_seed():
    for model in MODELS:
        a, b, c = (make_problem(model, seed=s, **SMALL[model]) for s in (7, 7, 8))
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
        for k, v in a.batch.items():
            np.testing.assert_array_equal(v, b.batch[k])
        assert any(not np.array_equal(a.batch[k], c.batch[k]) for k in a.batch if isinstance(a.batch[k], np.ndarray))


def test_numpy_and_numba_reference_agree():
    for model in MODELS:
        prob = make_problem(model, seed=2, **SMALL[model])
        a, b = reference_step(prob, "numpy"), reference_step(prob, "numba")
        la, ga = a.loss_and_grads()
        lb, gb = b.loss_and_grads()
        assert_close(f"{model} loss", lb, la, rtol=1e-12)
        for k in ga:
            assert_close(f"{model} grad {k}", gb[k], ga[k], rtol=1e-10)


def test_li2024_scaled_d_keeps_patterns_orthogonal():
    for d in (9, 12, 40, 80):
        cfg = make_problem("li2024", d=d, B=4, l=3, m=5).config
        assert cfg["d_x"] + cfg["d_y"] == d and cfg["d_x"] >= cfg["M1"] + cfg["M2"]
    assert make_problem("li2024", d=40).config["M2"] == 24


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "bert"}, "model"),
        ({"model": "li2024", "dtype": "float16"}, "dtype"),
        ({"model": "li2024", "H": 3}, "unknown size"),
        ({"model": "yang2024", "N": 0}, "size N"),
        ({"model": "yang2024", "N": 50, "K": 20}, "N ≤ K"),
        ({"model": "li2024", "d": 8}, "d must be ≥ 9"),
        ({"model": "huang2023", "options": {"train_a": True}}, "unknown option"),
        ({"model": "li2024", "options": {"attend_to_query": 1}}, "bool"),
        ({"model": "yang2024", "options": {"loss": "population"}}, "loss"),
    ],
)
def test_make_problem_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_problem(**kwargs)


def test_runner_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variant"):
        torch_backend.make_runner(make_problem("huang2023", **SMALL["huang2023"]), "jit")


def test_importing_the_backends_imports_neither_library():
    """torch and jax are imported lazily (inside make_runner / available), never at import time."""
    import subprocess
    import sys

    code = ("import sys, benchmarks.jax_backend, benchmarks.torch_backend, benchmarks.problems; "
            "print(int('jax' in sys.modules), int('torch' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "0"]
