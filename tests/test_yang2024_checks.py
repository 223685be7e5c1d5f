"""Spec Y10–Y14: Proposition 1 as hypothesis properties, and the checks of Theorems 1–2, Section
3.2 and the one-head limit on the small instance (K = 12, N = 4, d = 5, m = 3, τ = 0.1), each with
a control that must make the check fail."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refimpl import yang2024 as Y
from refimpl.yang2024 import checks as C


@st.composite
def dictionary(draw, H_rel):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    N = draw(st.integers(2, 4))
    K = draw(st.integers(N, N + 4))
    d = draw(st.integers(2, 4))
    m = draw(st.integers(1, 3))
    H = max(1, N + draw(H_rel))
    V_all, Z_all = Y.make_dictionary(K, d, m, rng)
    Q = rng.standard_normal((H, d, d))  # spec Y6 Gaussian Q⁰
    return Q, V_all, Y.population(Z_all, N, draw(st.sampled_from([0.01, 0.1, 1.0])))


@settings(max_examples=60)
@given(case=dictionary(st.integers(0, 3)))
def test_y10_zeta0_positive_for_H_at_least_N(case):
    Q, V_all, pop = case
    z, big = C.zeta0(Q, V_all, pop)
    assert z / big > C.Y10_ZERO_REL, f"ζ₀/‖B‖² = {z / big:.2e} with H = {Q.shape[0]} ≥ N = {pop.N}"


@settings(max_examples=60)
@given(case=dictionary(st.integers(-3, -1)))
def test_y10_zeta0_zero_for_H_below_N(case):
    Q, V_all, pop = case
    assume(Q.shape[0] < pop.N)
    z, big = C.zeta0(Q, V_all, pop)
    assert z / big < C.Y10_ZERO_REL


@settings(max_examples=60)
@given(case=dictionary(st.integers(0, 3)), data=st.data())
def test_y10_zeta0_zero_for_two_equal_prompt_tokens(case, data):
    Q, V_all, pop = case
    i, j = data.draw(st.lists(st.integers(0, pop.N - 1), min_size=2, max_size=2, unique=True))
    V = V_all.copy()
    V[:, j] = V[:, i]
    z, big = C.zeta0(Q, V, pop)
    assert z / big < C.Y10_ZERO_REL


def test_y10_check_on_small_instance():
    c = C.check_y10(C.measure_y10())
    assert c.verdict == "pass", c.measured
    bad = C.measure_y10(Hs=(2, 3))  # no H ≥ N: nothing positive to show, the check must not pass
    bad["H"], bad["rel"] = [4], [0.0]
    assert C.check_y10(bad).verdict == "fail"


@pytest.fixture(scope="module")
def y11():
    return C.measure_y11()


def test_y11_linear_convergence_and_stall(y11):
    a, b = C.check_y11(y11)
    print(a.measured, "|", b.measured)
    assert a.verdict == "pass" and b.verdict == "pass"
    assert a.numbers["final_fast"] < 1e-20 and a.numbers["r2"] > 0.999 and a.numbers["rate"] > 0
    assert b.numbers["final_stall"] > 1e-4
    # H = N = 4 also converges, more slowly than H = 8 at the same step
    assert 0 < a.numbers["rates"]["4"] < a.numbers["rates"]["8"]
    # control: a truncated run does not reach 1e-20
    short = dict(y11, t={8: y11["t"][8][:20], 2: y11["t"][2]}, excess={8: y11["excess"][8][:20], 2: y11["excess"][2]},
                 H=[8, 2])
    assert C.check_y11(short)[0].verdict == "fail"


def test_y12_ridge_after_training(y11):
    m = C.measure_y12(y11["params"][8], y11["batch"])
    c = C.check_y12(m)
    print(c.measured)
    assert c.verdict == "pass" and m["in"]["mean"] <= 1e-10 and m["ood"]["mean"] <= 1e-10
    assert m["ood"]["mean"] > m["in"]["mean"]  # OOD prompts are larger (‖λ‖ bigger)
    # control: the H = 2 model (stalled) is far from ridge regression
    assert C.check_y12(C.measure_y12(y11["params"][2], y11["batch"])).verdict == "fail"


def test_y13_gap_minimum_at_N_equals_m():
    m = C.measure_y13(K=60, d=20, m=20, tau=0.01, Ns=range(10, 31, 2), n_prompts=50)
    c = C.check_y13(m)
    print(c.measured)
    assert c.verdict == "pass"
    i = m["N"].index(20)
    assert m["gap"][i] <= 1e-12 and min(m["gap"][:i] + m["gap"][i + 1:]) > 1e-6
    # control: without N = m in the sweep the minimum is not 0
    m2 = C.measure_y13(K=60, d=20, m=20, tau=0.01, Ns=[10, 15, 25, 30], n_prompts=50)
    assert C.check_y13(m2).verdict == "fail"


def test_y14_one_head_bounded_away_from_zero():
    m = C.measure_y14(steps=3000)
    c = C.check_y14(m)
    print(c.measured)
    assert c.verdict == "pass" and m["bound"] > 1e-3
    # the bound is a true lower bound: no H = 1 parameter beats it (random search)
    rng = np.random.default_rng(0)
    cfg = Y.preset("small")
    V_all, Z_all = Y.make_dictionary(cfg.K, cfg.d, cfg.m, 0)
    pop = Y.population(Z_all, cfg.N, cfg.tau)
    from refimpl.yang2024.population import excess_and_grad

    for _ in range(200):
        A_hat, _ = Y.attention_forward(3 * rng.standard_normal((1, cfg.d, cfg.d)),
                                       3 * rng.standard_normal((1, cfg.K)), V_all, cfg.N)
        assert excess_and_grad(A_hat, pop)[0] >= m["bound"] * (1 - 1e-12)
    # control: with several heads the same instance goes below the H = 1 bound
    assert C.check_y14(dict(m, final=m["bound"] / 2)).verdict == "fail"


def test_y11_scaling_is_reported_with_finite_rates():
    m = C.measure_y11_scaling(Ks=(12, 24), Hs=(8, 16), steps=4000)
    c = C.check_y11_scaling(m)
    assert c.verdict == "info"
    assert all(np.isfinite(v) and v > 0 for v in [*m["K"].values(), *m["H"].values()])
    assert m["K"][12] == pytest.approx(m["H"][8], rel=1e-12)  # the same run, two ways


def _floor_measure(finals, late):
    import numpy as np

    Hs = sorted(finals)
    return {"H": Hs, "N": 10, "lr": 1e-2, "steps": 100,
            "t": {H: np.arange(3) for H in Hs},
            "excess": {H: np.array([1.0, 0.5, finals[H]]) for H in Hs}, "late_fall": late}


def test_fig4_floor_check_both_sides():
    from refimpl.yang2024.checks import check_fig4_floor

    # H < N flat at 1e-2, H ≥ N at 1e-5: a floor
    ok = check_fig4_floor(_floor_measure({4: 1e-2, 8: 2e-2, 16: 1e-5}, {4: 0.01, 8: 0.0, 16: 0.9}))
    assert ok.verdict == "pass"
    # one H < N run reaches the H ≥ N level: no floor
    bad = check_fig4_floor(_floor_measure({4: 1e-2, 8: 2e-5, 16: 1e-5}, {4: 0.01, 8: 0.0, 16: 0.9}))
    assert bad.verdict == "fail" and "H=8: no" in bad.measured
    # high but still falling (not yet at a floor)
    falling = check_fig4_floor(_floor_measure({4: 1e-2, 16: 1e-5}, {4: 0.3, 16: 0.9}))
    assert falling.verdict == "fail"


def test_fig4_floor_measure_runs_and_finds_the_small_H_floor():
    """Tiny instance: H = 1 with N = 4 cannot fit (Y14-like), H = 8 ≥ N goes far below."""
    from refimpl.yang2024.checks import measure_fig4_floor
    from refimpl.yang2024.config import Config

    cfg = Config(K=12, N=4, d=5, m=3, H=8, tau=0.1)
    m = measure_fig4_floor(cfg, (1, 8), lr=1e-2, steps=1500, record_every=50, backend="numpy")
    assert m["excess"][1][-1] > 10 * m["excess"][8][-1]
    assert set(m["late_fall"]) == {1, 8}
