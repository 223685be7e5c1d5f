"""Spec H checks (H9–H13): verdicts on real measurements, fails on bad ones, the phase figure."""

from __future__ import annotations

import pytest

from refimpl.huang2023 import checks
from refimpl.huang2023 import dynamics as D
from refimpl.validation.runner import Context


def test_h10_claim_passes_with_measured_errors():
    m = checks.measure_h10()
    c = checks.check_h10(m)
    assert c.verdict == "pass"
    for v in m.values():  # exact enumeration (NumPy, Numba) and full-Q GD
        assert v["err_L"] <= 1e-12 and v["err_C1"] <= 5e-9 and v["err_Lk0"] <= 5e-9
    bad = {k: dict(v, err_L=2e-9) for k, v in m.items()}
    assert checks.check_h10(bad).verdict == "fail"


def test_h9_claim_passes_and_fails_on_a_violation():
    m = checks.measure_h9(n_cases=4, steps=10, seed=1)
    assert checks.check_h9(m).verdict == "pass"
    assert m["min_dA"] > 0  # A_k strictly grows in every case (N ≥ 2)
    assert checks.check_h9(dict(m, max_colsum=1e-6)).verdict == "fail"


def test_scaling_claims_judge_the_slopes():
    m = {"K": [4, 8], "t_half": [10, 40], "slope": 2.0, "M": 1, "eta": 1.0}
    assert checks.check_h11_phase1(m).verdict == "pass"
    assert checks.check_h11_phase1(dict(m, slope=1.0)).verdict == "fail"
    s = {"K": [4, 8], "p1": 0.5, "dominant_t90": [1, 1], "under_t50": [1, 4], "slope_dominant": 0.1,
         "slope_under": 2.0}
    assert [c.verdict for c in checks.check_h12_scaling(s)] == ["pass", "pass"]
    assert [c.verdict for c in checks.check_h12_scaling(dict(s, slope_dominant=1.5, slope_under=1.0))] == [
        "fail", "fail"]


def test_h11_phase1_slope_on_small_K():
    m = checks.measure_h11_phase1(Ks=(4, 8, 16), M=300)
    assert 1.7 <= m["slope"] <= 2.3, m


def test_event_detection_on_the_reference_setting_and_peak_overtake():
    tr = checks.imbalanced_trajectory(10, 0.5, N=200, M=500, steps=700)
    ev = D.detect_events(tr, 1)
    assert ev["B_oth_peak"] is not None and abs(ev["B_oth_peak"] - ev["growth_overtake"]) <= 1
    # the spec's order for K = 10, p_1 = 0.5 (the events before the loss threshold)
    order = [n for n in D.event_order(ev) if n != "Lk_below_eps"]
    assert order == ["B_oth_peak", "A_over_B1", "akk_over_ak1", "akk_half", "ak1_below_1/K"]
    m = {"rows": [{"K": 10, "p1": 0.5, "N": 200, "events": ev, "order": D.event_order(ev),
                   "B1_falls_throughout": True, "rise_expected": True}], "M": 500}
    assert [c.verdict for c in checks.check_h12_events(m)] == ["pass", "pass", "info"]
    assert "B_oth peak @" in checks.check_h12_events(m)[2].measured
    ev_bad = dict(ev, growth_overtake=ev["B_oth_peak"] + 5)
    assert checks.check_h12_events({"rows": [dict(m["rows"][0], events=ev_bad)]})[0].verdict == "fail"


def test_no_B_oth_peak_when_the_dominant_feature_is_weak():
    """Spec H12: B_{k,oth} rises only when p_1² ≳ 2 p_k; K = 10, p_1 = 0.3 gives 0.09 < 0.156."""
    tr = checks.imbalanced_trajectory(10, 0.3, N=200, M=300, steps=400)
    assert D.detect_events(tr, 1)["B_oth_peak"] is None


def test_phase_figure_is_written(tmp_path):
    from refimpl.validation.huang2023 import phases

    bal = checks.balanced_trajectory(M=200, steps=10000)
    imb = checks.imbalanced_trajectory(10, 0.5, N=200, M=200, steps=400)
    ctx = Context("huang2023", "quick", tmp_path, code="test")
    name = phases.figure(ctx, bal, imb)
    assert (tmp_path / name).stat().st_size > 20_000
    assert checks.check_h13_balanced(bal).verdict in ("pass", "fail")


@pytest.mark.slow
def test_validate_quick_profile(tmp_path):
    from refimpl.validation.runner import run_validation

    res = run_validation(["huang2023"], "quick", tmp_path, log=lambda *a: None)
    assert all(c.verdict in ("pass", "info") for c in res["huang2023"]), [
        (c.id, c.measured) for c in res["huang2023"] if c.verdict == "fail"]
