"""Spec H model (H3–H6), what is specific to it: the loss is the per-prompt spec formula (generic
tokens, both losses, both softmax conventions), full matrix form == reduced form, E_w loss = the
w-average of the sample loss, per-prompt weights on both backends, NaN propagation in the Numba
kernel, the benchmark-size kernels, the config's refusals and the data model.

The generic contract (central differences of the loss and of ``backward``, NumPy == Numba at
random shapes, bad inputs, determinism, golden round trip) is ``tests/test_contract.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from _fd import EPS, RTOL, fd_noise_floor
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl import huang2023 as H
from refimpl.core import gradcheck


def cfg_of(d: int, N: int, loss: str = "sample", attend_to_query: bool = False) -> H.Config:
    return H.Config(K=2, d=max(d, 2), N=N, loss=loss, attend_to_query=attend_to_query)


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


@pytest.mark.parametrize("loss", ["sample", "Ew"])
@pytest.mark.parametrize("attend_to_query", [False, True], ids=["prompt_softmax", "query_in_softmax"])
@settings(max_examples=30)
@given(case=h_case())
def test_loss_is_the_spec_formula_on_generic_tokens(case, loss, attend_to_query):
    Q, batch = case
    cfg = cfg_of(Q.shape[0], batch["X"].shape[1], loss, attend_to_query)
    val, _, aux = H.loss_and_grads({"Q": Q}, batch, cfg, return_aux=True)
    assert val == pytest.approx(brute_loss(Q, batch, loss, attend_to_query), rel=1e-12, abs=1e-15)
    np.testing.assert_array_equal(aux["out"], H.predict({"Q": Q}, batch, cfg))


def test_gradient_check_is_not_vacuous():
    """A transposed ∇_Q (the classic bug of x_iᵀ Q x_q) fails the check that the true one passes."""
    rng = np.random.default_rng(3)
    X, xq, w = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    batch = {"X": X, "xq": xq, "y": np.einsum("bnd,bd->bn", X, w), "yq": xq @ w[0]}
    Q = rng.standard_normal((5, 5))
    for loss in ("sample", "Ew"):
        cfg = cfg_of(5, 4, loss)
        _, g, aux = H.loss_and_grads({"Q": Q}, batch, cfg, return_aux=True)
        assert np.max(np.abs(g["Q"])) > 1e-2

        def f(p, loss=loss):
            return brute_loss(p["Q"], batch, loss, False)

        atol = fd_noise_floor(aux["scale"])
        gradcheck(f, {"Q": Q}, g, eps=EPS, rtol=RTOL, atol=atol).raise_if_failed()
        assert not gradcheck(f, {"Q": Q}, {"Q": g["Q"].T}, eps=EPS, rtol=RTOL, atol=atol).passed


@pytest.mark.parametrize("attend_to_query", [False, True])
@settings(max_examples=30)
@given(case=h_case(generic=True))
def test_full_matrix_form_equals_reduced_form(case, attend_to_query):
    Q, batch = case
    cfg = cfg_of(Q.shape[0], batch["X"].shape[1], attend_to_query=attend_to_query)
    reduced, cache = H.forward({"Q": Q}, batch, cfg)
    full = H.full_matrix_predict(Q, batch["X"], batch["xq"], batch["y"], attend_to_query=attend_to_query)
    np.testing.assert_allclose(full, reduced, rtol=1e-12, atol=1e-12 * (1 + np.max(np.abs(batch["y"]))))
    attn, _ = H.attention_forward(Q, batch["X"], batch["xq"], attend_to_query=attend_to_query)
    np.testing.assert_array_equal(cache["attn"], attn)
    np.testing.assert_array_equal(H.readout_forward(attn, batch["y"]), reduced)


def test_attend_to_query_changes_the_prediction():
    rng = np.random.default_rng(0)
    V = H.make_features(4, 3, rng)
    b = H.sample_prompts(V, [0.5, 0.25, 0.25], 5, 6, rng)
    params = {"Q": rng.standard_normal((4, 4))}
    cfg = H.Config(K=3, d=4, N=5)
    y0, c0 = H.forward(params, b, cfg)
    y1, c1 = H.forward(params, b, cfg.replace(attend_to_query=True))
    assert c0["attn"].shape == (6, 5) and c1["attn"].shape == (6, 6)
    assert np.max(np.abs(y0 - y1)) > 1e-3


@settings(max_examples=20)
@given(case=h_case(generic=False))
def test_ew_loss_is_the_w_average_of_the_sample_loss(case):
    """Spec H6: E_w ½(ŷ − y_q)² = ½‖u‖² for w ~ N(0, I); checked exactly by averaging over the 2d
    vectors ±√d e_i (a design with E wwᵀ = I)."""
    Q, batch = case
    X, xq = batch["X"], batch["xq"]
    d = X.shape[2]
    cfg = cfg_of(d, X.shape[1])
    ws = np.sqrt(d) * np.concatenate([np.eye(d), -np.eye(d)])
    ls, gs = [], []
    for w in ws:
        b = {"X": X, "xq": xq, "y": X @ w, "yq": xq @ w}
        v, g = H.loss_and_grads({"Q": Q}, b, cfg)
        ls.append(v)
        gs.append(g["Q"])
    v_ew, g_ew = H.loss_and_grads({"Q": Q}, batch, cfg.replace(loss="Ew"))
    assert np.mean(ls) == pytest.approx(v_ew, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(np.mean(gs, axis=0), g_ew["Q"], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("loss", ["sample", "Ew"])
@pytest.mark.parametrize("attend_to_query", [False, True])
@settings(max_examples=15)
@given(case=h_case())
def test_numba_equals_numpy_with_per_prompt_weights(case, loss, attend_to_query):
    """The population weights (spec H8 (d)) on generic tokens, both backends."""
    Q, batch = case
    cfg = cfg_of(Q.shape[0], batch["X"].shape[1], loss, attend_to_query)
    wts = np.random.default_rng(1).random(batch["X"].shape[0])
    r1 = H.loss_and_grads({"Q": Q}, batch, cfg, "numpy", weights=wts, return_aux=True)
    r2 = H.loss_and_grads({"Q": Q}, batch, cfg, "numba", weights=wts, return_aux=True)
    assert r1[0] == pytest.approx(brute_loss(Q, batch, loss, attend_to_query, wts), rel=1e-12, abs=1e-15)
    assert abs(r1[0] - r2[0]) <= 1e-12 * max(1.0, abs(r1[0]))
    assert np.max(np.abs(r1[1]["Q"] - r2[1]["Q"])) <= 1e-12 * max(1.0, float(np.max(np.abs(r1[1]["Q"]))))
    assert set(r1[2]) == set(r2[2])
    for k in ("out", "attn") + (("u",) if loss == "Ew" else ()):
        np.testing.assert_allclose(r2[2][k], r1[2][k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", ["sample", "Ew"])
@pytest.mark.parametrize("attend_to_query", [False, True])
def test_nan_propagates_in_the_numba_kernel_as_in_numpy(loss, attend_to_query):
    """With check=False a NaN in Q reaches the kernels: both paths return NaN in the same places
    (the stable softmax's maximum takes the NaN, as np.max does)."""
    cfg = H.preset("tiny", loss=loss, attend_to_query=attend_to_query)
    batch = H.sample_batch(H.make_data(cfg, 0), 4, np.random.default_rng(1))
    Q = 0.3 * np.random.default_rng(2).standard_normal((cfg.dim, cfg.dim))
    for i, j in ((0, 0), (cfg.dim - 1, 1)):  # the first score of a prompt, and a later one
        bad = Q.copy()
        bad[i, j] = np.nan
        with np.errstate(invalid="ignore"):
            r1 = H.loss_and_grads({"Q": bad}, batch, cfg, "numpy", check=False, return_aux=True)
        r2 = H.loss_and_grads({"Q": bad}, batch, cfg, "numba", check=False, return_aux=True)
        assert np.isnan(r1[0]) and np.isnan(r2[0])
        np.testing.assert_array_equal(np.isnan(r2[1]["Q"]), np.isnan(r1[1]["Q"]))
        np.testing.assert_array_equal(np.isnan(r2[2]["attn"]), np.isnan(r1[2]["attn"]))
        assert np.isnan(r1[2]["attn"]).any()
    # a NaN in only the first token of one prompt: both paths poison exactly that prompt
    X = batch["X"].copy()
    X[1, 0, 0] = np.nan
    b2 = {**batch, "X": X}
    a1 = H.loss_and_grads({"Q": Q}, b2, cfg, "numpy", check=False, return_aux=True)[2]["attn"]
    a2 = H.loss_and_grads({"Q": Q}, b2, cfg, "numba", check=False, return_aux=True)[2]["attn"]
    np.testing.assert_array_equal(np.isnan(a2), np.isnan(a1))
    assert np.isnan(a1[1]).all() and not np.isnan(np.delete(a1, 1, axis=0)).any()


def test_bad_values_specific_to_spec_H():
    rng = np.random.default_rng(0)
    cfg = H.Config(K=2, d=4, N=3)
    b = H.sample_prompts(H.make_features(4, 2, rng), [0.5, 0.5], 3, 2, rng)
    Q = np.zeros((4, 4))
    with pytest.raises(ValueError, match="params\\['Q'\\] must be square"):
        H.loss_and_grads({"Q": np.zeros((4, 3))}, b, cfg)
    with pytest.raises(ValueError, match="batch\\['xq'\\]"):
        H.loss_and_grads({"Q": Q}, dict(b, xq=np.zeros((2, 3))), cfg)
    with pytest.raises(ValueError, match="batch is missing \\['yq'\\]"):
        H.loss_and_grads({"Q": Q}, {k: b[k] for k in ("X", "xq", "y")}, cfg)
    with pytest.raises(TypeError, match="Config"):
        H.loss_and_grads({"Q": Q}, b, {"loss": "sample"})
    with pytest.raises(ValueError, match="loss must be one of"):
        H.Config(loss="mse")
    with pytest.raises(ValueError, match="d must be an int ≥ K"):
        H.Config(K=5, d=3)
    with pytest.raises(ValueError, match="p1 must be in"):
        H.Config(p_kind="imbalanced", p1=1.5)
    with pytest.raises(ValueError, match="population must be one of"):
        H.Config(population="sampled")
    with pytest.raises(ValueError, match="use population='monte_carlo'"):
        H.Config(K=10, N=100, population="exact")
    with pytest.raises(ValueError, match="no query column"):
        H.Config(population="mean_field", attend_to_query=True)
    with pytest.raises(ValueError, match="M must be an int"):
        H.preset("balanced", M=0)
    with pytest.raises(ValueError, match="unknown huang2023 preset"):
        H.preset("nope")
    with pytest.raises(ValueError, match="p must be non-negative and sum to 1"):
        H.sample_prompts(np.eye(3, 2), [0.7, 0.7], 3, 2, 0)
    for dt in (np.int64, np.float16, np.complex128):
        with pytest.raises(TypeError, match="dtype"):
            H.init_params(cfg, 0, dtype=dt)
    assert H.init_params(cfg, 0, dtype=np.float32)["Q"].dtype == np.float32
    with pytest.raises(TypeError, match="rng"):
        H.sample_batch(H.make_data(cfg, 0), 2, 0)


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
    # the contract pair: make_data holds V, p, N of the config; sample_batch is sample_prompts
    cfg = H.preset("tiny", p1=0.7)
    data = H.make_data(cfg, 3)
    assert data.V.shape == (cfg.dim, cfg.K) and data.N == cfg.N
    np.testing.assert_array_equal(data.p, cfg.p())
    np.testing.assert_allclose(data.V.T @ data.V, np.eye(cfg.K), atol=1e-14)
    b1 = H.sample_batch(data, 5, np.random.default_rng(9))
    b2 = H.sample_prompts(data.V, data.p, data.N, 5, np.random.default_rng(9))
    for k in b2:
        np.testing.assert_array_equal(b1[k], b2[k])


@pytest.mark.parametrize("loss", ["sample", "Ew"])
@pytest.mark.parametrize("attend_to_query", [False, True])
def test_numba_equals_numpy_at_the_benchmark_size(loss, attend_to_query):
    """The blocked kernels at the benchmark size (K = d = 10, N = 102, B = 257: N and B not
    multiples of the four-row blocks)."""
    K, N, B = 10, 102, 257
    cfg = H.Config(K=K, N=N, loss=loss, attend_to_query=attend_to_query)
    V = H.make_features(K, K, 0)
    b = H.sample_prompts(V, np.full(K, 1.0 / K), N, B, 1)
    params = {"Q": 0.5 * np.random.default_rng(2).standard_normal((K, K))}
    batch = {k: b[k] for k in ("X", "xq", "y", "yq")}
    v1, g1, a1 = H.loss_and_grads(params, batch, cfg, return_aux=True)
    v2, g2, a2 = H.loss_and_grads(params, batch, cfg, "numba", return_aux=True)
    assert v2 == pytest.approx(v1, rel=1e-12)
    np.testing.assert_allclose(a2["attn"], a1["attn"], rtol=1e-12, atol=1e-15)
    assert np.max(np.abs(g2["Q"] - g1["Q"])) <= 1e-12 * np.max(np.abs(g1["Q"]))


@pytest.mark.parametrize("backend", ["numba", "numba_parallel"])
@pytest.mark.parametrize("loss", ["sample", "Ew"])
def test_unchecked_path_refuses_wrong_shapes_instead_of_reading_out_of_bounds(backend, loss):
    """check=False skips validation, not the kernel's O(1) shape checks: a short xq, y, yq or
    weights, or tokens of the wrong width, raise ValueError naming the array."""
    cfg = H.preset("tiny", loss=loss)
    batch = H.sample_batch(H.make_data(cfg, 0), 6, np.random.default_rng(1))
    Q = {"Q": 0.3 * np.random.default_rng(2).standard_normal((cfg.dim, cfg.dim))}
    H.loss_and_grads(Q, batch, cfg, backend, check=False)  # the well-shaped call runs
    bad = [
        ("batch\\['xq'\\]", Q, {**batch, "xq": batch["xq"][:2]}, None),
        ("batch\\['y'\\]", Q, {**batch, "y": batch["y"][:, :-1]}, None),
        ("batch\\['yq'\\]", Q, {**batch, "yq": batch["yq"][:1]}, None),
        ("batch\\['X'\\]", Q, {**batch, "X": batch["X"][:, :, :-1]}, None),
        ("params\\['Q'\\]", {"Q": Q["Q"][:-1]}, batch, None),
        ("weights", Q, batch, np.full(3, 1 / 3)),
    ]
    for name, p, b, w in bad:
        with pytest.raises(ValueError, match=name):
            H.loss_and_grads(p, b, cfg, backend, check=False, weights=w)
