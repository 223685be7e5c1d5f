"""Spec L checks L13a–d, L14, E2 (refimpl.li2024.checks): each verdict follows the numbers.

Fake ``fit`` functions with a known scaling law test the statistics on both sides of each
threshold; small real runs (the ``tiny`` preset) exercise the code paths end to end.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from refimpl.li2024 import checks, preset
from refimpl.li2024.data import coverage, make_instance

TINY = preset("tiny")


@pytest.fixture(scope="module")
def tiny_run():
    return checks.plain_fit(TINY, 0)


# ------------------------------------------------------------------------------------ helpers
def test_loglog_fit_recovers_a_power_law():
    x = np.array([0.2, 0.4, 0.6, 0.8, 1.0])
    fit = checks.loglog_fit(x, 3.0 * x ** -0.5 * np.exp([0.01, -0.02, 0.0, 0.02, -0.01]))
    assert fit["slope"] == pytest.approx(-0.5, abs=0.05)
    assert fit["ci"][0] < -0.5 < fit["ci"][1]


def test_first_length_below_requires_staying_below():
    assert checks.first_length_below([1, 2, 3, 4], [0.5, 0.01, 0.2, 0.01], 0.05) == 4
    assert checks.first_length_below([1, 2, 3], [0.5, 0.4, 0.3], 0.05) == math.inf


def test_coverage_variants_have_the_stated_structure():
    v = checks.coverage_variants(6)
    plus, minus = coverage(np.array(v["covering"]), 6)
    assert np.all(plus == 3) and np.all(minus == 3)
    assert len(v["never_minus"]) == len(v["absent"]) == len(v["covering"]) == 18
    assert coverage(np.array(v["never_minus"]), 6)[1][0] == 0  # pattern 0 never the − pattern
    assert coverage(np.array(v["never_minus"]), 6)[0][0] > 0
    assert all(0 not in t for t in v["absent"])
    assert len(v["minimal"]) == 6 and all(len(set(t)) == 2 for t in v["minimal"])
    for tt in v.values():  # every variant is a valid explicit T_tr
        assert len(set(tt)) == len(tt)
        TINY.replace(data=dict(train_tasks=tt))


# ------------------------------------------------------------------------------------ L13a, L16
def test_l13a_and_l16_on_a_trained_tiny_model(tiny_run):
    tests = checks.measure_default([tiny_run], 2000)
    a = checks.check_l13a_unseen_error([tiny_run], tests, target=0.2)
    assert a.verdict == "pass" and a.numbers["error_unseen"][0] <= 0.2
    assert checks.check_l13a_unseen_error([tiny_run], tests, target=1e-6).verdict == "fail"
    assert checks.check_l13a_unseen_vs_train([tiny_run], tests, max_gap=0.5).verdict == "pass"
    untrained = checks.plain_fit(TINY.replace(train=dict(steps=0)), 0)
    t0 = checks.measure_default([untrained], 2000)
    assert checks.check_l13a_unseen_error([untrained], t0, target=0.2).verdict == "fail"
    assert checks.check_l16_attention_rise([untrained], final=0.9).verdict == "fail"


# ------------------------------------------------------------------------------------ L13b
def test_l13b_real_runs_and_a_fit_that_ignores_the_task_set_fails(tiny_run):
    claim = checks.check_l13b_coverage(checks.plain_fit, TINY, [0], 2000, min_excess=0.0)
    assert set(claim.numbers["variants"]) == {"covering", "minimal", "never_minus", "absent"}
    same = checks.check_l13b_coverage(lambda cfg, s: tiny_run, TINY, [0], 2000)
    assert same.verdict == "fail"  # identical models: no excess error


# ------------------------------------------------------------------------------------ L13c
def _fake_iterations(law):
    def fit(cfg, seed, stop_when=None):
        a = cfg.data.alpha
        per_seed = (1.0, 1.1, 0.9)[seed]  # seed-to-seed spread, independent of α
        return SimpleNamespace(stopped_at=int(round(10_000 * law(a) * per_seed)))

    return fit


def test_l13c_slope_test_passes_on_two_thirds_and_fails_on_two():
    alphas, seeds = (0.4, 0.5, 0.6, 0.8, 1.0), (0, 1, 2)
    good = checks.check_l13c_iterations_vs_alpha(_fake_iterations(lambda a: a ** (-2 / 3)), TINY, alphas, seeds)
    assert good.verdict == "pass" and good.numbers["fit"]["slope"] == pytest.approx(-2 / 3, abs=0.05)
    bad = checks.check_l13c_iterations_vs_alpha(_fake_iterations(lambda a: a ** -2.0), TINY, alphas, seeds)
    assert bad.verdict == "fail" and bad.numbers["fit"]["slope"] == pytest.approx(-2.0, abs=0.1)


def test_l13c_real_runs_reach_the_threshold():
    claim = checks.check_l13c_iterations_vs_alpha(checks.plain_fit, TINY, (0.6, 0.8, 1.0), (0,), threshold=0.3,
                                                  max_steps=1500, eval_every=10, n_eval=64)
    assert np.all(np.isfinite(claim.numbers["iterations"]))
    assert claim.numbers["fit"] is not None and claim.verdict in ("pass", "fail")


# ------------------------------------------------------------------------------------ L13d
def _fake_trainable(l_min_of_alpha):
    def fit(cfg, seed, stop_when=None):
        ok = cfg.data.l_train >= l_min_of_alpha(cfg.data.alpha)
        return SimpleNamespace(stopped_at=100 if ok else None)

    return fit


def test_l13d_min_length_slope_test():
    alphas, lengths = (0.2, 0.4, 0.6, 0.8, 1.0), (1, 2, 3, 4, 5, 6, 8, 10, 12)
    inv = checks.check_l13d_min_train_length(_fake_trainable(lambda a: 2 / a), TINY, alphas, lengths, (0,))
    assert inv.verdict == "pass" and list(inv.numbers["l_min"][:, 0]) == [10, 5, 4, 3, 2]
    flat = checks.check_l13d_min_train_length(_fake_trainable(lambda a: 2), TINY, alphas, lengths, (0,))
    assert flat.verdict == "fail" and flat.numbers["slope"] == 0.0
    never = checks.check_l13d_min_train_length(_fake_trainable(lambda a: 100), TINY, alphas, lengths, (0,))
    assert never.verdict == "fail"


def test_l13d_test_length_on_a_trained_tiny_model(tiny_run):
    lengths = list(range(1, 25, 2))
    claim = checks.check_l13d_test_length([tiny_run], (0.4, 0.7, 1.0), lengths, 600, eps=0.15)
    ls = claim.numbers["l_star"]
    assert np.all(np.isfinite(ls)) and ls[0] >= ls[-1]
    untrained = checks.plain_fit(TINY.replace(train=dict(steps=0)), 0)
    assert checks.check_l13d_test_length([untrained], (0.4, 0.7, 1.0), lengths, 600, eps=0.15).verdict == "fail"


# ------------------------------------------------------------------------------------ L14
def _curves(err_at):
    """Synthetic E1 curves: error(l) = e20 · (20 / l)^k per S1, over lengths 10, 20, 40."""
    out = {}
    for s, (e20, k) in err_at.items():
        L = np.array([10, 20, 40])
        out[s] = {"lengths": L, "error": e20 * (20 / L) ** k}
    return out


def test_l14_separation_and_plateau_logic():
    good = _curves({0.5: (0.2, 0.1), 0.9: (0.02, 0.2), 1.1: (2e-3, 2.0), 1.3: (1e-3, 2.0)})
    assert checks.check_l14_s1([good]).verdict == "pass"
    assert checks.check_l14_plateau([good]).verdict == "pass"
    mixed = _curves({0.5: (0.2, 0.1), 0.9: (5e-3, 2.0), 1.1: (2e-3, 2.0), 1.3: (1e-3, 2.0)})
    assert checks.check_l14_s1([mixed]).verdict == "fail"  # an S1 < 1 curve below 1e-2
    assert checks.check_l14_plateau([mixed]).verdict == "fail"  # and it keeps falling
    flat = _curves({0.5: (0.2, 0.1), 0.9: (0.02, 0.2), 1.1: (2e-3, 0.0), 1.3: (1e-3, 2.0)})
    assert checks.check_l14_s1([flat]).verdict == "fail"  # an S1 ≥ 1.1 curve no longer falling


def test_ood_curves_and_negative_control_run_on_a_tiny_model(tiny_run):
    curves = checks.ood_curves(tiny_run, (0.7, 1.3), [4, 10, 20], 400, alpha=0.8)
    assert set(curves) == {0.7, 1.3} and curves[1.3]["error"].shape == (3,)
    claim = checks.check_l14_negative_control([tiny_run], 1000)
    assert claim.numbers["error_span_nu"].shape == (1,) and claim.verdict in ("pass", "fail")


def test_control_noise_directions_lie_where_stated():
    inst = make_instance(TINY.data.__class__(d_x=16, d_y=4, M1=6, M2=6, l_train=8, l_test=8), 0)
    rng = np.random.default_rng(0)
    nmu = checks.control_noise(inst, rng)
    comp = checks.complement_noise(inst, rng)
    assert np.allclose(np.linalg.norm(nmu, axis=1), inst.cfg.beta)
    assert np.allclose(nmu @ inst.nu.T, 0, atol=1e-12)  # outside span{ν}, inside span{µ}
    assert np.allclose(comp @ np.vstack([inst.mu, inst.nu]).T, 0, atol=1e-12)
    assert checks.complement_noise(make_instance(TINY.data, 0), rng) is None  # d_x = M1 + M2: no room


# ------------------------------------------------------------------------------------ E2
def test_e2_requires_shorter_prompts_for_larger_alpha():
    L = np.arange(1, 21)

    def curves(rates):
        return [{(kind, a): {"lengths": L, "error": 0.5 * np.exp(-r * L)} for kind in ("unseen", "ood")
                 for a, r in rates.items()}]

    assert checks.check_e2_length_vs_alpha(curves({0.8: 0.3, 0.9: 0.4, 1.0: 0.5})).verdict == "pass"
    assert checks.check_e2_length_vs_alpha(curves({0.8: 0.5, 0.9: 0.4, 1.0: 0.3})).verdict == "fail"
    assert checks.check_e2_length_vs_alpha(curves({0.8: 0.4, 0.9: 0.4, 1.0: 0.4})).verdict == "fail"
