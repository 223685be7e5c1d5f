"""Spec Y model (Y4–Y8): the full multi-head layer equals Y5, the closed-form loss equals its
per-token definition, gradients vs central differences, NumPy == Numba, init Y6, input errors."""

from __future__ import annotations

import numpy as np
import pytest
from _fd import EPS, RTOL, fd_noise_floor
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl import yang2024 as Y
from refimpl.core import gradcheck


@st.composite
def y_case(draw):
    """(params, batch) with random sizes; w random and nonzero (at w = 0 the Q gradient is 0)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    K = draw(st.integers(2, 7))
    N = draw(st.integers(1, K))
    d = draw(st.integers(1, 4))
    m = draw(st.integers(1, 4))
    H = draw(st.integers(1, 3))
    tau = draw(st.sampled_from([0.01, 0.1, 1.0]))
    scale = draw(st.sampled_from([0.3, 1.0, 3.0]))
    V_all, Z_all = Y.make_dictionary(K, d, m, rng)
    params = {"Q": scale * rng.standard_normal((H, d, d)), "w": rng.standard_normal((H, K))}
    pr = Y.sample_prompts(Z_all, N, tau, 3, rng)
    batch = {"V_all": V_all, "Z_all": Z_all, "N": N, "tau": tau, "y": pr["y"], "y_all": pr["y_all"]}
    return params, batch


def brute_A_hat(Q, w, V_all, N):
    """Â from spec Y5 with explicit loops: â_{n,k} = Σ_h w_{h,k} softmax_n(v_nᵀ Q_h v_k)."""
    H = Q.shape[0]
    K = V_all.shape[1]
    A = np.zeros((N, K))
    for h in range(H):
        for k in range(K):
            s = np.array([V_all[:, n] @ Q[h] @ V_all[:, k] for n in range(N)])
            e = np.exp(s - s.max())
            A[:, k] += w[h, k] * e / e.sum()
    return A


def brute_population_loss(Q, w, batch):
    """(1/2K) Σ_k E(ŷ_k − y_k)², E over λ (E λλᵀ = I) and ε, per token (spec Y7 derivation):
    ‖Zâ − z_k‖² + mτ‖â − e_k‖² for k ≤ N, ‖Zâ − z_k‖² + mτ(‖â‖² + 1) for k > N."""
    V_all, Z_all, N, tau = batch["V_all"], batch["Z_all"], batch["N"], batch["tau"]
    m, K = Z_all.shape
    A = brute_A_hat(Q, w, V_all, N)
    Z = Z_all[:, :N]
    tot = 0.0
    for k in range(K):
        a = A[:, k]
        r = Z @ a - Z_all[:, k]
        tot += r @ r
        if k < N:
            e = np.zeros(N)
            e[k] = 1.0
            tot += m * tau * np.sum((a - e) ** 2)
        else:
            tot += m * tau * (a @ a + 1.0)
    return tot / (2 * K)


def brute_sample_loss(Q, w, batch):
    A = brute_A_hat(Q, w, batch["V_all"], batch["N"])
    r = batch["y"] @ A - batch["y_all"]
    return float(np.sum(r * r) / (2 * A.shape[1] * r.shape[0]))


def scale_of(params, batch):
    """Magnitude of the summed terms (finite-difference noise floor)."""
    w = np.abs(params["w"]).sum(0).max()
    z = np.max(np.abs(batch["Z_all"])) ** 2 * batch["Z_all"].shape[0]
    y = np.max(np.abs(batch["y_all"])) ** 2
    return (1.0 + w) ** 2 * (1.0 + z + y) * (1.0 + np.max(np.abs(params["Q"])))


@pytest.mark.parametrize("loss", ["population", "sample"])
@settings(max_examples=30)
@given(case=y_case())
def test_loss_and_gradients_match_brute_force_and_central_differences(case, loss):
    params, batch = case
    brute = brute_population_loss if loss == "population" else brute_sample_loss
    val, grads = Y.loss_and_grads(params, batch, loss=loss)
    assert val == pytest.approx(brute(params["Q"], params["w"], batch), rel=1e-11, abs=1e-14)
    rep = gradcheck(lambda p: brute(p["Q"], p["w"], batch), params, grads,
                    eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale_of(params, batch)), max_entries=40)
    rep.raise_if_failed()


@pytest.mark.parametrize("loss", ["population", "sample"])
@settings(max_examples=25)
@given(case=y_case())
def test_numpy_equals_numba(case, loss):
    params, batch = case
    v1, g1, a1 = Y.loss_and_grads(params, batch, loss=loss, return_aux=True)
    v2, g2, a2 = Y.loss_and_grads(params, batch, "numba", loss=loss, return_aux=True)
    assert v2 == pytest.approx(v1, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(a2["A_hat"], a1["A_hat"], rtol=1e-12, atol=1e-14)
    for k in ("Q", "w"):
        ref = np.max(np.abs(g1[k])) + 1e-300
        assert np.max(np.abs(g2[k] - g1[k])) <= 1e-12 * max(ref, 1.0), k


@settings(max_examples=30)
@given(case=y_case(), seed=st.integers(0, 2**32 - 1))
def test_full_multihead_layer_equals_y5(case, seed):
    """W^Q_h = M_h⁻ᵀ[Q_h 0] and W^K_h = M_h[I 0] give (W^K_h)ᵀW^Q_h = [Q_h 0; 0 0] with a random
    invertible M_h; W^V_h = (0, 1); W^O = (diag w_1, …, diag w_H). ŷ must equal Âᵀy (≤ 1e−12)."""
    params, batch = case
    rng = np.random.default_rng(seed)
    Q, w, V_all, N = params["Q"], params["w"], batch["V_all"], batch["N"]
    H, d, _ = Q.shape
    W_Q = np.zeros((H, d, d + 1))
    W_K = np.zeros((H, d, d + 1))
    for h in range(H):
        M = np.eye(d) + 0.3 * rng.standard_normal((d, d))
        W_K[h, :, :d] = M
        W_Q[h, :, :d] = np.linalg.solve(M.T, Q[h])  # M⁻ᵀ Q_h, so (M)ᵀ(M⁻ᵀQ_h) = Q_h
    kq = np.einsum("hij,hik->hjk", W_K, W_Q)
    assert np.max(np.abs(kq[:, :d, :d] - Q)) < 1e-10 and np.all(kq[:, d, :] == 0) and np.all(kq[:, :, d] == 0)
    W_V = np.zeros((H, 1, d + 1))
    W_V[:, 0, d] = 1.0
    W_O = np.concatenate([np.diag(w[h]) for h in range(H)], axis=1)  # (K, HK)
    A_hat, _ = Y.forward(Q, w, V_all, N)
    for y in batch["y"]:
        E = Y.embedding(V_all, y)
        full = Y.full_layer_predict(W_Q, W_K, W_V, W_O, E, N)
        ref = Y.predict(A_hat, y)
        assert np.max(np.abs(full - ref)) <= 1e-12 * max(1.0, np.max(np.abs(ref)))
    # the query rows of E carry label 0: changing them must not matter, changing a prompt label must
    assert np.allclose(A_hat, brute_A_hat(Q, w, V_all, N), rtol=1e-12, atol=1e-14)


def test_init_y6():
    p = Y.init_params(4, 6, 20, seed=3, beta=2.0)
    assert p["Q"].shape == (4, 6, 6) and p["w"].shape == (4, 20)
    assert np.all(p["w"] == 0)
    assert np.std(p["Q"]) == pytest.approx(2.0, rel=0.15)
    q2 = Y.init_params(4, 6, 20, seed=3, beta=2.0)["Q"]
    np.testing.assert_array_equal(p["Q"], q2)
    # at w = 0 the Q gradient vanishes and Â = 0
    V_all, Z_all = Y.make_dictionary(20, 6, 3, 0)
    _, g, aux = Y.loss_and_grads(p, {"V_all": V_all, "Z_all": Z_all, "N": 5, "tau": 0.1}, return_aux=True)
    assert np.all(g["Q"] == 0) and np.all(aux["A_hat"] == 0) and np.max(np.abs(g["w"])) > 1e-3


def test_data_model_y1_y4():
    V_all, Z_all = Y.make_dictionary(30, 5, 4, 0)
    np.testing.assert_allclose(np.linalg.norm(V_all, axis=0), 1.0, rtol=1e-14)
    V2, _ = Y.make_dictionary(30, 5, 4, 0, normalize_tokens=False)
    assert np.max(np.abs(np.linalg.norm(V2, axis=0) - 1.0)) > 0.1
    pr = Y.sample_prompts(Z_all, 6, 0.25, 20000, 1)
    np.testing.assert_array_equal(pr["y"], pr["y_all"][:, :6])
    np.testing.assert_allclose(pr["y_all"], np.einsum("bm,bmk->bk", pr["lam"], Z_all + pr["eps"]), atol=1e-13)
    # ε has variance τ; λ in-domain N(0, I), OOD N(1, 4I)
    assert np.var(pr["eps"]) == pytest.approx(0.25, rel=0.02)
    ood = Y.sample_tasks(4, 20000, 2, kind="ood")
    assert np.mean(ood) == pytest.approx(1.0, abs=0.05) and np.var(ood) == pytest.approx(4.0, rel=0.05)
    rad = Y.sample_tasks(4, 100, 2, kind="rademacher")
    assert set(np.unique(rad)) == {-1.0, 1.0}
    E = Y.embedding(V_all, pr["y"][0])
    assert E.shape == (6, 30) and np.all(E[5, 6:] == 0) and np.all(E[5, :6] == pr["y"][0])


def test_errors_name_the_argument():
    V_all, Z_all = Y.make_dictionary(8, 3, 2, 0)
    p = Y.init_params(2, 3, 8, 0)
    batch = {"V_all": V_all, "Z_all": Z_all, "N": 3, "tau": 0.1}
    with pytest.raises(ValueError, match="H must be"):
        Y.Config(H=0)
    with pytest.raises(ValueError, match="N must be"):
        Y.Config(K=5, N=6)
    with pytest.raises(ValueError, match="tau"):
        Y.Config(tau=-1.0)
    with pytest.raises(ValueError, match="unknown yang2024 preset"):
        Y.preset("nope")
    with pytest.raises(ValueError, match="batch\\['N'\\]"):
        Y.loss_and_grads(p, {**batch, "N": 9})
    with pytest.raises(ValueError, match="params\\['w'\\]"):
        Y.loss_and_grads({"Q": p["Q"], "w": np.zeros((2, 7))}, batch)
    with pytest.raises(ValueError, match="backend"):
        Y.loss_and_grads(p, batch, backend="torch")
    with pytest.raises(ValueError, match="y_all"):
        Y.loss_and_grads(p, batch, loss="sample")
    with pytest.raises(ValueError, match="finite"):
        Y.loss_and_grads({"Q": p["Q"] * np.nan, "w": p["w"]}, batch)
    with pytest.raises(ValueError, match="kind"):
        Y.sample_tasks(2, 3, 0, kind="cauchy")


def test_sample_prompts_without_eps_gives_the_same_labels():
    _, Z_all = Y.make_dictionary(9, 3, 2, 0)
    a = Y.sample_prompts(Z_all, 4, 0.3, 2500, 5)
    b = Y.sample_prompts(Z_all, 4, 0.3, 2500, 5, keep_eps=False)
    assert "eps" not in b
    np.testing.assert_allclose(b["y_all"], a["y_all"], rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(b["y"], b["y_all"][:, :4])


def test_numba_adam_update_equals_the_numpy_update_of_run_adam():
    """kernels.adam_update (the benchmark's fused Adam) == the NumPy update in train.run_adam."""
    from refimpl.yang2024.kernels import adam_update

    rng = np.random.default_rng(7)
    p = rng.standard_normal((3, 4, 4))
    p0 = p.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    p2, m2, v2 = p.copy(), m.copy(), v.copy()
    b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8
    for t in range(1, 6):
        g = rng.standard_normal(p.shape)
        adam_update(p, g, m, v, t, lr, (b1, b2), eps)
        m2 = b1 * m2 + (1 - b1) * g  # the lines of train.run_adam
        v2 = b2 * v2 + (1 - b2) * g**2
        p2 -= lr * (m2 / (1 - b1 ** (t))) / (np.sqrt(v2 / (1 - b2 ** (t))) + eps)
    np.testing.assert_allclose(m, m2, rtol=1e-15, atol=0)
    np.testing.assert_allclose(v, v2, rtol=1e-15, atol=0)
    np.testing.assert_allclose(p, p2, rtol=1e-14, atol=1e-300)
    assert np.min(np.abs(p - p0)) > 1e-6  # every entry moved (the updates ~lr may partly cancel)
    with pytest.raises(ValueError, match="t must be"):
        adam_update(p, g, m, v, 0, lr)
    with pytest.raises(ValueError, match="m must be"):
        adam_update(p, g, m.T, v, 1, lr)


@pytest.mark.parametrize("loss", ["sample", "population"])
def test_numba_equals_numpy_at_the_fig2_size(loss):
    """The stacked-dgemm kernels at the benchmark size (H = 64, N = 30, K = 200, d = 100, B = 256)."""
    from refimpl.yang2024.data import make_dictionary, sample_prompts

    H, N, K, d, m, B = 64, 30, 200, 100, 20, 256
    V_all, Z_all = make_dictionary(K, d, m, 0)
    params = Y.init_params(H, d, K, 1)
    params["w"] = 0.1 * np.random.default_rng(2).standard_normal((H, K))
    pr = sample_prompts(Z_all, N, 0.01, B, 3, keep_eps=False)
    batch = {"V_all": V_all, "N": N, "Z_all": Z_all, "tau": 0.01, "y": pr["y"], "y_all": pr["y_all"]}
    v1, g1, a1 = Y.loss_and_grads(params, batch, loss=loss, return_aux=True)
    v2, g2, a2 = Y.loss_and_grads(params, batch, "numba", loss=loss, return_aux=True)
    assert v2 == pytest.approx(v1, rel=1e-12)
    np.testing.assert_allclose(a2["S"], a1["S"], rtol=1e-12, atol=1e-15)
    for k in ("Q", "w"):
        assert np.max(np.abs(g2[k] - g1[k])) <= 1e-12 * np.max(np.abs(g1[k])), k
