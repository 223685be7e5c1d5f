"""Spec H7–H10: the reduction to C and the four population levels, each reproducing the next."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refimpl import huang2023 as H
from refimpl.core.errors import NonFiniteError
from refimpl.huang2023 import population as P

# spec H10 (d = 5, K = 3, N = 6, p = (0.5, 0.25, 0.25), η = 1, Q⁰ = 0)
H10_L = {0: 0.364583333333, 1: 0.347217363907, 10: 0.234363589064}
H10_LK0 = np.array([0.23958333, 0.48958333, 0.48958333])
H10_C1 = np.array([[0.08680556, -0.03472222, -0.03472222],
                   [-0.04340278, 0.04340278, -0.00868056],
                   [-0.04340278, -0.00868056, 0.04340278]])
# the spec prints 12 decimals for L and 8 for L_k, C: those roundings bound the comparison
L_PRINT, C_PRINT = 0.5e-12, 0.5e-8
# the 8-decimal values are rationals (derived by hand from spec H7 at C = 0): checked to 1e−15
H10_LK0_EXACT = np.array([23 / 96, 47 / 96, 47 / 96])
H10_C1_EXACT = np.array([[25 / 288, -5 / 144, -5 / 144],
                         [-25 / 576, 25 / 576, -5 / 576],
                         [-25 / 576, -5 / 576, 25 / 576]])


@pytest.fixture(scope="module")
def h10():
    cfg = H.preset("golden_h10")
    pop = P.exact(cfg.p(), cfg.N)
    return cfg, pop, P.run_gd(pop, cfg.eta, 10)


def test_count_vectors_and_multinomial_weights():
    cv = P.count_vectors(6, 3)
    assert cv.shape == (math.comb(8, 2), 3) and np.all(cv.sum(1) == 6) and len({tuple(r) for r in cv}) == 28
    w = P.multinomial_weights(cv, np.array([0.5, 0.25, 0.25]))
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    i = np.flatnonzero((cv == [2, 2, 2]).all(1))[0]
    assert w[i] == pytest.approx(90 * 0.5**2 * 0.25**4, rel=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_h10_golden_by_exact_enumeration(h10, backend):
    cfg, pop, _ = h10
    tr = P.run_gd(pop, cfg.eta, 10, backend=backend).records
    for t, ref in H10_L.items():
        assert abs(tr["L"][t] - ref) <= L_PRINT, (t, tr["L"][t], ref)
    assert np.max(np.abs(tr["Lk"][0] - H10_LK0)) <= C_PRINT
    assert np.max(np.abs(tr["C"][1] - H10_C1)) <= C_PRINT
    assert np.max(np.abs(tr["Lk"][0] - H10_LK0_EXACT)) <= 1e-15
    assert np.max(np.abs(tr["C"][1] - H10_C1_EXACT)) <= 1e-15


def test_h10_golden_by_full_Q_gd_on_materialised_prompts(h10):
    cfg, pop, traj = h10
    tr = traj.records
    V = H.make_features(cfg.dim, cfg.K, 11)
    full = P.run_gd_full_Q(V, pop, cfg.eta, 10)
    Q, L, Cs = full.params["Q"], full.records["L"], full.records["C"]
    np.testing.assert_array_equal(full.history["loss"], L[:10])
    for t, ref in H10_L.items():
        assert abs(L[t] - ref) <= L_PRINT, (t, L[t], ref)
    assert np.max(np.abs(Cs[1] - H10_C1)) <= C_PRINT
    assert np.max(np.abs(Cs[1] - H10_C1_EXACT)) <= 1e-15
    # and the two code paths agree to round-off along the whole trajectory (spec: 1e−15 level)
    assert np.max(np.abs(L - tr["L"])) < 1e-14
    assert np.max(np.abs(Cs - tr["C"])) < 1e-14
    # spec H7: Q never leaves the V block: Q = V C Vᵀ exactly
    assert np.max(np.abs(Q - P.Q_from_C(Cs[-1], V))) < 1e-14


@pytest.mark.parametrize("attend_to_query", [False, True])
def test_full_Q_equals_reduced_with_attend_to_query_and_monte_carlo(attend_to_query):
    p = H.feature_probabilities(4, "imbalanced", 0.4)
    pop = P.monte_carlo(p, 5, 30, 2, attend_to_query=attend_to_query)
    V = H.make_features(6, 4, 3)
    tr = P.run_gd(pop, 2.0, 8).records
    tr2 = P.run_gd(pop, 2.0, 8, backend="numba").records
    full = P.run_gd_full_Q(V, pop, 2.0, 8).records
    L, Cs = full["L"], full["C"]
    assert np.max(np.abs(L - tr["L"])) < 1e-14 and np.max(np.abs(Cs - tr["C"])) < 1e-13
    assert np.max(np.abs(tr2["C"] - tr["C"])) < 1e-13 and np.max(np.abs(tr2["alpha"] - tr["alpha"])) < 1e-13
    # the conventions differ (a test that cannot tell them apart would be vacuous)
    other = P.run_gd(P.monte_carlo(p, 5, 30, 2, attend_to_query=not attend_to_query), 2.0, 8)
    assert abs(other.records["L"][-1] - tr["L"][-1]) > 1e-3


def test_closed_forms_at_zero():
    """Spec H9: L_k(0) = ½[1 − 2p_k + 1/N + (1 − 1/N)Σp²], L(0) = ½(1 + 1/N)(1 − Σp²)."""
    for K, N, kind in [(3, 6, "imbalanced"), (4, 9, "balanced"), (5, 4, "imbalanced")]:
        p = H.feature_probabilities(K, kind, 0.6)
        L, Lk, _, _ = P.loss_and_grad_C(np.zeros((K, K)), P.exact(p, N))
        s2 = np.sum(p * p)
        np.testing.assert_allclose(Lk, 0.5 * (1 - 2 * p + 1 / N + (1 - 1 / N) * s2), rtol=1e-13)
        assert L == pytest.approx(0.5 * (1 + 1 / N) * (1 - s2), rel=1e-13)
    assert 0.5 * (1 + 1 / 100) * (1 - 0.1) == pytest.approx(0.4545, abs=1e-4)


def test_monte_carlo_with_every_count_vector_equals_exact():
    p = np.array([0.5, 0.3, 0.2])
    ex = P.exact(p, 5)
    tr_a = P.run_gd(ex, 1.0, 20).records
    # (b) is deterministic GD on a fixed weighted set: given the full set, it is (a)
    tr_b = P.run_gd(P.from_counts(p, ex.counts, ex.weights), 1.0, 20).records
    assert np.max(np.abs(tr_a["C"] - tr_b["C"])) == 0.0
    # a genuine random draw approaches (a) at the Monte-Carlo rate
    errs = [abs(P.run_gd(P.monte_carlo(p, 5, M, 0), 1.0, 20).final("L") - tr_a["L"][-1]) for M in (100, 10000)]
    assert errs[1] < 0.01 and errs[1] < errs[0]


def test_mean_field_is_the_large_N_limit_of_exact():
    """Spec H8 (c): at C = 0 the gap is exactly ½(1/N)(1 − Σp²); along GD it shrinks like 1/N."""
    p = np.array([0.5, 0.3, 0.2])
    mf = P.run_gd(P.mean_field(p), 1.0, 30).records
    gaps = []
    for N in (10, 40, 160):
        ex = P.run_gd(P.exact(p, N), 1.0, 30).records
        assert ex["L"][0] - mf["L"][0] == pytest.approx(0.5 / N * (1 - np.sum(p * p)), rel=1e-12)
        gaps.append(np.max(np.abs(ex["C"][-1] - mf["C"][-1])))
    assert gaps[0] > gaps[1] > gaps[2]
    assert 2.5 < gaps[0] / gaps[1] < 6 and 2.5 < gaps[1] / gaps[2] < 6  # ≈ 4 per factor 4 in N


def test_balanced_reference_values_of_h13():
    """Spec H13 (a) reference (M = 4000): E[α_kk] = 0.306, 0.647, 0.922 and L_k = 0.273, 0.0736,
    3.9e−3 at t = 100, 200, 1000 (balanced K = 10, N = 100, η = 1)."""
    pop = P.monte_carlo(H.feature_probabilities(10), 100, 4000, 0)
    tr = P.run_gd(pop, 1.0, 1000, record=[100, 200, 1000], backend=P.fast_backend(), columns=[0]).records
    a = tr["alpha"][:, 0, 0]
    lk = tr["Lk"][:, 0]
    np.testing.assert_allclose(a, [0.306, 0.647, 0.922], rtol=0.01)
    np.testing.assert_allclose(lk, [0.273, 0.0736, 3.9e-3], rtol=0.02)


def test_columns_option_is_the_same_in_both_backends():
    pop = P.monte_carlo(H.feature_probabilities(5, "imbalanced", 0.6), 12, 40, 4)
    ta = P.run_gd(pop, 1.5, 25, backend="numpy", columns=[0, 3])
    tb = P.run_gd(pop, 1.5, 25, backend="numba", columns=[0, 3])
    a, b = ta.records, tb.records
    full = P.run_gd(pop, 1.5, 25).records
    for k in ("C", "Lk", "alpha", "L"):
        assert np.max(np.abs(a[k] - b[k])) < 1e-13, k
    assert np.max(np.abs(ta.history["loss"] - tb.history["loss"])) < 1e-13
    np.testing.assert_allclose(a["C"][:, :, [0, 3]], full["C"][:, :, [0, 3]], atol=1e-14)
    assert np.all(a["C"][:, :, [1, 2, 4]] == 0) and np.all(a["Lk"][:, [1, 2, 4]] == 0)


def test_attend_to_query_loss_floor():
    """Spec H4: with the query column in the softmax, attention on the target is capped at
    n_k/(n_k + 1), so L_k ≥ ½ E[(n_k + 1)^{−2}] (≈ 5.5e−3 for balanced K = 10, N = 100)."""
    from scipy.stats import binom

    K, N = 10, 100
    n = np.arange(N + 1)
    floor = 0.5 * np.sum(binom.pmf(n, N, 1 / K) / (n + 1) ** 2)
    assert floor == pytest.approx(5.5e-3, abs=0.05e-3)
    pop = P.monte_carlo(H.feature_probabilities(K), N, 4000, 0, attend_to_query=True)
    C_big = 40.0 * (np.eye(K) - 1.0 / K)  # A_k → ∞: all attention on feature k and the query
    _, Lk, _, _ = P.loss_and_grad_C(C_big, pop)
    sample_floor = 0.5 * np.mean(1.0 / (pop.counts + 1) ** 2, axis=0)  # (K,) on the same draw
    np.testing.assert_allclose(Lk, sample_floor, rtol=1e-12)
    assert abs(Lk.mean() - floor) < 0.05 * floor
    # without the query column the same C drives the loss to ~0 (no floor)
    _, Lk0, _, _ = P.loss_and_grad_C(C_big, P.monte_carlo(H.feature_probabilities(K), N, 4000, 0))
    assert np.max(Lk0) < 1e-3 * floor


# --------------------------------------------------------------------------------------------
# the shared Trajectory record, train, non-finite steps
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_run_gd_returns_the_shared_trajectory(backend):
    pop = P.exact(np.array([0.5, 0.3, 0.2]), 4)
    tr = P.run_gd(pop, 1.0, 12, backend=backend, record=[0, 3, 7])
    r = tr.records
    assert tr.model == "huang2023" and tr.backend == backend
    np.testing.assert_array_equal(r["step"], [0, 3, 7])
    assert r["C"].shape == (3, 3, 3) and r["alpha"].shape == (3, 3, 3) and r["Lk"].shape == (3, 3)
    # the run stops at the last record: 7 updates, the loss before each, C after them
    full = P.run_gd(pop, 1.0, 12, backend=backend)
    assert tr.steps_done == 7
    np.testing.assert_array_equal(tr.history["step"], np.arange(7))
    np.testing.assert_array_equal(tr.history["loss"], full.records["L"][:7])
    np.testing.assert_array_equal(tr.params["C"], full.records["C"][7])
    np.testing.assert_array_equal(r["L"], full.records["L"][[0, 3, 7]])
    assert full.steps_done == 12 and tr.extra["kind"] == "exact"


@pytest.mark.parametrize("population", ["exact", "monte_carlo", "mean_field"])
def test_train_is_run_gd_at_the_configured_level_mapped_back_to_Q(population):
    cfg = H.preset("tiny", population=population, M=50, steps=15)
    tr = H.train(cfg, 4)
    data = H.make_data(cfg, 4)  # train draws its features from the same seed as make_data
    np.testing.assert_array_equal(tr.data["features"].V, data.V)
    pop = tr.data["population"]
    assert pop.kind == population and (pop.M == 50 if population == "monte_carlo" else True)
    ref = P.run_gd(pop, cfg.eta, cfg.steps)
    np.testing.assert_array_equal(tr.records["C"], ref.records["C"])
    np.testing.assert_array_equal(tr.history["loss"], ref.history["loss"])
    np.testing.assert_allclose(tr.params["Q"], P.Q_from_C(ref.params["C"], data.V), rtol=0, atol=0)
    assert tr.config == cfg and tr.seed == 4 and tr.steps_done == 15
    # spec H7: Q stays in the V block, with Vᵀ Q V = C
    np.testing.assert_allclose(P.C_from_Q(tr.params["Q"], data.V), ref.params["C"], atol=1e-15)
    assert tr.history["loss"][-1] < tr.history["loss"][0]
    numba = H.train(cfg, 4, backend="numba")
    np.testing.assert_allclose(numba.records["C"], tr.records["C"], rtol=0, atol=1e-14)


def test_train_matches_the_h10_golden_trajectory():
    tr = H.train(H.preset("golden_h10"), 0)
    for t, ref in H10_L.items():
        assert abs(tr.records["L"][t] - ref) <= L_PRINT


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_non_finite_steps_raise_naming_step_and_tensor(backend):
    """η = 1e308 sends C to ±inf after one step; the next loss is NaN. Both backends stop there."""
    pop = P.exact(np.array([0.5, 0.3, 0.2]), 4)
    with pytest.raises(NonFiniteError, match="at step 1") as exc:
        P.run_gd(pop, 1e308, 5, backend=backend)
    assert exc.value.step == 1 and exc.value.tensor in ("params['C']", "loss", "grads['C']")
    with pytest.raises(NonFiniteError, match="at step 1"):
        H.train(H.preset("tiny", eta=1e308), 0, backend=backend)
    # a finite but huge logit gap underflows every exponential of a column: 0/0 in the loss
    C0 = np.zeros((3, 3))
    C0[:, 0] = [-2000.0, 0.0, 0.0]
    lonely = P.from_counts([0.5, 0.3, 0.2], [[4.0, 0.0, 0.0]], [1.0])  # only feature 0 is present
    with pytest.raises(NonFiniteError, match="loss is not finite at step 0"):
        P.run_gd(lonely, 1.0, 3, C0=C0, backend=backend)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_full_Q_gd_raises_on_a_non_finite_step(backend):
    """Q⁰ near the largest float: Q x_q overflows to ±inf and the scores to inf − inf = NaN."""
    pop = P.exact(np.array([0.5, 0.5]), 3)
    V = H.make_features(3, 2, 0)
    Q0 = 1.7e308 * np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    with pytest.raises(NonFiniteError, match="loss is not finite at step 0"):
        P.run_gd_full_Q(V, pop, 1.0, 4, Q0=Q0, backend=backend)
    assert np.isfinite(P.run_gd_full_Q(V, pop, 1.0, 4, Q0=1e-3 * Q0, backend=backend).records["L"]).all()


def test_numba_gd_refuses_columns_outside_the_query_features():
    """The kernel indexes C[:, k] for every k of ``columns``: an index ≥ K (or < 0) raises
    ValueError before the kernel runs instead of reading another array's memory."""
    pop = P.exact(np.full(3, 1 / 3), 4)
    for bad in ([0, 3], [-1]):
        with pytest.raises(ValueError, match="columns"):
            P.run_gd(pop, 0.5, 2, backend="numba", columns=bad)
    assert P.run_gd(pop, 0.5, 2, backend="numba", columns=[2]).records["L"].shape == (3,)
