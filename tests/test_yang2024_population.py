"""Spec Y7 closed-form population loss against Monte Carlo over λ and ε (Gaussian and Rademacher
λ), the optimum Â = A (Lemma 5) and the ridge predictors of Y12–Y13."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl import yang2024 as Y
from refimpl.yang2024.population import excess_and_grad

MC_PROMPTS = 200_000  # per case: standard error ≈ 0.3 % of the loss
Z_LIMIT = 3.0  # the issue: within three standard errors


def mc_loss(params, V_all, Z_all, N, tau, kind, seed):
    pr = Y.sample_prompts(Z_all, N, tau, MC_PROMPTS, seed, kind=kind)
    A_hat, _ = Y.attention_forward(params["Q"], params["w"], V_all, N)
    r = pr["y"] @ A_hat - pr["y_all"]  # (B, K)
    per = np.sum(r * r, axis=1) / (2 * Z_all.shape[1])  # (B,)
    return per.mean(), per.std(ddof=1) / np.sqrt(per.size)


@pytest.mark.parametrize("kind", ["in", "rademacher"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_matches_monte_carlo(kind, seed):
    rng = np.random.default_rng(100 + seed)
    K, N, d, m, H, tau = 9, 4, 3, 3, 2, 0.2
    V_all, Z_all = Y.make_dictionary(K, d, m, rng)
    params = {"Q": rng.standard_normal((H, d, d)), "w": 0.7 * rng.standard_normal((H, K))}
    batch = {"V_all": V_all, "Z_all": Z_all, "N": N, "tau": tau}
    L, _, aux = Y.loss_and_grads(params, batch, Y.Config(K=K, N=N, d=d, m=m, H=H, tau=tau), return_aux=True)
    mean, se = mc_loss(params, V_all, Z_all, N, tau, kind, seed)
    z = (mean - L) / se
    print(f"spec Y7 MC kind={kind} seed={seed}: closed={L:.6f} mc={mean:.6f} se={se:.2e} z={z:+.2f}")
    assert abs(z) <= Z_LIMIT
    # the extracted paper text omits +mτ in c'_k: that version is rejected by the same data
    L_omit = L - (K - N) * m * tau / (2 * K)
    assert abs((mean - L_omit) / se) > 2 * Z_LIMIT


def test_optimum_is_A_and_L_ge_L_star():
    rng = np.random.default_rng(5)
    V_all, Z_all = Y.make_dictionary(10, 4, 3, rng)
    pop = Y.population(Z_all, 4, 0.1)
    np.testing.assert_array_equal(pop.A[:, :4], np.eye(4))
    assert np.all(pop.c[4:] > 0) and pop.L_star > 0
    ex, R = excess_and_grad(pop.A, pop)
    assert ex == 0 and np.all(R == 0)
    for _ in range(20):
        ex, _ = excess_and_grad(pop.A + rng.standard_normal(pop.A.shape), pop)
        assert ex > 0
    # a_k minimises the per-token quadratic (spec Y7): the brute minimum over â equals c'_k
    Z = Z_all[:, :4]
    for k in range(4, 10):
        a = np.linalg.lstsq(np.vstack([Z, np.sqrt(3 * 0.1) * np.eye(4)]),
                            np.concatenate([Z_all[:, k], np.zeros(4)]), rcond=None)[0]
        np.testing.assert_allclose(a, pop.A[:, k], rtol=1e-10)
        val = np.sum((Z @ a - Z_all[:, k]) ** 2) + 3 * 0.1 * (a @ a + 1)
        assert val == pytest.approx(pop.c[k], rel=1e-10)


def test_ridge_predictor_is_A_transpose_y():
    """Spec Y12: Aᵀy = (y, Z_Qᵀ λ̂) with λ̂ = (ZZᵀ + mτ I)⁻¹ Z y."""
    rng = np.random.default_rng(6)
    K, N, m, tau = 15, 5, 3, 0.3
    _, Z_all = Y.make_dictionary(K, 4, m, rng)
    pop = Y.population(Z_all, N, tau)
    y = rng.standard_normal((7, N))
    np.testing.assert_allclose(Y.ridge_predict(Z_all, N, y, m * tau), y @ pop.A, rtol=1e-10, atol=1e-12)
    # with another regulariser the two differ
    assert np.max(np.abs(Y.ridge_predict(Z_all, N, y, N * tau) - y @ pop.A)) > 1e-3
