"""Shared body of the competitor parity tests (tests/test_parity_torch.py, test_parity_jax.py).

Tolerance: |competitor − ref| ≤ RTOL·|ref| + ATOL_REL·max|ref| elementwise, RTOL = 1e−10 (the
requirement) and ATOL_REL = 1e−13: an absolute floor of ~450 ulps of the tensor's own scale, for
entries that are small by cancellation (sums of O(max|ref|) terms carry a few ulps of that scale).
Measured worst errors are ~1e−15 relative to the scale, so a real formula difference (an
omitted term, a wrong normalisation, a different softmax set) fails by many orders of magnitude.
Each ``check_*`` takes ``make_runner(problem) -> Runner`` of the competitor under test.
"""

from __future__ import annotations

import numpy as np

from refimpl.benchmarks.problems import MODELS, huang2023_C_population, make_problem, reference_step

RTOL = 1e-10
ATOL_REL = 1e-13
STEPS = 10

SMALL = {
    "li2024": {"B": 8, "l": 6, "d": 12, "m": 16},
    "yang2024": {"H": 4, "N": 5, "K": 12, "d": 6, "m": 3, "B": 16},
    "huang2023": {"K": 4, "N": 8, "B": 16},
    "huang2023_C": {"K": 4, "N": 8, "M": 50},
}

# (model, size name, options): the options that change the math, at both sizes
CASES = [
    ("li2024", "small", {"attend_to_query": False}),
    ("li2024", "small", {"attend_to_query": True}),
    ("li2024", "small", {"train_a": True}),
    ("li2024", "paper", {"attend_to_query": False}),
    ("li2024", "paper", {"attend_to_query": True}),
    ("yang2024", "small", {}),
    ("yang2024", "paper", {}),
    ("huang2023", "small", {"attend_to_query": False}),
    ("huang2023", "small", {"attend_to_query": True}),
    ("huang2023", "paper", {"attend_to_query": False}),
    ("huang2023", "paper", {"attend_to_query": True}),
    ("huang2023_C", "small", {"attend_to_query": False}),
    ("huang2023_C", "small", {"attend_to_query": True}),
    ("huang2023_C", "paper", {"attend_to_query": False}),
    ("huang2023_C", "paper", {"attend_to_query": True}),
]


def case_id(case):
    model, size, opts = case
    return "-".join([model, size] + [f"{k}={v}" for k, v in opts.items()])


def _backends(size):
    """refimpl's paths to compare with: NumPy and Numba; with NUMBA_DISABLE_JIT (the coverage leg)
    the pure-Python kernels are checked at the small sizes only (at paper sizes they take minutes)."""
    from refimpl.core.jit import jit_disabled

    return ("numpy",) if jit_disabled() and size == "paper" else ("numpy", "numba")


def _problem(model, size, opts, dtype="float64", seed=3):
    sizes = SMALL[model] if size == "small" else {}
    return make_problem(model, dtype, seed, options=opts, **sizes)


def assert_close(name, got, ref, rtol=RTOL, atol_rel=ATOL_REL):
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != reference {ref.shape}"
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = np.abs(got - ref)
    bound = rtol * np.abs(ref) + atol_rel * scale
    if not np.all(err <= bound):
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(
            f"{name}: max |diff| {err.max():.3e} (scale {scale:.3e}); worst at index {tuple(int(j) for j in i)}: "
            f"got {got[i]!r}, reference {ref[i]!r}, allowed {bound[i]:.3e}"
        )


def check_forward_loss_grads_and_trajectory(make_runner, case):
    """competitor vs refimpl (NumPy and Numba paths): outputs, loss, grads, then 10 steps."""
    prob = _problem(*case)
    run = make_runner(prob)
    loss_t, g_t = run.loss_and_grads()
    out_t = run.outputs()
    losses_t = []
    for _ in range(STEPS):
        losses_t.append(run.loss_and_grads()[0])
        run.step()
    p_t = run.params()
    for backend in _backends(case[1]):
        ref = reference_step(prob, backend)
        loss_r, g_r = ref.loss_and_grads()
        assert_close(f"[{backend}] loss", loss_t, loss_r)
        assert sorted(g_t) == sorted(g_r), f"gradient keys {sorted(g_t)} != refimpl's {sorted(g_r)}"
        for k in g_r:
            assert np.any(g_r[k] != 0), f"grad {k} is zero: the problem would not test it"
            assert_close(f"[{backend}] grad {k}", g_t[k], g_r[k])
        out_r = ref.outputs()
        assert sorted(out_t) == sorted(out_r)
        for k in out_r:
            assert_close(f"[{backend}] output {k}", out_t[k], out_r[k])
        losses_r = [ref.step() for _ in range(STEPS)]
        assert_close(f"[{backend}] trajectory loss", losses_t, losses_r)
        assert losses_r[-1] < losses_r[0], "the 10 steps do not decrease the loss: the trajectory tests nothing"
        p_r = ref.params()
        for k in prob.trainable:
            assert not np.array_equal(p_r[k], prob.params[k]), f"{k} did not move in {STEPS} steps"
            assert_close(f"[{backend}] final {k}", p_t[k], p_r[k])
    for k in set(prob.params) - set(prob.trainable):  # fixed parameters stay bit-identical
        np.testing.assert_array_equal(p_t[k], prob.params[k])


def check_huang2023_C_trajectory_matches_population_run_gd(make_runner, backend, attend_to_query):
    """The competitor's GD on C equals refimpl's own population trainer (spec H7, H8 (b))."""
    from refimpl.huang2023.population import run_gd

    prob = make_problem("huang2023_C", seed=5, options={"attend_to_query": attend_to_query}, K=5, N=20, M=200)
    run = make_runner(prob)
    losses = []
    for _ in range(STEPS):
        losses.append(run.loss_and_grads()[0])
        run.step()
    traj = run_gd(huang2023_C_population(prob), prob.optimizer["lr"], STEPS, C0=prob.params["C"], backend=backend)
    assert_close("L", losses, traj.records["L"][:STEPS])
    assert_close("C after 10 steps", run.params()["C"], traj.records["C"][STEPS])


def check_float32_runs_in_float32(make_runner):
    """The f32 problem stays in f32 in the competitor, and agrees with refimpl's f32 NumPy path to f32 accuracy."""
    for model in MODELS:
        prob = make_problem(model, "float32", seed=1, **SMALL[model])
        run = make_runner(prob)
        loss_t, g_t = run.loss_and_grads()
        loss_r, g_r = reference_step(make_problem(model, "float64", seed=1, **SMALL[model])).loss_and_grads()
        for k in g_r:
            assert g_t[k].dtype == np.float32, f"{model} grad {k} is {g_t[k].dtype}"
            # f32 against the f64 reference of the same (rounded) inputs: ~1e−6 relative of the scale
            assert_close(f"{model} f32 grad {k}", g_t[k], g_r[k], rtol=1e-4, atol_rel=1e-4)
        assert abs(loss_t - loss_r) <= 1e-5 * abs(loss_r)
        run.step()
        assert all(v.dtype == np.float32 for v in run.params().values())
