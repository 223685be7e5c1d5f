"""Spec L checks of Theorem 3.3's conditions (refimpl.li2024.checks.generalization): L13 (b)–(d).

Fake ``fit`` functions with a known scaling law test the statistics on both sides of each
threshold; small real runs (the ``tiny`` preset) exercise the code paths end to end.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from refimpl.li2024 import preset
from refimpl.li2024.checks import first_length_below, plain_fit
from refimpl.li2024.checks import generalization as checks
from refimpl.li2024.data import coverage

TINY = preset("tiny")


@pytest.fixture(scope="module")
def tiny_run():
    return plain_fit(TINY, 0)


# ------------------------------------------------------------------------------------ helpers
def test_first_length_below_requires_staying_below():
    assert first_length_below([1, 2, 3, 4], [0.5, 0.01, 0.2, 0.01], 0.05) == 4
    assert first_length_below([1, 2, 3], [0.5, 0.4, 0.3], 0.05) == math.inf


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


# ------------------------------------------------------------------------------------ L13b
def test_l13b_real_runs_and_a_fit_that_ignores_the_task_set_fails(tiny_run):
    claim = checks.check_l13b_coverage(plain_fit, TINY, [0], 2000, min_excess=0.0)
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
    claim = checks.check_l13c_iterations_vs_alpha(plain_fit, TINY, (0.6, 0.8, 1.0), (0,), threshold=0.3,
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
    untrained = plain_fit(TINY.replace(train=dict(steps=0)), 0)
    assert checks.check_l13d_test_length([untrained], (0.4, 0.7, 1.0), lengths, 600, eps=0.15).verdict == "fail"
