"""Spec Y9 optimisers: one GD step is exactly (η_Q, η_w = γ²η_Q); Adam on the closed form and on
minibatches of sampled prompts lowers L − L*; argument errors; NumPy == Numba at paper size (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl import yang2024 as Y
from refimpl.yang2024.train import run_adam, run_gd


@pytest.fixture(scope="module")
def small():
    cfg = Y.preset("small")
    V_all, Z_all = Y.make_dictionary(cfg.K, cfg.d, cfg.m, 0)
    return cfg, {"V_all": V_all, "Z_all": Z_all, "N": cfg.N, "tau": cfg.tau}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_gd_step_uses_eta_w_equal_gamma_squared_eta_Q(small, backend):
    cfg, batch = small
    rng = np.random.default_rng(0)
    p = {"Q": rng.standard_normal((3, cfg.d, cfg.d)), "w": rng.standard_normal((3, cfg.K))}
    eta, gamma = 0.3, 2.0
    _, g = Y.loss_and_grads(p, batch)
    tr = run_gd(p, batch, eta, gamma, 1, backend=backend)
    np.testing.assert_allclose(tr.params["Q"], p["Q"] - eta * g["Q"], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(tr.params["w"], p["w"] - gamma**2 * eta * g["w"], rtol=1e-13, atol=1e-14)
    assert tr.loss.shape == (2,) and tr.excess[1] < tr.excess[0]
    np.testing.assert_allclose(tr.loss - tr.L_star, tr.excess, rtol=1e-10, atol=1e-14)


def test_adam_population_and_sample_lower_the_excess(small):
    cfg, batch = small
    p0 = Y.init_params(8, cfg.d, cfg.K, 1)
    a = run_adam(p0, batch, 1e-2, 400, data="population", record_every=100)
    b = run_adam(p0, batch, 1e-2, 400, data="sample", batch_size=64, n_train=500, seed=3, record_every=100)
    assert a.t.tolist() == [0, 100, 200, 300, 400]
    assert a.excess[-1] < 1e-2 * a.excess[0]
    assert b.excess[-1] < 1e-1 * b.excess[0]
    # the minibatch loss estimates the population loss (same L*, sampling noise only)
    assert b.loss[-1] == pytest.approx(b.excess[-1] + b.L_star, rel=0.5)


def test_optimiser_errors(small):
    cfg, batch = small
    p = Y.init_params(2, cfg.d, cfg.K, 0)
    with pytest.raises(ValueError, match="eta_Q"):
        run_gd(p, batch, -1.0)
    with pytest.raises(ValueError, match="steps"):
        run_gd(p, batch, 1.0, 1.0, 2.5)
    with pytest.raises(ValueError, match="data"):
        run_adam(p, batch, 1e-3, 1, data="stream")
    with pytest.raises(ValueError, match="lr"):
        run_adam(p, batch, 0.0, 1)


@pytest.mark.slow
def test_numpy_equals_numba_at_fig2_size():
    cfg = Y.preset("fig2")
    V_all, Z_all = Y.make_dictionary(cfg.K, cfg.d, cfg.m, 0)
    rng = np.random.default_rng(1)
    p = {"Q": rng.standard_normal((cfg.H, cfg.d, cfg.d)), "w": rng.standard_normal((cfg.H, cfg.K))}
    batch = {"V_all": V_all, "Z_all": Z_all, "N": cfg.N, "tau": cfg.tau}
    v1, g1 = Y.loss_and_grads(p, batch)
    v2, g2 = Y.loss_and_grads(p, batch, "numba")
    assert v2 == pytest.approx(v1, rel=1e-12)
    for k in ("Q", "w"):
        assert np.max(np.abs(g2[k] - g1[k])) <= 1e-12 * max(1.0, np.max(np.abs(g1[k]))), k


def test_run_adam_numba_equals_numpy():
    """backend="numba" runs the fused kernels.adam_update; the trajectory matches NumPy's Adam."""
    from refimpl.yang2024.config import Config
    from refimpl.yang2024.data import make_dictionary
    from refimpl.yang2024.model import init_params
    from refimpl.yang2024.train import run_adam

    cfg = Config(K=12, N=4, d=5, m=3, H=8, tau=0.1)
    V, Z = make_dictionary(cfg.K, cfg.d, cfg.m, 0)
    b = {"V_all": V, "Z_all": Z, "N": cfg.N, "tau": cfg.tau}
    p0 = init_params(8, 5, 12, 1)
    for data in ("population", "sample"):
        a = run_adam(p0, b, 1e-2, 100, data=data, batch_size=16, n_train=64, backend="numpy")
        c = run_adam(p0, b, 1e-2, 100, data=data, batch_size=16, n_train=64, backend="numba")
        for k in a.params:
            assert np.max(np.abs(a.params[k] - c.params[k])) <= 1e-12 * max(1.0, np.max(np.abs(a.params[k])))
        np.testing.assert_allclose(c.loss, a.loss, rtol=1e-12)
