"""Forward/backward pairs of refimpl.core.ops against central differences, and gradcheck itself.

Every backward is checked through the "fake loss" f(x) = Σ w ⊙ forward(x) with a random upstream
gradient w, so the backward's output must equal ∇f = Jᵀ w entry by entry (rtol 1e-6, float64).
The atol of each check is the finite-difference rounding floor of f (tests/_fd.py), not a slack.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from _fd import EPS, RTOL, fd_noise_floor
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refimpl.core import (
    GradcheckError,
    gradcheck,
    hinge_backward,
    hinge_forward,
    relu_backward,
    relu_forward,
    softmax_backward,
    softmax_forward,
    squared_backward,
    squared_forward,
)

FLOATS = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
shapes_1to3 = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)


def farray(shape, lo, hi):
    """Float64 arrays with independently drawn entries in [lo, hi] (no constant background fill)."""
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, **FLOATS), fill=st.nothing())


# --------------------------------------------------------------------------------------------
# softmax
# --------------------------------------------------------------------------------------------
@settings(max_examples=150)
@given(data=st.data())
def test_softmax_backward_matches_central_differences(data):
    shape = data.draw(shapes_1to3, label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = data.draw(farray(shape, -6.0, 6.0), label="x")
    w = data.draw(farray(shape, -2.0, 2.0), label="w")  # upstream gradient of the fake loss

    sigma, cache = softmax_forward(x, axis=axis)
    grad = softmax_backward(w, cache)
    assert grad.shape == x.shape

    def f(inp):
        return float(np.sum(w * softmax_forward(inp["x"], axis=axis)[0]))

    scale = float(np.sum(np.abs(w * sigma)))
    gradcheck(f, {"x": x}, {"x": grad}, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale)).raise_if_failed()


@settings(max_examples=80)
@given(data=st.data())
def test_softmax_sums_to_one_and_is_invariant_to_shifts(data):
    shape = data.draw(shapes_1to3, label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = data.draw(farray(shape, -50.0, 50.0), label="x")
    c = data.draw(st.floats(-1e3, 1e3, **FLOATS), label="shift")
    sigma, _ = softmax_forward(x, axis=axis)
    assert sigma.shape == x.shape
    assert np.all(sigma >= 0) and np.all(sigma <= 1)
    np.testing.assert_allclose(np.sum(sigma, axis=axis), 1.0, rtol=0, atol=4 * sigma.shape[axis] * 2.2e-16)
    # softmax(x + c) = softmax(x): the max subtraction makes this hold to rounding of x + c
    shifted, _ = softmax_forward(x + c, axis=axis)
    np.testing.assert_allclose(shifted, sigma, rtol=0, atol=1e-10)


def test_softmax_matches_direct_formula_on_moderate_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 7))
    for axis in (0, 1, -1):
        e = np.exp(x)
        ref = e / e.sum(axis=axis, keepdims=True)
        np.testing.assert_allclose(softmax_forward(x, axis=axis)[0], ref, rtol=1e-14, atol=0)


def test_softmax_default_axis_is_columns():
    x = np.array([[0.0, 5.0], [1.0, -5.0], [2.0, 0.0]])
    s, _ = softmax_forward(x)
    np.testing.assert_allclose(s.sum(axis=0), [1.0, 1.0], atol=1e-15)
    assert not np.allclose(s.sum(axis=1), 1.0)


def test_softmax_is_stable_for_huge_inputs():
    # differences of ~1e300 would overflow exp without the max subtraction
    x = np.array([[1e300, -1e300], [0.0, 3e300], [-1e300, 2e300], [1e300, 1e300]])
    s, cache = softmax_forward(x, axis=0)
    assert np.all(np.isfinite(s))
    np.testing.assert_array_equal(s, [[0.5, 0.0], [0.0, 1.0], [0.0, 0.0], [0.5, 0.0]])  # ties share
    np.testing.assert_allclose(s.sum(axis=0), 1.0, atol=0)
    # equal huge entries share the mass exactly
    s2, _ = softmax_forward(np.array([1e300, 1e300, -1e300]))
    np.testing.assert_array_equal(s2, [0.5, 0.5, 0.0])
    # the backward at a saturated softmax is finite: σ_i (w_i − Σσw) with σ = (½, 0, 0, ½) in
    # column 0 gives ½(1 − 4), ½(7 − 4); column 1 is saturated on one entry, so its gradient is 0
    g = softmax_backward(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]), cache)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g, [[-1.5, 0.0], [0.0, 0.0], [0.0, 0.0], [1.5, 0.0]])
    # very negative inputs: every exp would underflow to 0 without the shift
    s3, _ = softmax_forward(np.array([-1e300, -1e300 + 1e285, -2e300]))
    assert np.all(np.isfinite(s3)) and s3[1] == 1.0


# --------------------------------------------------------------------------------------------
# ReLU
# --------------------------------------------------------------------------------------------
@settings(max_examples=100)
@given(data=st.data())
def test_relu_backward_matches_central_differences(data):
    shape = data.draw(shapes_1to3, label="shape")
    mag = data.draw(farray(shape, 2e-3, 3.0), label="|h|")
    sign = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])), label="sign")
    h = sign * mag
    assume(np.min(np.abs(h)) > 1e-3)  # away from the kink: h ± eps keeps its sign
    w = data.draw(farray(shape, -2.0, 2.0), label="w")
    at_zero = data.draw(st.sampled_from([0.0, 1.0]), label="at_zero")
    r, cache = relu_forward(h, at_zero)
    np.testing.assert_array_equal(r, np.where(h > 0, h, 0.0))
    grad = relu_backward(w, cache)

    def f(inp):
        return float(np.sum(w * relu_forward(inp["h"], at_zero)[0]))

    scale = float(np.sum(np.abs(w * r)))
    gradcheck(f, {"h": h}, {"h": grad}, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale)).raise_if_failed()


def test_relu_derivative_at_zero_is_the_chosen_subgradient():
    h = np.array([-1.0, 0.0, 2.0, 0.0])
    dr = np.array([3.0, 5.0, 7.0, -11.0])
    np.testing.assert_array_equal(relu_backward(dr, relu_forward(h, 0.0)[1]), [0.0, 0.0, 7.0, 0.0])
    np.testing.assert_array_equal(relu_backward(dr, relu_forward(h, 1.0)[1]), [0.0, 5.0, 7.0, -11.0])


# --------------------------------------------------------------------------------------------
# hinge
# --------------------------------------------------------------------------------------------
@settings(max_examples=100)
@given(data=st.data())
def test_hinge_backward_matches_central_differences(data):
    n = data.draw(st.integers(1, 12), label="n")
    z = data.draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from([-1.0, 1.0])), label="z")
    # margins zF = 1 ± |offset| on both sides of the kink, |offset| ≥ 2e-3
    offset = data.draw(farray((n,), 2e-3, 4.0), label="|1 - zF|")
    side = data.draw(hnp.arrays(np.float64, (n,), elements=st.sampled_from([-1.0, 1.0])), label="side")
    F = z * (1.0 + side * offset)
    assume(np.min(np.abs(1.0 - z * F)) > 1e-3)  # away from the kink zF = 1
    w = data.draw(farray((n,), -2.0, 2.0), label="w")
    loss, cache = hinge_forward(F, z)
    np.testing.assert_array_equal(loss, np.maximum(0.0, 1.0 - z * F))
    grad = hinge_backward(w, cache)

    def f(inp):
        return float(np.sum(w * hinge_forward(inp["F"], z)[0]))

    scale = float(np.sum(np.abs(w) * (1.0 + np.abs(F))))
    gradcheck(f, {"F": F}, {"F": grad}, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale)).raise_if_failed()


def test_hinge_subgradient_at_the_kink_is_zero():
    F = np.array([1.0, -1.0, 0.5, 2.0])
    z = np.array([1.0, -1.0, 1.0, -1.0])  # margins 1, 1, 0.5, -2
    _, cache = hinge_forward(F, z)
    np.testing.assert_array_equal(hinge_backward(np.ones(4), cache), [0.0, 0.0, -1.0, 1.0])


# --------------------------------------------------------------------------------------------
# squared
# --------------------------------------------------------------------------------------------
@settings(max_examples=100)
@given(data=st.data())
def test_squared_backward_matches_central_differences(data):
    shape = data.draw(shapes_1to3, label="shape")
    pred = data.draw(farray(shape, -3.0, 3.0), label="pred")
    target = data.draw(farray(shape, -3.0, 3.0), label="target")
    w = data.draw(farray(shape, -2.0, 2.0), label="w")
    loss, cache = squared_forward(pred, target)
    np.testing.assert_allclose(loss, 0.5 * (pred - target) ** 2, rtol=1e-15, atol=1e-300)
    grad = squared_backward(w, cache)

    def f(inp):
        return float(np.sum(w * squared_forward(inp["pred"], target)[0]))

    scale = float(np.sum(np.abs(w) * (pred - target) ** 2 + np.abs(w)))
    gradcheck(f, {"pred": pred}, {"pred": grad}, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale)).raise_if_failed()


# --------------------------------------------------------------------------------------------
# gradcheck itself: it must fail on wrong gradients, and say where
# --------------------------------------------------------------------------------------------
def _softmax_problem(shape, seed=0, axis=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(shape)
    sigma, cache = softmax_forward(x, axis=axis)

    def f(inp):
        return float(np.sum(w * softmax_forward(inp["x"], axis=axis)[0]))

    return f, x, softmax_backward(w, cache), float(np.sum(np.abs(w * sigma)))


def test_gradcheck_passes_a_correct_gradient_entrywise():
    f, x, g, scale = _softmax_problem((3, 4))
    rep = gradcheck(f, {"x": x}, {"x": g}, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale))
    assert rep.passed, str(rep)
    (chk,) = rep.checks
    assert chk.mode == "entries" and chk.n_checked == 12
    assert chk.max_rel_err < 1e-7  # far inside the tolerance: the check has room to detect 1e-3
    rep.raise_if_failed()


def test_gradcheck_fails_on_a_gradient_scaled_by_1_001():
    f, x, g, scale = _softmax_problem((3, 4))
    rep = gradcheck(f, {"x": x}, {"x": g * 1.001}, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale))
    assert not rep.passed
    (chk,) = rep.checks
    assert chk.name == "x" and not chk.passed
    assert 0.9e-3 < chk.max_rel_err < 1.1e-3  # the error is exactly the planted 0.1 %
    with pytest.raises(GradcheckError, match=r"FAIL x +entries"):
        rep.raise_if_failed()


def test_gradcheck_names_tensor_and_index_of_a_single_wrong_entry():
    f, x, g, scale = _softmax_problem((3, 4))
    bad = g.copy()
    bad[2, 1] += 1e-3 * (1.0 + abs(g[2, 1]))
    rep = gradcheck(
        f, {"x": x, "other": np.zeros(2)}, {"other": np.zeros(2), "x": bad},
        eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale),
    )
    by_name = {c.name: c for c in rep.checks}
    assert by_name["other"].passed  # the independent input (f ignores it): gradient 0 is right
    assert not by_name["x"].passed
    assert by_name["x"].worst == "(2, 1)"
    assert by_name["x"].worst_analytic == bad[2, 1]
    with pytest.raises(GradcheckError) as exc:
        rep.raise_if_failed()
    msg = str(exc.value)
    assert re.search(r"FAIL x +entries .*worst at \(2, 1\)", msg), msg
    assert re.search(r"ok +other", msg), msg


def test_gradcheck_random_directions_on_a_large_tensor():
    f, x, g, scale = _softmax_problem((20, 15), seed=3)
    atol = fd_noise_floor(scale)
    rep = gradcheck(f, {"x": x}, {"x": g}, eps=EPS, rtol=RTOL, atol=atol, n_directions=12,
                    rng=np.random.default_rng(1))
    (chk,) = rep.checks
    assert chk.mode == "directions" and chk.n_checked == 12, str(rep)
    rep.raise_if_failed()

    # one wrong entry among 300: every random direction sees it (weight |v_ij| ~ 1/√300)
    bad = g.copy()
    bad[7, 11] += 1e-2
    rep = gradcheck(f, {"x": x}, {"x": bad}, eps=EPS, rtol=RTOL, atol=atol, n_directions=12,
                    rng=np.random.default_rng(1))
    (chk,) = rep.checks
    assert not chk.passed and chk.mode == "directions"
    with pytest.raises(GradcheckError, match=r"FAIL x +directions .*worst at direction \d+"):
        rep.raise_if_failed()

    # a uniformly scaled gradient fails along directions too
    rep = gradcheck(f, {"x": x}, {"x": g * 1.001}, eps=EPS, rtol=RTOL, atol=atol, n_directions=12,
                    rng=np.random.default_rng(1))
    assert not rep.passed


def test_gradcheck_forced_directions_mode_and_input_is_not_modified():
    f, x, g, scale = _softmax_problem((4, 4), seed=5)
    x0 = x.copy()
    rep = gradcheck(f, {"x": x}, {"x": g}, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale), max_entries=0,
                    n_directions=5)
    assert rep.checks[0].mode == "directions" and rep.checks[0].n_checked == 5
    rep.raise_if_failed()
    np.testing.assert_array_equal(x, x0)


def test_gradcheck_rejects_mismatched_gradients():
    f, x, g, _ = _softmax_problem((3, 4))
    with pytest.raises(KeyError, match="'y'"):
        gradcheck(f, {"x": x}, {"y": g})
    with pytest.raises(ValueError, match=r"gradient 'x' has shape \(4, 3\)"):
        gradcheck(f, {"x": x}, {"x": g.T})
    with pytest.raises(ValueError, match="eps must be > 0"):
        gradcheck(f, {"x": x}, {"x": g}, eps=0.0)


# --------------------------------------------------------------------------------------------
# dtypes: float32 in, float32 out (DESIGN.md: "float32 selectable where benchmarks need it")
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("at_zero", [0.0, 1.0])
def test_forward_and_backward_preserve_float32(at_zero):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    x[0, 0] = 0.0  # exercise the h == 0 branch of the ReLU mask
    up = rng.standard_normal((3, 4)).astype(np.float32)
    z = np.where(rng.random((3, 4)) < 0.5, -1.0, 1.0).astype(np.float32)
    pairs = {
        "softmax": (softmax_forward, softmax_backward, (x,)),
        "relu": (relu_forward, relu_backward, (x, at_zero)),
        "hinge": (hinge_forward, hinge_backward, (x, z)),
        "squared": (squared_forward, squared_backward, (x, z)),
    }
    dtypes = {}
    for name, (fwd, bwd, args) in pairs.items():
        out, cache = fwd(*args)
        dtypes[name] = (out.dtype, bwd(up, cache).dtype)
    want = {name: (np.dtype(np.float32), np.dtype(np.float32)) for name in pairs}
    assert dtypes == want, f"(forward, backward) dtypes for float32 inputs: {dtypes}"


# --------------------------------------------------------------------------------------------
# GELU (tanh approximation) and layer norm (appended for spec T)
# --------------------------------------------------------------------------------------------
from refimpl.core.ops import gelu_backward, gelu_forward, layernorm_backward, layernorm_forward  # noqa: E402


@settings(max_examples=100)
@given(data=st.data())
def test_gelu_backward_matches_central_differences(data):
    shape = data.draw(shapes_1to3, label="shape")
    x = data.draw(farray(shape, -6.0, 6.0), label="x")
    w = data.draw(farray(shape, -2.0, 2.0), label="w")
    y, cache = gelu_forward(x)
    grad = gelu_backward(w, cache)

    def f(inp):
        return float(np.sum(w * gelu_forward(inp["x"])[0]))

    # y = ½x + ½x·tanh(u): the two terms cancel for x ≪ 0, so they (not y) set the rounding scale
    scale = float(np.sum(np.abs(w * x))) + float(np.sum(np.abs(grad * x)))
    gradcheck(f, {"x": x}, {"x": grad}, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale)).raise_if_failed()


def test_gelu_matches_the_tanh_formula_and_known_values():
    x = np.linspace(-5, 5, 101)
    y, _ = gelu_forward(x)
    ref = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(y, ref, rtol=1e-15, atol=1e-16)
    assert gelu_forward(np.array([0.0]))[0][0] == 0.0
    # GELU_tanh(1) = 0.8411919906082768 (torch.nn.functional.gelu(approximate="tanh"), float64)
    assert gelu_forward(np.array([1.0]))[0][0] == pytest.approx(0.8411919906082768, rel=1e-15)


@settings(max_examples=100)
@given(data=st.data())
def test_layernorm_backward_matches_central_differences(data):
    lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4), label="lead")
    n = data.draw(st.integers(2, 6), label="n")
    x = data.draw(farray(lead + (n,), -4.0, 4.0), label="x")
    assume(np.min(np.ptp(x, axis=-1)) > 1e-2)  # not (almost) constant rows: ε would dominate
    g = data.draw(farray((n,), -2.0, 2.0), label="g")
    b = data.draw(farray((n,), -2.0, 2.0), label="b")
    w = data.draw(farray(lead + (n,), -2.0, 2.0), label="w")
    y, cache = layernorm_forward(x, g, b)
    dx, dg, db = layernorm_backward(w, cache)
    assert dx.shape == x.shape and dg.shape == g.shape and db.shape == b.shape

    def f(inp):
        return float(np.sum(w * layernorm_forward(inp["x"], inp["g"], inp["b"])[0]))

    inputs, grads = {"x": x, "g": g, "b": b}, {"x": dx, "g": dg, "b": db}
    scale = float(np.sum(np.abs(w * y))) + sum(float(np.sum(np.abs(grads[k] * inputs[k]))) for k in inputs)
    gradcheck(f, inputs, grads, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale)).raise_if_failed()


def test_layernorm_normalises_and_matches_the_definition():
    rng = np.random.default_rng(0)
    x = 3.0 + 2.0 * rng.standard_normal((4, 7))
    y, _ = layernorm_forward(x, np.ones(7), np.zeros(7))
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-15)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)  # ε = 1e-5, biased var
    np.testing.assert_allclose(y, ref, rtol=1e-14, atol=1e-15)
    g, b = rng.standard_normal(7), rng.standard_normal(7)
    np.testing.assert_allclose(layernorm_forward(x, g, b)[0], ref * g + b, rtol=1e-14, atol=1e-14)
