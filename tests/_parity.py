"""Shared body of the parity tests of the examples (tests/test_parity_torch.py, test_parity_jax.py).

Every benchmark problem (``refimpl.models.bench_problems()``), every form of its examples
(``FORMS``), every option value (one at a time) at the problems' small sizes and the defaults at
the paper sizes: the example's forward outputs, loss, every gradient and a 10-step trajectory
(the loss before each step and the final parameters) agree with refimpl's paths (every backend
the model registers) in float64; in float32 the example agrees with refimpl's float32 NumPy path
within the dtype-aware tolerances of ``refimpl.testing.assert_matches``. Nothing here names a
model: the cases come from the registry and the problem modules (``benchmarks/problems/``).

float64 tolerance: |example − ref| ≤ RTOL·|ref| + ATOL_REL·max|ref| elementwise, RTOL = 1e−10
(the requirement) and ATOL_REL = 1e−13: an absolute floor of ~450 ulps of the tensor's own scale,
for entries that are small by cancellation (sums of O(max|ref|) terms carry a few ulps of that
scale). Measured worst errors are ~1e−15 relative to the scale, so a real formula difference (an
omitted term, a wrong normalisation, a different softmax set) fails by many orders of magnitude.
Gradients of parameters the loss does not depend on (the problem's ``UNIDENTIFIED``, e.g. the
transformer's key bias) are rounding noise in both implementations: they are compared with a
floor of NOISE_REL × the largest gradient entry, and their Adam trajectories (driven by that
noise) are not compared.
"""

from __future__ import annotations

import numpy as np

from refimpl.benchmarks import problems as P
from refimpl.benchmarks.competitors import make_runner

RTOL = 1e-10
ATOL_REL = 1e-13
NOISE_REL = 1e-14
STEPS = 10


def forms(name):
    return list(P.forms(name))


def _cases():
    for name in P.names():
        for form in forms(name):
            for opts in P.option_cases(name):
                yield (name, "small", opts, form)
            yield (name, "paper", {}, form)


CASES = list(_cases())
# every example in float32 too, also where the benchmark times float64 only (refimpl computes in float64 there)
FLOAT32_CASES = [(name, form) for name in P.names() for form in forms(name)]
TRAINER_CASES = [(name, opts, backend) for name in P.names() if hasattr(P.load(name), "own_trainer")
                 for opts in P.option_cases(name) for backend in P.backends(name)]


def case_id(case):
    name, size, opts, form = case
    return "-".join([name, size] + ([form] if form else []) + [f"{k}={v}" for k, v in opts.items()])


def _backends(name, size):
    """refimpl's paths to compare with: every registered backend; with NUMBA_DISABLE_JIT (the
    coverage leg) the pure-Python kernels are checked at the small sizes only (at paper sizes they
    take minutes)."""
    from refimpl.core.jit import jit_disabled

    bs = P.backends(name)
    return tuple(b for b in bs if b == "numpy") if jit_disabled() and size == "paper" else bs


def _problem(name, size, opts, dtype="float64", seed=3):
    return P.make_problem(name, dtype, seed, options=opts, **P.sizes_of(name, size))


def unidentified(name, key) -> bool:
    return key.endswith(tuple(getattr(P.load(name), "UNIDENTIFIED", ())))


def assert_close(name, got, ref, rtol=RTOL, atol_rel=ATOL_REL, floor=0.0):
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != reference {ref.shape}"
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = np.abs(got - ref)
    bound = rtol * np.abs(ref) + max(atol_rel * scale, floor)
    if not np.all(err <= bound):
        i = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(
            f"{name}: max |diff| {err.max():.3e} (scale {scale:.3e}); worst at index {tuple(int(j) for j in i)}: "
            f"got {got[i]!r}, reference {ref[i]!r}, allowed {bound[i]:.3e}"
        )


