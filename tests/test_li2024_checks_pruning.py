"""Pruning checks of spec L15 / E4 / E5 (refimpl.li2024.checks.pruning) at small size.

A small model (the ``tiny`` data with m = 40 rows, 400 SGD steps, NumPy path: well under a second)
shows the paper's pruning picture on OOD prompts, so each check passes on it; constructed models on
which the claim is false make each check fail:

- ``all_small``: every row of W_O scaled below the "small" threshold (the function now lives in the
  small rows): the norms are not bimodal and pruning the small rows destroys the model;
- ``small_carry``: the small rows take over the work of some large rows (same a_i W_O,(i), small
  norm, large a_i) and the large rows get a_i = 0: pruning the small rows now destroys the model;
- ``dead_large``: the small rows blown up to the largest norms with output weight a_i = 0 (they
  never contribute) and the working rows set to equal norms: magnitude pruning now removes working
  rows faster than random pruning does;
- ``huge_margin``: the large rows scaled ×30, so every correctly classified prompt has zF ≫ 1:
  pruning a fraction of them no longer raises the hinge loss.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from refimpl.li2024 import preset
from refimpl.li2024.checks import plain_fit
from refimpl.li2024.checks import pruning as P
from refimpl.li2024.pruning import init_row_scale, row_norms

N_TEST = 4000  # prompts per measurement (paired between masks)
N_RANDOM = 5


def small_cfg():
    return preset("tiny").replace(data=dict(l_train=12, l_test=12), model=dict(m=40),
                                  train=dict(steps=400, batch_size=32, n_eval=256))


@pytest.fixture(scope="module")
def run():
    return plain_fit(small_cfg(), 0, backend="numpy")


@pytest.fixture(scope="module")
def meas(run):
    return P.measure_pruning(run, N_TEST, n_random=N_RANDOM)


def with_params(run, **changes):
    return dataclasses.replace(run, params={**run.params, **changes})


@pytest.fixture(scope="module")
def all_small(run):
    W = run.params["W_O"]
    thr = P.L15I_SMALL_FACTOR * init_row_scale(run.config)
    return with_params(run, W_O=W * (0.5 * thr / row_norms(run.params).max()))


@pytest.fixture(scope="module")
def dead_large(run):
    W, a = run.params["W_O"], run.params["a"].copy()
    n = row_norms(run.params)
    small = P.small_rows(run.params, run.config)
    scale = np.where(small, 3.0 * n.max() / n, np.median(n[~small]) / n)  # small rows → largest; the rest equal
    a[small] = 0.0
    return with_params(run, W_O=W * scale[:, None], a=a)


@pytest.fixture(scope="module")
def small_carry(run):
    W, a = run.params["W_O"].copy(), run.params["a"].copy()
    n = row_norms(run.params)
    small = np.flatnonzero(P.small_rows(run.params, run.config))
    large = np.flatnonzero(~P.small_rows(run.params, run.config))
    target = 0.5 * P.L15I_SMALL_FACTOR * init_row_scale(run.config)
    for t, i in enumerate(small):  # small row i takes over large row j: a_i W_O,(i) = a_j W_O,(j)
        j = large[t % len(large)]
        W[i] = W[j] * (target / n[j])
        a[i] = a[j] * (n[j] / target)
    a[large] = 0.0
    return with_params(run, W_O=W, a=a)


@pytest.fixture(scope="module")
def huge_margin(run):
    small = P.small_rows(run.params, run.config)
    return with_params(run, W_O=run.params["W_O"] * np.where(small, 1.0, 30.0)[:, None])


# --------------------------------------------------------------------------------------------
# the measurement
# --------------------------------------------------------------------------------------------
def test_measurement_shapes(meas, run):
    s = meas["settings"]["ood"]
    assert s["magnitude"]["hinge"].shape == (len(P.E5_RATES),)
    assert s["random"]["hinge_each"].shape == (len(P.E4_RATES) - 1, N_RANDOM)
    assert s["large"]["d_hinge_random"].shape == (len(P.L15III_R),)
    assert s["magnitude"]["hinge"][0] == pytest.approx(s["unpruned"]["hinge"])  # rate 0 = unpruned
    assert set(meas["e5"]) == set(P.E5_ALPHAS) and meas["e5"][0.6] is s
    assert meas["e5"][1.0]["random"]["hinge"].shape == (0,)


# --------------------------------------------------------------------------------------------
# L15 (i)
# --------------------------------------------------------------------------------------------
def test_bimodal_passes_on_trained_model(meas):
    c = P.check_l15i_bimodal([meas])
    assert c.verdict == "pass", c.measured
    assert 0 < c.numbers["small_fraction"][0] < 1


def test_bimodal_fails_for_equal_or_all_small_rows(run, all_small):
    W = run.params["W_O"]
    equal = with_params(run, W_O=W * (0.3 / row_norms(run.params))[:, None])  # every row norm 0.3
    for model in (equal, all_small):
        m = {"seed": 0, "norms": row_norms(model.params), "small": P.small_rows(model.params, model.config),
             "init_scale": init_row_scale(model.config),
             "threshold": P.L15I_SMALL_FACTOR * init_row_scale(model.config)}
        assert P.check_l15i_bimodal([m]).verdict == "fail"


# --------------------------------------------------------------------------------------------
# L15 (ii)
# --------------------------------------------------------------------------------------------
def test_small_rows_pass_and_fail(meas, all_small):
    assert P.check_l15ii_small_rows([meas], "ood").verdict == "pass"
    assert P.check_l15ii_small_rows([meas], "unseen").verdict == "pass"
    bad = P.measure_pruning(all_small, 1000, n_random=1)
    c = P.check_l15ii_small_rows([bad], "ood")
    assert c.verdict == "fail" and c.numbers["d_error"][0] > 0.5  # F = 0 after pruning: every prompt an error


def test_which_m_slopes_and_code_path():
    where = {"tasks": "unseen", "alpha": 0.6, "l": 20}
    pts = [{"M1": M1, "M2": 24, "hinge_pruned": 0.3 * M1 ** -0.5, "hinge": 0.3 * M1 ** -0.5, "d_hinge": 0.0, **where}
           for M1 in (4, 6, 8)]
    pts += [{"M1": 6, "M2": M2, "hinge_pruned": 0.01 * M2 ** 0.3, "hinge": 0.01, "d_hinge": 0.0, **where}
            for M2 in (12, 48)]
    c = P.check_l15ii_which_m(pts)
    assert c.numbers["slope_M1"] == pytest.approx(-0.5) and c.numbers["closer"] == "M1" and c.verdict == "info"
    flat = [dict(p, hinge_pruned=0.01) for p in pts]
    assert P.check_l15ii_which_m(flat).numbers["closer"] == "neither"
    # the real sweep on the tiny preset (M1 = 4 uses shifts (1, 3); OOD needs α' = 1 there)
    base = preset("tiny")
    cfg4 = P.m_sweep_config(base, 4, 6)
    assert cfg4.data.train_shifts == (1, 3) and cfg4.data.d_x == 10 and cfg4.data.M1_ood == 2
    assert P.m_sweep_config(preset("default"), 6, 24) == preset("default")  # the shared default run
    def fit(cfg, seed):
        return plain_fit(cfg.replace(train=dict(steps=150)), seed, backend="numpy")
    got = P.measure_m_sweep(fit, base, (0,), 400, M1s=(4, 6), M2s=(6, 12), M1_fixed=6, M2_fixed=6)
    assert [(p["M1"], p["M2"]) for p in got] == [(4, 6), (6, 6), (6, 12)]
    c = P.check_l15ii_which_m(got, M1_fixed=6, M2_fixed=6)
    assert np.isfinite(c.numbers["slope_M1"]) and np.isfinite(c.numbers["slope_M2"])


# --------------------------------------------------------------------------------------------
# L15 (iii)
# --------------------------------------------------------------------------------------------
def test_large_rows_pass_and_fail(meas, huge_margin):
    c = P.check_l15iii_large_rows([meas], "ood")
    assert c.verdict == "pass", c.measured
    assert np.all(c.numbers["d_hinge_random"] >= P.L15III_MIN_SLOPE * c.numbers["R"])
    bad = P.measure_pruning(huge_margin, 1000, n_random=3)
    c = P.check_l15iii_large_rows([bad], "ood")
    assert c.verdict == "fail" and np.all(c.numbers["d_hinge_random"] < P.L15III_MIN_SLOPE * c.numbers["R"])


# --------------------------------------------------------------------------------------------
# L15 (iv) and E4
# --------------------------------------------------------------------------------------------
def test_magnitude_beats_random_and_e4(meas):
    c = P.check_l15iv_magnitude_vs_random([meas], "ood")
    assert c.verdict == "pass", c.measured
    assert np.all(c.numbers["diff_hinge"] > 0)
    e4 = P.check_e4([meas])
    assert e4.verdict == "pass", e4.measured
    assert e4.numbers["flat_ok"] == [True] and e4.numbers["random_ok"] == [True]


def test_magnitude_worse_than_random_fails(dead_large):
    bad = P.measure_pruning(dead_large, 2000, n_random=N_RANDOM)
    c = P.check_l15iv_magnitude_vs_random([bad], "ood")
    assert c.verdict == "fail" and np.all(c.numbers["hinge_magnitude"] > c.numbers["hinge_random"])
    e4 = P.check_e4([bad])
    assert e4.verdict == "fail" and e4.numbers["random_ok"] == [False]


def test_e4_fails_when_magnitude_pruning_is_not_free(small_carry):
    bad = P.measure_pruning(small_carry, 1000, n_random=2)
    assert bad["settings"]["ood"]["unpruned"]["error"] < 0.2  # the constructed model still works
    e4 = P.check_e4([bad])
    assert e4.verdict == "fail" and e4.numbers["flat_ok"] == [False] and e4.numbers["random_ok"] == [False]
    assert P.check_l15ii_small_rows([bad], "ood").verdict == "fail"
    assert P.check_l15iv_magnitude_vs_random([bad], "ood").verdict == "fail"


# --------------------------------------------------------------------------------------------
# E5
# --------------------------------------------------------------------------------------------
def _e5_meas(slopes, h0=(0.04, 0.01, 0.003)):
    """Synthetic E5 curves: hinge(r; α') = h0 + slope · max(0, r − 0.15)²."""
    r = np.array(P.E5_RATES)
    e5 = {}
    for a, c, b in zip(P.E5_ALPHAS, slopes, h0):
        h = b + c * np.maximum(0, r - 0.15) ** 2
        e5[a] = {"magnitude": {"rate": r, "hinge": h, "error": h / 3}, "unpruned": {"hinge": b}}
    return {"seed": 0, "e5": e5, "small": np.zeros(10, bool)}


def test_e5_pass_fail_and_code_path(meas):
    assert P.check_e5([_e5_meas((0.5, 0.3, 0.1))]).verdict == "pass"
    c = P.check_e5([_e5_meas((0.1, 0.3, 0.5))])  # larger α' hurt more by pruning
    assert c.verdict == "fail"
    assert P.check_e5([_e5_meas((0.3, 0.3, 0.3), h0=(0.01, 0.02, 0.03))]).verdict == "fail"
    real = P.check_e5([meas])
    assert real.verdict in ("pass", "fail") and real.numbers["hinge"].shape == (1, 3, len(P.E5_RATES))
