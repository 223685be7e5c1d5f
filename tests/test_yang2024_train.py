"""Spec Y9 training: one GD step is exactly (η_Q, η_w = γ²η_Q); Adam is refimpl.core.optim.Adam;
Adam on the closed form and on minibatches lowers L − L*; ``train`` is run_gd / run_adam with the
documented streams; the Trajectory it returns; non-finite values raise NonFiniteError on both
backends; argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl import yang2024 as Y
from refimpl.core.errors import NonFiniteError
from refimpl.core.optim import Adam


@pytest.fixture(scope="module")
def small():
    cfg = Y.preset("small")
    return cfg, Y.make_data(cfg, 0)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_gd_step_uses_eta_w_equal_gamma_squared_eta_Q(small, backend):
    cfg, data = small
    rng = np.random.default_rng(0)
    p = {"Q": rng.standard_normal((3, cfg.d, cfg.d)), "w": rng.standard_normal((3, cfg.K))}
    eta, gamma = 0.3, 2.0
    _, g = Y.loss_and_grads(p, data, cfg)
    tr = Y.run_gd(p, data, eta, gamma, 1, backend=backend)
    np.testing.assert_allclose(tr.params["Q"], p["Q"] - eta * g["Q"], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(tr.params["w"], p["w"] - gamma**2 * eta * g["w"], rtol=1e-13, atol=1e-14)
    rec = tr.records
    assert rec["step"].tolist() == [0, 1] and rec["excess"][1] < rec["excess"][0]
    np.testing.assert_allclose(rec["loss"] - tr.extra["L_star"], rec["excess"], rtol=1e-10, atol=1e-14)
    assert tr.history["loss"].tolist() == rec["loss"][:1].tolist() and tr.steps_done == 1
    assert tr.model == "yang2024" and tr.backend == backend and tr.data["N"] == cfg.N


def test_run_adam_is_the_core_adam(small):
    """Three steps of run_adam on Y7 == refimpl.core.optim.Adam on the same gradients, bit for bit."""
    cfg, data = small
    p0 = Y.init_params(cfg.replace(H=3), 1)
    tr = Y.run_adam(p0, data, 1e-2, 3, betas=(0.8, 0.99), adam_eps=1e-7)
    p = {k: v.copy() for k, v in p0.items()}
    opt = Adam(1e-2, (0.8, 0.99), 1e-7)
    for _ in range(3):
        opt.step(p, Y.loss_and_grads(p, data, cfg)[1])
    for k in p:
        np.testing.assert_array_equal(tr.params[k], p[k])


def test_adam_population_and_sample_lower_the_excess(small):
    cfg, data = small
    p0 = Y.init_params(cfg, 1)
    a = Y.run_adam(p0, data, 1e-2, 400, data="population", record_every=100)
    b = Y.run_adam(p0, data, 1e-2, 400, data="sample", batch_size=64, n_train=500, seed=3, record_every=100)
    assert a.records["step"].tolist() == [0, 100, 200, 300, 400] and a.steps_done == 400
    assert a.records["excess"][-1] < 1e-2 * a.records["excess"][0]
    assert b.records["excess"][-1] < 1e-1 * b.records["excess"][0]
    # the minibatch loss estimates the population loss (same L*, sampling noise only)
    assert b.records["loss"][-1] == pytest.approx(b.records["excess"][-1] + b.extra["L_star"], rel=0.5)


def test_run_adam_numba_equals_numpy(small):
    """backend="numba": the Numba loss kernels and the fused Adam; the trajectory matches NumPy's
    (the Adam step is bit-equal, the loss kernels agree to ~1e−15)."""
    cfg, data = small
    p0 = Y.init_params(cfg, 1)
    for kind in ("population", "sample"):
        a = Y.run_adam(p0, data, 1e-2, 100, data=kind, batch_size=16, n_train=64, backend="numpy")
        c = Y.run_adam(p0, data, 1e-2, 100, data=kind, batch_size=16, n_train=64, backend="numba")
        for k in a.params:
            assert np.max(np.abs(a.params[k] - c.params[k])) <= 1e-12 * max(1.0, np.max(np.abs(a.params[k])))
        np.testing.assert_allclose(c.records["loss"], a.records["loss"], rtol=1e-12)


@pytest.mark.parametrize("optimizer,loss", [("gd", "population"), ("gd", "sample"), ("adam", "population"),
                                            ("adam", "sample")])
def test_train_is_run_gd_or_run_adam_with_the_documented_streams(optimizer, loss):
    cfg = Y.preset("tiny", optimizer=optimizer, loss=loss, lr=1e-2, steps=30, record_every=7)
    tr = Y.train(cfg, 4, progress=False)
    data, p0 = Y.make_data(cfg, 4), Y.init_params(cfg, 5)  # dictionary: seed; parameters: seed + 1
    kw = dict(data=loss, batch_size=cfg.batch_size, n_train=cfg.n_train, seed=6, record_every=7)  # pool: seed + 2
    ref = (Y.run_gd(p0, data, cfg.eta_Q, cfg.gamma, 30, **kw) if optimizer == "gd"
           else Y.run_adam(p0, data, cfg.lr, 30, **kw))
    for k in ref.params:
        np.testing.assert_array_equal(tr.params[k], ref.params[k])
    np.testing.assert_array_equal(tr.history["loss"], ref.history["loss"])
    assert tr.config == cfg and tr.seed == 4 and tr.steps_done == 30
    assert tr.records["step"].tolist() == [0, 7, 14, 21, 28, 30]
    assert set(tr.records) == {"step", "loss", "excess"} and tr.extra["L_star"] > 0
    np.testing.assert_array_equal(tr.data["V_all"], data["V_all"])
    assert tr.records["excess"][-1] < tr.records["excess"][0]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_divergence_raises_non_finite_error_naming_step_and_tensor(small, backend):
    cfg, data = small
    p0 = Y.init_params(cfg, 1)
    with pytest.raises(NonFiniteError, match=r"loss \(population\) is not finite at step \d+") as e:
        Y.run_gd(p0, data, 1e3, 1.0, 500, backend=backend)
    assert e.value.step > 1  # it diverged, it did not start non-finite
    with pytest.raises(NonFiniteError, match="not finite at step"):
        Y.train(Y.preset("tiny", eta_Q=1e3, steps=500), 0, backend=backend, progress=False)


def test_overflow_in_the_first_evaluation_is_step_0():
    """Finite but huge parameters (they pass the input check): the loss overflows at step 0, and
    the error says so (no NumPy overflow warning escapes first)."""
    cfg = Y.preset("tiny")
    data = Y.make_data(cfg, 0)
    p = Y.init_params(cfg, 1)
    p["w"] = np.full_like(p["w"], 1e200)  # finite parameters; the loss overflows first
    for backend in ("numpy", "numba"):
        with pytest.raises(NonFiniteError, match="at step 0"):
            with np.errstate(all="ignore"):
                Y.run_gd(p, data, 0.1, 1.0, 3, backend=backend)


def test_optimiser_errors(small):
    cfg, data = small
    p = Y.init_params(cfg.replace(H=2), 0)
    with pytest.raises(ValueError, match="eta_Q"):
        Y.run_gd(p, data, -1.0)
    with pytest.raises(ValueError, match="steps"):
        Y.run_gd(p, data, 1.0, 1.0, 2.5)
    with pytest.raises(ValueError, match="data"):
        Y.run_adam(p, data, 1e-3, 1, data="stream")
    with pytest.raises(ValueError, match="lr"):
        Y.run_adam(p, data, 0.0, 1)
    with pytest.raises(ValueError, match="backend"):
        Y.run_adam(p, data, 1e-3, 1, backend="torch")
    with pytest.raises(ValueError, match="batch"):
        Y.run_gd(p, {"V_all": data["V_all"], "N": 4}, 1.0)
    with pytest.raises(ValueError, match="params\\['w'\\]"):
        Y.run_gd({**p, "w": np.zeros((2, 3))}, data, 1.0)
    with pytest.raises(ValueError, match="seed"):
        Y.train(cfg, -1)