def check_forward_loss_grads_and_trajectory(library, variant, case):
    """The example vs refimpl (every registered path): outputs, loss, gradients, then 10 steps."""
    name = case[0]
    prob = _problem(*case[:3])
    run = make_runner(prob, library, variant, case[3])
    loss_t, g_t = run.loss_and_grads()
    out_t = run.outputs()
    losses_t = []
    for _ in range(STEPS):
        losses_t.append(run.loss_and_grads()[0])
        run.step()
    p_t = run.params()
    for backend in _backends(name, case[1]):
        ref = P.reference_step(prob, backend)
        loss_r, g_r = ref.loss_and_grads()
        assert_close(f"[{backend}] loss", loss_t, loss_r)
        assert sorted(g_t) == sorted(g_r), f"gradient keys {sorted(g_t)} != refimpl's {sorted(g_r)}"
        G = max(float(np.max(np.abs(v))) for v in g_r.values())
        for k in g_r:
            noise = unidentified(name, k)
            assert noise or np.any(g_r[k] != 0), f"grad {k} is zero: the problem would not test it"
            assert_close(f"[{backend}] grad {k}", g_t[k], g_r[k], floor=NOISE_REL * G if noise else 0.0)
        out_r = ref.outputs()
        assert sorted(out_t) == sorted(out_r), f"output keys {sorted(out_t)} != refimpl's {sorted(out_r)}"
        for k in out_r:
            assert_close(f"[{backend}] output {k}", out_t[k], out_r[k])
        losses_r = [ref.step() for _ in range(STEPS)]
        assert_close(f"[{backend}] trajectory loss", losses_t, losses_r)
        assert losses_r[-1] < losses_r[0], "the 10 steps do not decrease the loss: the trajectory tests nothing"
        p_r = ref.params()
        for k in prob.trainable:
            if unidentified(name, k):
                continue
            assert not np.array_equal(p_r[k], prob.params[k]), f"{k} did not move in {STEPS} steps"
            assert_close(f"[{backend}] final {k}", p_t[k], p_r[k])
    for k in set(prob.params) - set(prob.trainable):  # fixed parameters stay bit-identical
        np.testing.assert_array_equal(p_t[k], prob.params[k])


def check_own_trainer(library, variant, name, backend, opts):
    """The example's training loop equals the model's own trainer on the problem (when it has one)."""
    prob = P.make_problem(name, "float64", 5, options=opts, **P.sizes_of(name, "small"))
    run = make_runner(prob, library, variant, forms(name)[0])
    losses = []
    for _ in range(STEPS):
        losses.append(run.loss_and_grads()[0])
        run.step()
    losses_r, params_r = P.load(name).own_trainer(prob, STEPS, backend)
    assert_close("loss before each step", losses, losses_r)
    p = run.params()
    for k, v in params_r.items():
        assert_close(f"{k} after {STEPS} steps", p[k], v)


def check_float32(library, variant, name, form):
    """The float32 problem stays float32 in the example, which agrees with refimpl's float32 NumPy
    path (outputs, gradients, the loss before each of 10 steps, the parameters after them) within
    ``refimpl.testing.assert_matches``'s float32 tolerances."""
    from refimpl.core.golden import golden_payload
    from refimpl.testing import assert_matches

    prob = P.make_problem(name, "float32", 1, **P.sizes_of(name, "small"))
    run = make_runner(prob, library, variant, form)
    ref = P.reference_step(prob, "numpy")
    arrays, cand = {}, {}
    for r, d in ((ref, arrays), (run, cand)):
        _, g = r.loss_and_grads()
        d.update({f"grad/{k}": v for k, v in g.items()})
        d.update({f"output/{k}": v for k, v in r.outputs().items()})
        losses = []
        for _ in range(STEPS):
            losses.append(r.loss_and_grads()[0])
            r.step()
        d["trajectory/loss"] = np.asarray(losses)
        d.update({f"trajectory/{k}": v for k, v in r.params().items()
                  if k in prob.trainable and not unidentified(name, k)})
    for k, v in cand.items():
        if k != "trajectory/loss":  # the losses were collected as Python floats
            assert np.asarray(v).dtype == np.float32, f"{name} {k} is {np.asarray(v).dtype}, not float32"
    golden = golden_payload(model=prob.model, seed=1, dtype="float32", config={"problem": name}, arrays=arrays)
    assert_matches(cand, golden, dtype="float32")
