"""Spec L figure E3 (refimpl.li2024.checks.classical): ICL vs classical learners per prompt.

- The stratified estimator: strata partition k = 0..l with the exact binomial weights, the k
  histogram of the drawn prompts follows Binomial(l, α'/2), and the stratified ICL error agrees
  with plain Monte Carlo on all drawn prompts.
- The check: synthetic cells on both sides of the tolerance; an untrained model is not "best".

The learners themselves are tested in tests/test_li2024_classical.py, the statistics in
tests/test_core_stats.py.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from refimpl.li2024 import preset
from refimpl.li2024.checks import classical as cc
from refimpl.li2024.checks import plain_fit
from refimpl.li2024.data import prompt_rng

TINY = preset("tiny")  # d_x = 12, M1 = 6, M2 = 6, l_test = 8


@pytest.fixture(scope="module")
def tiny_run():
    return plain_fit(TINY, 0, backend="numpy")


@pytest.fixture(scope="module")
def untrained_run():
    return plain_fit(TINY.replace(train={"steps": 0}), 0, backend="numpy")


# --------------------------------------------------------------------------- stratification
@pytest.mark.parametrize("l,alpha,n", [(20, 0.6, 100_000), (20, 0.8, 100_000), (18, 0.8, 20_000), (6, 0.6, 1000),
                                       (2, 0.6, 1000), (20, 0.2, 1000), (8, 1.0, 50)])
def test_strata_partition_k_with_binomial_weights(l, alpha, n):
    groups, w = cc.stratum_groups(l, alpha, n)
    assert groups[0][0] == 0 and groups[-1][1] == l
    assert all(g[1] + 1 == h[0] for g, h in itertools.pairwise(groups))  # contiguous, no gap
    assert len(groups) <= cc.E3_STRATA_SPLIT + 1
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    pmf = stats.binom.pmf(np.arange(l + 1), l, alpha / 2)
    np.testing.assert_allclose(w, [pmf[a : b + 1].sum() for a, b in groups], rtol=1e-12)
    if len(groups) > 1:
        assert np.all(w * n >= cc.E3_MIN_EXPECTED)  # rare strata were merged


def test_stratum_groups_merge_rare_low_strata():
    groups, _ = cc.stratum_groups(20, 0.8, 100_000)  # P(k = 0) = 0.6^20 ≈ 4e-5: merged with k = 1
    assert groups == [(0, 1), (2, 2), (3, 20)]
    groups, _ = cc.stratum_groups(20, 0.6, 100_000)  # P(k = 0) = 0.7^20 ≈ 8e-4: its own stratum
    assert groups == [(0, 0), (1, 1), (2, 2), (3, 20)]


def test_measure_cell_stratified_icl_matches_plain_monte_carlo(tiny_run):
    """k ~ Binomial(l, α'/2) among the drawn prompts (5σ per bin), and the stratified ICL error
    agrees with the plain average over all drawn prompts (within 4 combined SE)."""
    l, alpha = 8, 0.6
    cell = cc.measure_e3_cell(tiny_run, l, alpha, 20_000, 60, prompt_rng(0, 99), names=("1nn",))
    n = cell["n_drawn"]
    p = stats.binom.pmf(np.arange(l + 1), l, alpha / 2)
    assert np.all(np.abs(cell["k_hist"] - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9)
    assert np.all(cell["n_per_stratum"] == 60)
    summ = cc.summarize_e3(cell)
    e, se = summ["error"]["icl"], summ["error_se"]["icl"]
    q = cell["icl_plain"]
    assert 0.02 < q < 0.4  # the tiny model learned something, and errs
    assert abs(e - q) <= 4 * math.sqrt(se ** 2 + q * (1 - q) / n)


# ----------------------------------------------------------------------------------- the check
def fake_cell(l, alpha, icl, others, weights=(0.3, 0.7)):
    """A cell with two strata of len(icl) // 2 prompts each and the given per-prompt errors."""
    n = len(icl)
    err = {"icl": np.asarray(icl, bool)}
    err.update({k: np.asarray(v, bool) for k, v in others.items()})
    return {"l": l, "alpha": alpha, "groups": [(0, 0), (1, l)], "weights": np.array(weights),
            "stratum": np.repeat([0, 1], [n // 2, n - n // 2]), "err": err,
            "icl_plain": float(np.mean(icl)), "n_drawn": n}


def test_check_decision_on_both_sides_of_the_tolerance():
    n = 400
    rng = np.random.default_rng(1)
    base = rng.random(n) < 0.05
    more = base | (rng.random(n) < 0.2)  # a superset: strictly more errors on the same prompts

    def cells(icl, oth):
        return [fake_cell(20, a, icl, {"1nn": oth, "logistic": more}) for a in (0.8, 0.6)]

    win = cc.check_e3_icl_vs_classical([cells(base, more)], [0])
    tie = cc.check_e3_icl_vs_classical([cells(base, base)], [0])
    lose = cc.check_e3_icl_vs_classical([cells(more, base)], [0])
    assert win.verdict == "pass" and tie.verdict == "pass" and lose.verdict == "fail"
    assert lose.numbers["check"]["z"][lose.numbers["check"]["classical"].index("1nn")] > cc.E3_Z
    assert "significantly worse than: 1nn" in lose.measured
    info = cc.check_e3_icl_vs_classical([cells(more, base)], [0], alpha=0.8, judged=False)
    assert info.verdict == "info"
    # pooling seeds: two seeds, one where ICL loses; the grid holds both
    two = cc.check_e3_icl_vs_classical([cells(base, more), cells(more, base)], [0, 1])
    assert two.numbers["error"].shape == (2, 2, 1, 3)
    with pytest.raises(ValueError, match="no cell"):
        cc.check_e3_icl_vs_classical([cells(base, base)], [0], l=12)


def test_untrained_model_is_not_best(untrained_run, tiny_run):
    """At init F is unrelated to the context labels: ICL error ≈ chance, far behind the learners,
    so the check fails; after SGD the same prompts give a far smaller ICL error."""
    grid = [(8, 0.6, 20_000, 40)]
    c0 = cc.measure_e3(untrained_run, grid, names=("1nn", "svm_linear"))
    claim = cc.check_e3_icl_vs_classical([c0], [0], alpha=0.6, l=8)
    assert claim.verdict == "fail"
    err = claim.numbers["check"]["error"]  # (icl, 1nn, svm_linear)
    assert err[0] > 0.3 and err[1] < 0.15
    c1 = cc.measure_e3(tiny_run, grid, names=("1nn", "svm_linear"))
    err1 = cc.check_e3_icl_vs_classical([c1], [0], alpha=0.6, l=8).numbers["check"]["error"]
    assert err1[0] < err[0] / 2
    np.testing.assert_allclose(err1[1:], err[1:])  # same prompts (same stream) for the learners


def test_figure_renders_from_the_claim_numbers(tmp_path):
    from refimpl.validation.li2024 import classical
    from refimpl.validation.runner import Context

    n = 200
    rng = np.random.default_rng(2)
    cells = [fake_cell(l, a, rng.random(n) < 0.1, {c: rng.random(n) < 0.1 for c in cc.E3_CLASSICAL})
             for a in (0.8, 0.6) for l in (6, 20)]
    claim = cc.check_e3_icl_vs_classical([cells], [0])
    ctx = Context("li2024", "quick", tmp_path, code="test")
    name = classical.figure(ctx, claim.numbers)
    assert (tmp_path / name).stat().st_size > 10_000
