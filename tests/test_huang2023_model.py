"""Spec H model (H3–H6): gradients vs central differences, full matrix form == reduced form,
NumPy == Numba, input errors."""

from __future__ import annotations

import numpy as np
import pytest
from _fd import EPS, RTOL, fd_noise_floor
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl import huang2023 as H
from refimpl.core import gradcheck


@st.composite
def h_case(draw, generic=True):
    """(Q, batch) with random sizes; tokens Gaussian (generic) or features of a random V."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    K = draw(st.integers(2, 4))
    d = draw(st.integers(K, 6))
    N = draw(st.integers(1, 7))
    B = draw(st.integers(1, 4))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    if generic:
        X = rng.standard_normal((B, N, d))
        xq = rng.standard_normal((B, d))
        w = rng.standard_normal((B, d))
        batch = {"X": X, "xq": xq, "w": w, "y": np.einsum("bnd,bd->bn", X, w), "yq": xq @ np.ones(d) + w.sum(1)}
    else:
        V = H.make_features(d, K, rng)
        batch = H.sample_prompts(V, H.feature_probabilities(K), N, B, rng)
    Q = scale * rng.standard_normal((d, d))
    return Q, batch


def brute_loss(Q, batch, loss, attend_to_query, weights=None):
    """Per-prompt loops straight from the spec H4–H6 formulas (independent of model.py)."""
    X, xq, y, yq = batch["X"], batch["xq"], batch["y"], batch["yq"]
    B, N, _ = X.shape
    weights = np.full(B, 1.0 / B) if weights is None else weights
    tot = 0.0
    for b in range(B):
        keys = list(X[b]) + ([xq[b]] if attend_to_query else [])
        s = np.array([k @ Q @ xq[b] for k in keys])
        a = np.exp(s - s.max())
        a /= a.sum()
        if loss == "sample":
            tot += weights[b] * 0.5 * (sum(a[i] * y[b, i] for i in range(N)) - yq[b]) ** 2
        else:
            u = sum(a[i] * X[b, i] for i in range(N)) - xq[b]
            tot += weights[b] * 0.5 * u @ u
    return tot


def loss_scale(Q, batch, loss):
    """Magnitude of the terms summed into the loss (for the finite-difference noise floor)."""
    X, xq, y, yq = batch["X"], batch["xq"], batch["y"], batch["yq"]
    if loss == "sample":
        t = np.max(np.abs(y), axis=1) + np.abs(yq)
    else:
        t = np.max(np.linalg.norm(X, axis=2), axis=1) + np.linalg.norm(xq, axis=1)
    return float(np.mean(1.0 + t * t)) * (1.0 + float(np.max(np.abs(Q))))


@pytest.mark.parametrize("loss", ["sample", "Ew"])
@pytest.mark.parametrize("attend_to_query", [False, True], ids=["prompt_softmax", "query_in_softmax"])
@settings(max_examples=40)
@given(case=h_case())
def test_gradients_match_central_differences(case, loss, attend_to_query):
    Q, batch = case
    val, grads = H.loss_and_grads({"Q": Q}, batch, loss=loss, attend_to_query=attend_to_query)
    assert val == pytest.approx(brute_loss(Q, batch, loss, attend_to_query), rel=1e-12, abs=1e-15)
    rep = gradcheck(lambda p: brute_loss(p["Q"], batch, loss, attend_to_query), {"Q": Q}, grads,
                    eps=EPS, rtol=RTOL, atol=fd_noise_floor(loss_scale(Q, batch, loss)), max_entries=36)
    rep.raise_if_failed()


def test_gradient_check_is_not_vacuous():
    rng = np.random.default_rng(3)
    X, xq, w = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    batch = {"X": X, "xq": xq, "y": np.einsum("bnd,bd->bn", X, w), "yq": xq @ w[0]}
    Q = rng.standard_normal((5, 5))
    for loss in ("sample", "Ew"):
        _, g = H.loss_and_grads({"Q": Q}, batch, loss=loss)
        assert np.max(np.abs(g["Q"])) > 1e-2
        def f(p, loss=loss):
            return brute_loss(p["Q"], batch, loss, False)

        atol = fd_noise_floor(loss_scale(Q, batch, loss))
        gradcheck(f, {"Q": Q}, g, eps=EPS, rtol=RTOL, atol=atol).raise_if_failed()
        assert not gradcheck(f, {"Q": Q}, {"Q": g["Q"].T}, eps=EPS, rtol=RTOL, atol=atol).passed


@pytest.mark.parametrize("attend_to_query", [False, True])
@settings(max_examples=30)
@given(case=h_case(generic=True))
def test_full_matrix_form_equals_reduced_form(case, attend_to_query):
    Q, batch = case
    attn, _ = H.forward(Q, batch["X"], batch["xq"], attend_to_query=attend_to_query)
    reduced = H.predict(attn, batch["y"])
    full = H.full_matrix_predict(Q, batch["X"], batch["xq"], batch["y"], attend_to_query=attend_to_query)
    np.testing.assert_allclose(full, reduced, rtol=1e-12, atol=1e-12 * (1 + np.max(np.abs(batch["y"]))))


def test_attend_to_query_changes_the_prediction():
    rng = np.random.default_rng(0)
    V = H.make_features(4, 3, rng)
    b = H.sample_prompts(V, [0.5, 0.25, 0.25], 5, 6, rng)
    Q = rng.standard_normal((4, 4))
    a0 = H.forward(Q, b["X"], b["xq"])[0]
    a1 = H.forward(Q, b["X"], b["xq"], attend_to_query=True)[0]
    assert a0.shape == (6, 5) and a1.shape == (6, 6)
    assert np.max(np.abs(H.predict(a0, b["y"]) - H.predict(a1, b["y"]))) > 1e-3


@settings(max_examples=20)
@given(case=h_case(generic=False))
def test_ew_loss_is_the_w_average_of_the_sample_loss(case):
    """Spec H6: E_w ½(ŷ − y_q)² = ½‖u‖² for w ~ N(0, I); checked exactly by averaging over the 2d
    vectors ±√d e_i (a design with E wwᵀ = I)."""
    Q, batch = case
    X, xq = batch["X"], batch["xq"]
    d = X.shape[2]
    ws = np.sqrt(d) * np.concatenate([np.eye(d), -np.eye(d)])
    ls, gs = [], []
    for w in ws:
        b = {"X": X, "xq": xq, "y": X @ w, "yq": xq @ w}
        v, g = H.loss_and_grads({"Q": Q}, b)
        ls.append(v)
        gs.append(g["Q"])
    v_ew, g_ew = H.loss_and_grads({"Q": Q}, batch, loss="Ew")
    assert np.mean(ls) == pytest.approx(v_ew, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(np.mean(gs, axis=0), g_ew["Q"], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("loss", ["sample", "Ew"])
@pytest.mark.parametrize("attend_to_query", [False, True])
@settings(max_examples=25)
@given(case=h_case())
def test_numba_equals_numpy(case, loss, attend_to_query):
    Q, batch = case
    wts = np.random.default_rng(1).random(batch["X"].shape[0])
    r1 = H.loss_and_grads({"Q": Q}, batch, "numpy", loss=loss, attend_to_query=attend_to_query,
                          weights=wts, return_aux=True)
    r2 = H.loss_and_grads({"Q": Q}, batch, "numba", loss=loss, attend_to_query=attend_to_query,
                          weights=wts, return_aux=True)
    tol = 1e-12 * max(1.0, abs(r1[0]))
    assert abs(r1[0] - r2[0]) <= tol
    gs = 1e-12 * max(1.0, float(np.max(np.abs(r1[1]["Q"]))))
    assert np.max(np.abs(r1[1]["Q"] - r2[1]["Q"])) <= gs
    for k in r1[2]:
        np.testing.assert_allclose(r2[2][k], r1[2][k], rtol=1e-12, atol=1e-12)


def test_bad_inputs_name_the_argument():
    rng = np.random.default_rng(0)
    b = H.sample_prompts(H.make_features(4, 2, rng), [0.5, 0.5], 3, 2, rng)
    Q = np.zeros((4, 4))
    with pytest.raises(ValueError, match="params\\['Q'\\] must be square"):
        H.loss_and_grads({"Q": np.zeros((4, 3))}, b)
    with pytest.raises(ValueError, match="batch\\['xq'\\]"):
        H.loss_and_grads({"Q": Q}, dict(b, xq=np.zeros((2, 3))))
    with pytest.raises(ValueError, match="batch is missing \\['yq'\\]"):
        H.loss_and_grads({"Q": Q}, {k: b[k] for k in ("X", "xq", "y")})
    with pytest.raises(ValueError, match="backend"):
        H.loss_and_grads({"Q": Q}, b, "torch")
    with pytest.raises(ValueError, match="loss"):
        H.loss_and_grads({"Q": Q}, b, loss="mse")
    with pytest.raises(ValueError, match="must be finite"):
        H.loss_and_grads({"Q": np.full((4, 4), np.nan)}, b)
    with pytest.raises(ValueError, match="d must be an int ≥ K"):
        H.Config(K=5, d=3)
    with pytest.raises(ValueError, match="p1 must be in"):
        H.Config(p_kind="imbalanced", p1=1.5)
    with pytest.raises(ValueError, match="unknown huang2023 preset"):
        H.preset("nope")
    with pytest.raises(ValueError, match="p must be non-negative and sum to 1"):
        H.sample_prompts(np.eye(3, 2), [0.7, 0.7], 3, 2, 0)


def test_data_model():
    rng = np.random.default_rng(5)
    V = H.make_features(7, 4, rng)
    np.testing.assert_allclose(V.T @ V, np.eye(4), atol=1e-14)
    p = H.feature_probabilities(4, "imbalanced", 0.7)
    np.testing.assert_allclose(p, [0.7, 0.1, 0.1, 0.1])
    b = H.sample_prompts(V, p, 50, 400, rng)
    assert b["X"].shape == (400, 50, 7) and b["y"].shape == (400, 50) and b["yq"].shape == (400,)
    np.testing.assert_allclose(b["X"], V.T[b["idx"]])
    np.testing.assert_allclose(b["y"], np.einsum("bnd,bd->bn", b["X"], b["w"]))
    freq = np.bincount(b["idx"].ravel(), minlength=4) / b["idx"].size
    assert np.max(np.abs(freq - p)) < 0.01  # 20000 draws: std ≤ 0.0033
    E = H.embedding(b["X"], b["xq"], b["y"])
    assert E.shape == (400, 8, 51) and np.all(E[:, 7, 50] == 0)


@pytest.mark.parametrize("loss", ["sample", "Ew"])
@pytest.mark.parametrize("attend_to_query", [False, True])
def test_numba_equals_numpy_at_the_benchmark_size(loss, attend_to_query):
    """The blocked kernels at the benchmark size (K = d = 10, N = 102, B = 257: N and B not
    multiples of the four-row blocks)."""
    K, N, B = 10, 102, 257
    V = H.make_features(K, K, 0)
    b = H.sample_prompts(V, np.full(K, 1.0 / K), N, B, 1)
    Q = 0.5 * np.random.default_rng(2).standard_normal((K, K))
    batch = {k: b[k] for k in ("X", "xq", "y", "yq")}
    v1, g1, a1 = H.loss_and_grads({"Q": Q}, batch, loss=loss, attend_to_query=attend_to_query, return_aux=True)
    v2, g2, a2 = H.loss_and_grads({"Q": Q}, batch, "numba", loss=loss, attend_to_query=attend_to_query,
                                  return_aux=True)
    assert v2 == pytest.approx(v1, rel=1e-12)
    np.testing.assert_allclose(a2["attn"], a1["attn"], rtol=1e-12, atol=1e-15)
    assert np.max(np.abs(g2["Q"] - g1["Q"])) <= 1e-12 * np.max(np.abs(g1["Q"]))
