"""Spec Y model (Y4–Y8), what is specific to it: the full multi-head layer equals Y5, the closed-form
and sample losses equal their per-token definitions (explicit loops), ŷ = yÂ through the attention
pair, init Y6, the data model, NaN propagation on both backends, model-specific input errors, and
NumPy == Numba at the benchmark size. The generic checks (gradients vs central differences, NumPy ==
Numba on random cases, bad inputs, determinism, golden round trip) are tests/test_contract.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl import yang2024 as Y


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


def cfg_for(params, batch, loss="population"):
    H, d, _ = params["Q"].shape
    m, K = batch["Z_all"].shape
    return Y.Config(K=K, N=batch["N"], d=d, m=m, H=H, tau=batch["tau"], loss=loss)


@pytest.mark.parametrize("loss", ["population", "sample"])
@settings(max_examples=30)
@given(case=y_case())
def test_loss_equals_its_per_token_definition(case, loss):
    params, batch = case
    brute = brute_population_loss if loss == "population" else brute_sample_loss
    cfg = cfg_for(params, batch, loss)
    for backend in ("numpy", "numba"):
        val, _, aux = Y.loss_and_grads(params, batch, cfg, backend, return_aux=True)
        assert val == pytest.approx(brute(params["Q"], params["w"], batch), rel=1e-11, abs=1e-14)
        np.testing.assert_allclose(aux["A_hat"], brute_A_hat(params["Q"], params["w"], batch["V_all"], batch["N"]),
                                   rtol=1e-12, atol=1e-14)
        # ŷ = yÂ (spec Y5) is the output for the prompts in the batch, whichever loss is optimised
        np.testing.assert_allclose(aux["out"], batch["y"] @ aux["A_hat"], rtol=1e-13, atol=1e-14)
        assert aux["scale"] >= abs(val)
    if loss == "population":  # L = L* + (1/2K)Σ‖Z̄(â_k − a_k)‖²
        assert val == pytest.approx(aux["pop"].L_star + aux["excess"], rel=1e-14)


@settings(max_examples=30)
@given(case=y_case())
def test_forward_is_the_attention_pair_times_the_labels(case):
    """forward/backward (ŷ = yÂ) and attention_forward/backward (θ → Â) are one chain: the
    gradient of Σ dŷ ⊙ ŷ is the attention backward of ∂Â = yᵀ dŷ."""
    params, batch = case
    cfg = cfg_for(params, batch)
    y_hat, cache = Y.forward(params, batch, cfg)
    A_hat, att = Y.attention_forward(params["Q"], params["w"], batch["V_all"], batch["N"])
    np.testing.assert_array_equal(y_hat, batch["y"] @ A_hat)
    np.testing.assert_array_equal(cache["attn"], att["S"])
    np.testing.assert_allclose(cache["attn"].sum(axis=1), 1.0, rtol=1e-14)  # softmax over the N prompt tokens
    dy = np.random.default_rng(0).standard_normal(y_hat.shape)
    g1, g2 = Y.backward(dy, cache), Y.attention_backward(batch["y"].T @ dy, att)
    for k in ("Q", "w"):
        np.testing.assert_array_equal(g1[k], g2[k])


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
    A_hat, _ = Y.attention_forward(Q, w, V_all, N)
    for y in batch["y"]:
        E = Y.embedding(V_all, y)
        full = Y.full_layer_predict(W_Q, W_K, W_V, W_O, E, N)
        ref = y @ A_hat
        assert np.max(np.abs(full - ref)) <= 1e-12 * max(1.0, np.max(np.abs(ref)))
    # the query rows of E carry label 0: changing them must not matter, changing a prompt label must
    assert np.allclose(A_hat, brute_A_hat(Q, w, V_all, N), rtol=1e-12, atol=1e-14)


def test_init_y6():
    cfg = Y.Config(K=20, N=5, d=6, m=3, H=4, beta=2.0)
    p = Y.init_params(cfg, seed=3)
    assert p["Q"].shape == (4, 6, 6) and p["w"].shape == (4, 20)
    assert np.all(p["w"] == 0)
    assert np.std(p["Q"]) == pytest.approx(2.0, rel=0.15)
    np.testing.assert_array_equal(p["Q"], Y.init_params(cfg, seed=3)["Q"])
    np.testing.assert_array_equal(p["Q"], 2.0 * np.random.default_rng(3).standard_normal((4, 6, 6)))  # β N(0, 1)
    p32 = Y.init_params(cfg, seed=3, dtype=np.float32)
    assert p32["Q"].dtype == p32["w"].dtype == np.float32
    np.testing.assert_array_equal(p32["Q"], p["Q"].astype(np.float32))
    for bad in (np.int64, np.float16, "int32", bool):
        with pytest.raises(TypeError, match="dtype"):
            Y.init_params(cfg, 0, dtype=bad)
    # at w = 0 the Q gradient vanishes and Â = 0
    data = Y.make_data(cfg, 0)
    _, g, aux = Y.loss_and_grads(p, data, cfg, return_aux=True)
    assert np.all(g["Q"] == 0) and np.all(aux["A_hat"] == 0) and np.max(np.abs(g["w"])) > 1e-3
    # float32 parameters give float32 gradients on both backends (both compute in float32)
    for backend in ("numpy", "numba"):
        _, g32 = Y.loss_and_grads({**p32, "w": np.full((4, 20), 0.1, np.float32)}, data, cfg, backend)
        assert g32["Q"].dtype == g32["w"].dtype == np.float32


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


def test_make_data_and_sample_batch_are_the_explicit_size_draws():
    cfg = Y.preset("small", normalize_tokens=False)
    data = Y.make_data(cfg, 4)
    V_all, Z_all = Y.make_dictionary(cfg.K, cfg.d, cfg.m, 4, normalize_tokens=False)
    np.testing.assert_array_equal(data["V_all"], V_all)
    np.testing.assert_array_equal(data["Z_all"], Z_all)
    assert (data["N"], data["tau"]) == (cfg.N, cfg.tau)
    b = Y.sample_batch(data, 7, np.random.default_rng(5), kind="ood")
    pr = Y.sample_prompts(Z_all, cfg.N, cfg.tau, 7, np.random.default_rng(5), kind="ood", keep_eps=False)
    np.testing.assert_array_equal(b["y_all"], pr["y_all"])
    np.testing.assert_array_equal(b["y"], pr["y"])
    assert b["V_all"] is data["V_all"] and b["N"] == cfg.N
    with pytest.raises(ValueError, match="data lacks"):
        Y.sample_batch({"V_all": V_all}, 3, np.random.default_rng(0))
    with pytest.raises(TypeError, match="data"):
        Y.sample_batch([V_all, Z_all], 3, np.random.default_rng(0))


def test_model_specific_errors():
    cfg = Y.Config(K=8, N=3, d=3, m=2, H=2)
    data = Y.make_data(cfg, 0)
    p = Y.init_params(cfg, 0)
    with pytest.raises(ValueError, match="H must be"):
        Y.Config(H=0)
    with pytest.raises(ValueError, match="N must be"):
        Y.Config(K=5, N=6)
    with pytest.raises(ValueError, match="tau"):
        Y.Config(tau=-1.0)
    for field, bad in (("loss", "hinge"), ("optimizer", "sgd"), ("lr", 0.0), ("batch_size", 0), ("n_train", 2.5),
                       ("record_every", 0)):
        with pytest.raises(ValueError, match=field):
            Y.preset("tiny", **{field: bad})
    with pytest.raises(ValueError, match="unknown yang2024 preset"):
        Y.preset("nope")
    for backend in ("numpy", "numba"):
        with pytest.raises(ValueError, match="batch\\['N'\\]"):
            Y.loss_and_grads(p, {**data, "N": 9}, cfg, backend)
        with pytest.raises(ValueError, match="y_all"):
            Y.loss_and_grads(p, data, cfg.replace(loss="sample"), backend)
        with pytest.raises(ValueError, match="batch\\['y'\\]"):
            b = Y.sample_batch(data, 4, np.random.default_rng(0))
            Y.loss_and_grads(p, {**b, "y": b["y"][:3]}, cfg.replace(loss="sample"), backend)
        with pytest.raises(ValueError, match="pop is for"):
            Y.loss_and_grads(p, data, cfg, backend, pop=Y.population(data["Z_all"], 2, 0.1))
    with pytest.raises(ValueError, match="inputs\\['y'\\]|batch\\['y'\\]"):
        Y.forward(p, data, cfg)  # no prompts: Â alone is attention_forward
    with pytest.raises(ValueError, match="kind"):
        Y.sample_tasks(2, 3, 0, kind="cauchy")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_numba_kernels_propagate_non_finite_values_like_numpy(bad):
    """A non-finite score makes the same softmax columns NaN on both paths, and
    the loss is NaN on both (training then raises NonFiniteError; tests/test_yang2024_train.py)."""
    cfg = Y.Config(K=8, N=3, d=3, m=2, H=2)
    data = Y.make_data(cfg, 0)
    p = Y.init_params(cfg, 1)
    p["w"] = p["w"] + 0.5
    p["Q"][1, 0, 0] = bad
    out = {}
    for backend in ("numpy", "numba"):
        with np.errstate(all="ignore"):
            val, g, aux = Y.loss_and_grads(p, data, cfg, backend, check=False, return_aux=True)
        out[backend] = (val, aux["attn"], aux["A_hat"], g)
    (v1, S1, A1, g1), (v2, S2, A2, g2) = out["numpy"], out["numba"]
    assert np.isnan(v1) and np.isnan(v2)
    np.testing.assert_array_equal(np.isnan(S1), np.isnan(S2))
    np.testing.assert_array_equal(np.isnan(A1), np.isnan(A2))
    assert np.isnan(S1[1]).any() and not np.isnan(S1[0]).any()  # only the head with the bad entry
    for k in g1:
        np.testing.assert_array_equal(np.isfinite(g1[k]), np.isfinite(g2[k]))


def test_sample_prompts_without_eps_gives_the_same_labels():
    _, Z_all = Y.make_dictionary(9, 3, 2, 0)
    a = Y.sample_prompts(Z_all, 4, 0.3, 2500, 5)
    b = Y.sample_prompts(Z_all, 4, 0.3, 2500, 5, keep_eps=False)
    assert "eps" not in b
    np.testing.assert_allclose(b["y_all"], a["y_all"], rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(b["y"], b["y_all"][:, :4])


@pytest.mark.parametrize("loss", ["sample", "population"])
def test_numba_equals_numpy_at_the_fig2_size(loss):
    """The stacked-dgemm kernels at the benchmark size (H = 64, N = 30, K = 200, d = 100, B = 256)."""
    cfg = Y.preset("fig2", loss=loss)
    data = Y.make_data(cfg, 0)
    params = Y.init_params(cfg, 1)
    params["w"] = 0.1 * np.random.default_rng(2).standard_normal((cfg.H, cfg.K))
    batch = Y.sample_batch(data, cfg.batch_size, np.random.default_rng(3))
    v1, g1, a1 = Y.loss_and_grads(params, batch, cfg, return_aux=True)
    v2, g2, a2 = Y.loss_and_grads(params, batch, cfg, "numba", return_aux=True)
    assert v2 == pytest.approx(v1, rel=1e-12)
    np.testing.assert_allclose(a2["attn"], a1["attn"], rtol=1e-12, atol=1e-15)
    for k in ("Q", "w"):
        assert np.max(np.abs(g2[k] - g1[k])) <= 1e-12 * np.max(np.abs(g1[k])), k


@pytest.mark.parametrize("backend", ["numba", "numba_parallel"])
@pytest.mark.parametrize("loss", ["sample", "population"])
def test_unchecked_path_refuses_wrong_shapes_instead_of_reading_out_of_bounds(loss, backend):
    """check=False skips validation, not the kernels' O(1) shape checks: w for the wrong number of
    tokens, a dictionary of the wrong width, Q not (H, d, d) or N > K raise ValueError naming the
    array instead of being indexed out of bounds."""
    cfg = Y.Config(K=8, N=3, d=4, m=2, H=2, loss=loss)
    data = Y.make_data(cfg, 0)
    batch = {**data, **Y.sample_batch(data, 5, np.random.default_rng(1))} if loss == "sample" else data
    p = Y.init_params(cfg, 1)
    p["w"] = p["w"] + 0.3
    Y.loss_and_grads(p, batch, cfg, backend, check=False)  # the well-shaped call runs
    bad = [
        ("params\\['w'\\]", {**p, "w": p["w"][:, :-1]}, batch),
        ("params\\['Q'\\]", {**p, "Q": p["Q"][:, :, :-1]}, batch),
        ("batch\\['V_all'\\]", p, {**batch, "V_all": batch["V_all"][:-1]}),
        ("N'?\\]? must be an int with 1 ≤ N ≤ K", p, {**batch, "N": 9}),
    ]
    for name, pp, b in bad:
        with pytest.raises(ValueError, match=name):
            Y.loss_and_grads(pp, b, cfg, backend, check=False)
