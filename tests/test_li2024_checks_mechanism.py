"""Mechanism checks of spec L16 (Proposition 1) and L17 (Proposition 2): refimpl.li2024.checks.mechanism.

Small and fast: the ``tiny`` preset trained 600 SGD steps on the NumPy path (a fraction of a second),
hand-built parameters, and hand-built trajectories. Every check is shown to pass on the trained
model and to FAIL on a model that lacks the mechanism it tests: the untrained model (attention
uniform, no large rows), a model with the label direction flipped, a model that ignores the
context labels, a model that reads the IDI noise, and trajectories that do not grow or plateau.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from refimpl.li2024 import init_params, make_instance, preset, sample_batch
from refimpl.li2024.checks import mechanism as checks
from refimpl.li2024.checks import plain_fit
from refimpl.li2024.checks.training import L16_FINAL_ATTN

TINY = preset("tiny").replace(train=dict(steps=600))
SEED = 1
N_ABLATION = 4000  # s.e. of a chance-level error ≈ 0.008, well inside L17_CHANCE_TOL = 0.03


@pytest.fixture(scope="module")
def trained():
    return plain_fit(TINY, SEED, backend="numpy", snapshot_every=50)


@pytest.fixture(scope="module")
def untrained():
    return plain_fit(TINY.replace(train=dict(steps=0)), SEED, backend="numpy", snapshot_every=50)


@pytest.fixture(scope="module")
def traj_trained(trained):
    return checks.mechanism_trajectory(trained, 500)


@pytest.fixture(scope="module")
def traj_untrained(untrained):
    return checks.mechanism_trajectory(untrained, 500)


def with_params(run, **changes):
    """A copy of ``run`` whose final parameters have some arrays replaced (snapshot 0 kept)."""
    return dataclasses.replace(run, params={**run.params, **changes})


# --------------------------------------------------------------------------------------------
# measurements on hand-built inputs
# --------------------------------------------------------------------------------------------
def test_attention_split_hand_built():
    # two prompts, l = 4; task (a, b) = (0, 1); query pattern 0, then 1
    pattern = np.array([[0, 1, 2, 0, 0], [3, 1, 1, 0, 1]])
    task = np.array([[0, 1], [0, 1]])
    attn = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    same, other = checks.attention_split(attn, pattern, task)
    np.testing.assert_allclose(same, [0.1 + 0.4, 0.25 + 0.25])
    np.testing.assert_allclose(other, [0.3, 0.25])


def test_qk_components_at_initialisation_equal_delta_beta():
    """W⁰ = δ[I 0; 0 0] (spec L8): the pattern component is exactly δβ, the norm δ‖x‖ ≥ δβ."""
    cfg = TINY.replace(data=dict(beta=1.5))
    inst = make_instance(cfg.data, 3)
    params = init_params(cfg, 4)
    batch = sample_batch(inst, 200, np.random.default_rng(5), tasks="unseen")
    c = checks.qk_pattern_components(params, batch, inst.mu)
    delta, beta = cfg.model.delta, cfg.data.beta
    assert c["q_pattern"] == pytest.approx(delta * beta, rel=1e-12)
    assert c["k_pattern"] == pytest.approx(delta * beta, rel=1e-12)
    x_q = batch["P"][:, : cfg.data.d_x, -1]
    assert c["q_norm"] == pytest.approx(delta * np.mean(np.linalg.norm(x_q, axis=1)), rel=1e-12)
    assert c["q_norm"] > delta * beta  # the IDI noise adds to the norm, not to the component
    with pytest.raises(ValueError, match="m_b"):
        checks.qk_pattern_components({**params, "W_Q": params["W_Q"][:3]}, batch, inst.mu)


def test_row_geometry_hand_built():
    inst = make_instance(TINY.data, 0)
    d_x, d = TINY.data.d_x, TINY.data.d
    mu_bar = inst.mu.mean(axis=0)
    rows = np.zeros((4, d))
    rows[0] = np.r_[2 * mu_bar, 3 * inst.q]  # (µ̄; q)
    rows[1] = np.r_[mu_bar, -inst.q]  # (µ̄; −q)
    rows[2, :d_x] = -mu_bar  # (−µ̄; 0): label block zero
    params = {"W_O": rows, "W_V": np.eye(d)}
    g = checks.wowv_row_geometry(params, inst)
    np.testing.assert_allclose(g["feature_angle"], [0, 0, np.pi, np.pi / 2], atol=1e-7)
    np.testing.assert_allclose(g["label_angle"], [0, np.pi, np.pi / 2, np.pi / 2], atol=1e-7)
    np.testing.assert_allclose(g["label_norm"], [3, 1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(g["feature_norm"][:3], np.array([2, 1, 1]) * np.linalg.norm(mu_bar))


def test_large_rows_threshold_is_relative_to_initial_scale():
    cfg = TINY
    scale = cfg.model.xi * np.sqrt(cfg.m_a)
    W_O = np.zeros((3, cfg.m_a))
    W_O[:, 0] = [scale, 2.4 * scale, 2.6 * scale]
    np.testing.assert_array_equal(checks.l17_large_rows({"W_O": W_O}, cfg), [False, False, True])


# --------------------------------------------------------------------------------------------
# trajectories and L16
# --------------------------------------------------------------------------------------------
def test_trajectory_shapes(trained, traj_trained):
    t = traj_trained
    np.testing.assert_array_equal(t["step"], sorted(trained.snapshots))
    n = len(t["step"])
    for key in ("unseen/attn_same", "ood/attn_other", "unseen/q_pattern", "ood/k_norm",
                "rows/pos/feature_angle", "rows/neg/label_angle", "rows/small/feature_norm"):
        assert t[key].shape == (n,), key
    assert sum(t["group_size"].values()) == TINY.model.m
    # same + other ≤ 1 (the task's other pattern takes the rest)
    assert np.all(t["unseen/attn_same"] + t["unseen/attn_other"] <= 1 + 1e-12)
    with pytest.raises(ValueError, match="snapshot_every"):
        checks.mechanism_trajectory(dataclasses.replace(trained, snapshots={}))


def test_l16_attention_split_trained_passes_untrained_fails(traj_trained, traj_untrained):
    ok = checks.check_l16_attention_split([traj_trained])
    assert ok.verdict == "pass", ok.measured
    assert ok.numbers["attn_same_end"][0] >= L16_FINAL_ATTN
    bad = checks.check_l16_attention_split([traj_untrained])
    assert bad.verdict == "fail", bad.measured
    # the untrained model attends about uniformly: same ≈ α'/2, other ≈ 1 − α'
    assert abs(bad.numbers["attn_same_end"][0] - TINY.data.alpha_test / 2) < 0.1
    assert abs(bad.numbers["attn_other_end"][0] - (1 - TINY.data.alpha_test)) < 0.1
    # one failing seed fails the claim
    assert checks.check_l16_attention_split([traj_trained, traj_untrained]).verdict == "fail"


def test_l16_other_bound_alone_can_fail(traj_trained):
    c = checks.check_l16_attention_split([traj_trained], other_max=0.0)
    assert c.verdict == "fail"


def test_l16_qk_norms_trained_passes_untrained_fails(traj_trained, traj_untrained):
    ok = checks.check_l16_qk_norms([traj_trained])
    assert ok.verdict == "pass", ok.measured
    bad = checks.check_l16_qk_norms([traj_untrained])  # one snapshot: growth 1×
    assert bad.verdict == "fail"
    assert bad.numbers["growth"]["q_norm"][0] == pytest.approx(1.0)


def synthetic_traj(curve, share=0.95, T=1000):
    """A trajectory whose four norm series follow ``curve(steps)`` (pattern component = share × norm)."""
    steps = np.arange(0, T + 1, 50)
    x = curve(steps.astype(float))
    t = {"step": steps, "seed": 0}
    for w in ("q", "k"):
        t[f"unseen/{w}_norm"] = x
        t[f"unseen/{w}_pattern"] = share * x
    return t


def test_l16_qk_norms_synthetic_growth_plateau_share():
    saturating = synthetic_traj(lambda s: 0.2 + 1.4 * (1 - np.exp(-s / 100)))
    assert checks.check_l16_qk_norms([saturating]).verdict == "pass"
    linear = synthetic_traj(lambda s: 0.2 + 1.4 * s / 1000)  # grows 8× but never plateaus
    c = checks.check_l16_qk_norms([linear])
    assert c.verdict == "fail" and c.numbers["late_change"]["q_norm"][0] > checks.L16_QK_PLATEAU
    flat = synthetic_traj(lambda s: 0.2 + 0.1 * (1 - np.exp(-s / 100)))  # plateaus at 1.5×
    assert checks.check_l16_qk_norms([flat]).verdict == "fail"
    off_pattern = synthetic_traj(lambda s: 0.2 + 1.4 * (1 - np.exp(-s / 100)), share=0.5)
    assert checks.check_l16_qk_norms([off_pattern]).verdict == "fail"


# --------------------------------------------------------------------------------------------
# L17: row kinds
# --------------------------------------------------------------------------------------------
def test_l17_row_kinds_trained_passes(trained):
    c = checks.check_l17_row_kinds([trained])
    assert c.verdict == "pass", c.measured
    assert c.numbers["pos/label_angle"][0] < checks.L17_LABEL_ANGLE
    assert c.numbers["neg/label_angle"][0] > np.pi - checks.L17_LABEL_ANGLE


def test_l17_row_kinds_untrained_fails(untrained):
    c = checks.check_l17_row_kinds([untrained])
    assert c.verdict == "fail"
    assert c.numbers["pos/count"][0] == 0 and c.numbers["neg/count"][0] == 0
    assert c.numbers["small/count"][0] == TINY.model.m


def test_l17_row_kinds_flipped_label_direction_fails(trained):
    """Negating the label block of W_V turns the (µ̄; ±q) rows into (µ̄; ∓q): label angles swap."""
    d_x = TINY.data.d_x
    W_V = trained.params["W_V"].copy()
    W_V[:, d_x:] *= -1
    c = checks.check_l17_row_kinds([with_params(trained, W_V=W_V)])
    assert c.verdict == "fail"
    assert c.numbers["pos/label_angle"][0] > np.pi - checks.L17_LABEL_ANGLE


def test_l17_row_kinds_small_rows_grown_beyond_initial_scale_fail(trained):
    """Small rows stretched to 2.2 ξ√m_a stay below the large cut (2.5×) but are no longer at the
    initial scale (≤ 1.5×): the three-kinds picture fails."""
    cfg = trained.config
    scale = cfg.model.xi * np.sqrt(cfg.m_a)
    W_O = trained.params["W_O"].copy()
    small = ~checks.l17_large_rows(trained.params, cfg)
    assert small.any()
    W_O[small] *= 2.2 * scale / np.linalg.norm(W_O[small], axis=1, keepdims=True)
    c = checks.check_l17_row_kinds([with_params(trained, W_O=W_O)])
    assert c.verdict == "fail"
    assert c.numbers["small/count"][0] == small.sum()
    assert c.numbers["small_norm_ratio"][0] == pytest.approx(2.2)


def test_l17_row_kinds_without_snapshots_reports_no_drift(trained):
    kinds = checks.l17_row_kinds(dataclasses.replace(trained, snapshots={}))
    assert np.isnan(kinds["small/drift"])
    assert np.isfinite(checks.l17_row_kinds(trained)["small/drift"])


# --------------------------------------------------------------------------------------------
# L17: ablations
# --------------------------------------------------------------------------------------------
def test_ablation_transforms():
    inst = make_instance(TINY.data, 0)
    d_x = TINY.data.d_x
    batch = sample_batch(inst, 50, np.random.default_rng(1), tasks="unseen")
    P0 = checks.ablate_labels(batch["P"], d_x)
    assert np.all(P0[:, d_x:, :] == 0) and np.array_equal(P0[:, :d_x], batch["P"][:, :d_x])
    P1 = checks.ablate_noise(batch, inst.mu)
    np.testing.assert_array_equal(P1[:, d_x:], batch["P"][:, d_x:])  # labels untouched
    noise = batch["P"][:, :d_x] - P1[:, :d_x]  # (B, d_x, l+1) = κ ν_k
    expect = (batch["kappa"][..., None] * inst.nu[batch["noise"]]).transpose(0, 2, 1)
    np.testing.assert_allclose(noise, expect, atol=1e-15)


def test_l17_ablations_trained_pass(trained):
    abl = checks.measure_l17_ablations([trained], N_ABLATION, chunk=1500)  # chunks of unequal size
    assert abl[0]["n"] == N_ABLATION
    lab = checks.check_l17_label_ablation(abl)
    assert lab.verdict == "pass", lab.measured
    noi = checks.check_l17_noise_ablation(abl)
    assert noi.verdict == "pass", noi.measured


def test_l17_label_ablation_fails_for_a_model_that_ignores_labels(trained):
    """W_K and W_V with zero label blocks never see the labels (neither in the scores nor in the
    values): the error is chance before the ablation, and the ablation changes nothing."""
    d_x = TINY.data.d_x
    W_K, W_V = trained.params["W_K"].copy(), trained.params["W_V"].copy()
    W_K[:, d_x:] = 0.0
    W_V[:, d_x:] = 0.0
    blind = with_params(trained, W_K=W_K, W_V=W_V)
    abl = checks.measure_l17_ablations([blind], N_ABLATION)
    assert abl[0]["base/error"] == abl[0]["labels0/error"]  # the ablation changes nothing
    c = checks.check_l17_label_ablation(abl)
    assert c.verdict == "fail"
    assert c.numbers["error_base"][0] > checks.L17_BASE_ERROR


def test_l17_label_ablation_fails_when_not_at_chance(trained):
    """F ≡ 0 (W_O = 0) is an error (zF ≤ 0) on every prompt, before and after: error 1, not chance."""
    dead = with_params(trained, W_O=np.zeros_like(trained.params["W_O"]))
    abl = checks.measure_l17_ablations([dead], 500)
    assert abl[0]["labels0/error"] == 1.0
    assert checks.check_l17_label_ablation(abl).verdict == "fail"
    assert checks.check_l17_label_ablation(abl, base_max=1.0).verdict == "fail"  # the chance test alone


def test_l17_noise_ablation_fails_for_a_model_that_reads_the_noise(trained):
    """Add to W_V a large map of span{ν}: with κ ≠ 0 the values are corrupted, with κ = 0 they are not."""
    inst, d_x = trained.data, TINY.data.d_x
    G = np.random.default_rng(7).standard_normal((TINY.m_a, TINY.data.M2))
    W_V = trained.params["W_V"].copy()
    W_V[:, :d_x] += 20.0 * G @ inst.nu  # (m_a, d_x); zero on span{µ}, so κ = 0 prompts are unaffected
    noisy = with_params(trained, W_V=W_V)
    abl = checks.measure_l17_ablations([noisy], N_ABLATION)
    c = checks.check_l17_noise_ablation(abl)
    assert c.verdict == "fail", c.measured
    assert abl[0]["noise_delta"] < -0.05  # removing the noise repairs the model
    clean = checks.measure_l17_ablations([trained], N_ABLATION)
    assert abl[0]["noise0/error"] == clean[0]["noise0/error"]  # κ = 0: identical to the trained model
