"""Yang Fig. 5 under a fixed training-time budget, judged independently of the machine's load
(issue 15 item 7): the step times are measured once, the budget becomes a number of steps per H
that depends on the ratios of those times only, and the runs train for exactly that many steps."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.validation.context import Context
from refimpl.yang2024 import checks

MEASURED = {1: 0.055, 2: 0.059, 4: 0.063, 8: 0.077, 16: 0.105, 32: 0.148, 64: 0.264}  # s, quick profile


@pytest.mark.parametrize("factor", [0.25, 0.5, 1 / 3, 1.7, 2.0, 3.0, 9.4])
def test_step_budgets_depend_on_the_ratios_only(factor):
    base = checks.fig5_step_budgets(MEASURED, 5.0, 0.05)
    assert base == {1: 100, 2: 93, 4: 87, 8: 71, 16: 52, 32: 37, 64: 20}
    scaled = checks.fig5_step_budgets({H: factor * t for H, t in MEASURED.items()}, 5.0, 0.05)
    assert scaled == base


def test_step_budgets_follow_the_ratios_and_the_reference():
    b = checks.fig5_step_budgets(MEASURED, 5.0, 0.05)
    slower64 = checks.fig5_step_budgets({**MEASURED, 64: 2 * MEASURED[64]}, 5.0, 0.05)
    assert slower64[64] == b[64] // 2 and {H: v for H, v in slower64.items() if H != 64} == \
        {H: v for H, v in b.items() if H != 64}
    assert checks.fig5_step_budgets(MEASURED, 10.0, 0.05)[1] == 200  # twice the seconds, twice the steps
    assert checks.fig5_step_budgets(MEASURED, 5.0, 0.1)[1] == 50  # a reference twice as slow: half
    assert checks.fig5_step_budgets({1: 1.0, 2: 1e6}, 5.0, 0.05)[2] == 1  # at least one step
    for bad in ({}, {1: 0.0}, {1: float("nan")}):
        with pytest.raises(ValueError):
            checks.fig5_step_budgets(bad, 5.0, 0.05)
    with pytest.raises(ValueError, match="ref_step_s"):
        checks.fig5_step_budgets(MEASURED, 5.0, 0.0)


TINY = {"ycfg": dict(K=6, N=3, d=4, m=2, tau=0.01), "n_train": 40, "d_model": 8, "d_ff": 8, "H": 2, "batch": 4,
        "lr": 1e-2, "steps": 4, "eval_every": 2, "Hs": (1, 2, 4, 8), "budget_s": 0.3, "ref_step_s": 0.01,
        "timing_rounds": 3, "eval_every_s": 0.1, "n_fig5_eval": 8, "seed": 0, "backend": "numpy"}


def _fig5_rows(tmp_path, monkeypatch, factor, name):
    from refimpl.validation.yang2024 import transformer

    times = {1: 0.010, 2: 0.012, 4: 0.02, 8: 0.05}

    def fake_times(tcfgs, data, prof):
        s = {H: factor * times[H] for H in tcfgs}
        return {"step_s": s, "wall_s": s, "samples": {H: [v] for H, v in s.items()}, "rounds": 1, "warmup": 0,
                "clock": "test"}

    monkeypatch.setattr(transformer, "fig5_step_times", fake_times)
    monkeypatch.setitem(transformer.PROFILE, "quick", TINY)
    monkeypatch.setattr(transformer, "N_TEST", 8)
    ctx = Context("yang2024", "quick", tmp_path / name, progress=False, code="test")
    return {c.id: c for c in transformer.run(ctx)}


def test_fig5_verdicts_do_not_change_when_every_step_time_scales(tmp_path, monkeypatch):
    """The whole module at a tiny size: measured times ×1 and ×3.7 (a uniformly loaded machine)
    give the same step budgets, the same runs and the same Fig. 5(a)/(b) rows."""
    a = _fig5_rows(tmp_path, monkeypatch, 1.0, "a")
    b = _fig5_rows(tmp_path, monkeypatch, 3.7, "b")
    assert a["Fig5b"].numbers["steps"].tolist() == [30, 25, 15, 6]
    np.testing.assert_array_equal(a["Fig5b"].numbers["steps"], b["Fig5b"].numbers["steps"])
    for row in ("Fig5a", "Fig5-iter"):
        assert a[row].measured == b[row].measured and a[row].verdict == b[row].verdict
    assert a["Fig5b"].verdict == b["Fig5b"].verdict == "pass"
    assert a["Fig5-clock"].verdict == "info"
    assert "3.70× its reference" in b["Fig5-clock"].measured
