"""Checks of the deeper model (refimpl.li2024.checks.deep): the E1/E2 relabelling keeps the
one-layer verdicts, the deep vs one-layer comparison, and E7 on both sides of each threshold with
synthetic attention trajectories. The measurements themselves (refimpl.experiments.li_deep) are
tested in tests/test_transformer_experiments.py."""

from __future__ import annotations

import numpy as np

from refimpl.li2024.checks import deep as li_checks
from refimpl.li2024.checks import ood as lchecks


# ------------------------------------------------------------------------------------ checks: E1/E2 relabel
def test_deep_claim_keeps_the_verdict():
    curves = {s: {"lengths": np.array([10, 20, 40]), "error": np.array([0.1, e, e])}
              for s, e in zip(lchecks.L14_S1, (0.05, 0.03, 0.02, 0.005, 0.002))}
    c = lchecks.check_l14_s1([curves])
    d = li_checks.deep_claim(c, "3-layer GPT-2")
    assert d.id == "L14-deep" and d.verdict == c.verdict == "pass" and d.measured.startswith("3-layer GPT-2: ")
    curves[1.1]["error"][1] = 0.05  # S1 = 1.1 above 1e-2 at l = 20
    assert li_checks.deep_claim(lchecks.check_l14_s1([curves]), "x").verdict == "fail"
    cmp = li_checks.compare_at_length([curves], [curves], seeds=[7])
    assert cmp.verdict == "info" and cmp.numbers["deep"] == cmp.numbers["one_layer"]
    assert cmp.numbers["deep_per_seed"] == [[0.05, 0.03, 0.02, 0.05, 0.002]] and "seed 7: " in cmp.measured


# ------------------------------------------------------------------------------------ checks: E7
def _traj(start, end, seed=0, n=11, uniform=0.38):
    steps = np.arange(n) * 50
    frac = np.clip((steps - 100) / 100, 0, 1)[:, None, None]  # abrupt rise between steps 100 and 200
    s0, s1 = np.array(start)[None, :, None], np.array(end)[None, :, None]
    same = s0 + frac * (s1 - s0)
    same = np.repeat(same, 2, axis=2)  # (S, L, 2 heads)
    return {"step": steps, "same": same, "other": 0.1 * np.ones_like(same), "error": np.zeros(n),
            "uniform_same": uniform, "seed": seed}


def test_e7_every_layer_both_sides():
    ok = [_traj([0.40, 0.45, 0.50], [0.80, 0.85, 0.88]), _traj([0.40, 0.40, 0.40], [0.70, 0.65, 0.90], seed=1)]
    c = li_checks.check_e7_every_layer(ok)
    assert c.verdict == "pass"
    np.testing.assert_allclose(c.numbers["rise"][0], [0.40, 0.40, 0.38])
    np.testing.assert_allclose(c.numbers["half_step"][0], [150, 150, 150])
    one_flat = [_traj([0.40, 0.45, 0.50], [0.80, 0.55, 0.88])]  # layer 1 rises by only 0.10
    assert li_checks.check_e7_every_layer(one_flat).verdict == "fail"
    assert li_checks.check_e7_every_layer(one_flat, rise=0.1 - 1e-9).verdict == "pass"


def test_e7_peak_both_sides():
    assert li_checks.check_e7_peak([_traj([0.4] * 3, [0.5, 0.8, 0.6])]).verdict == "pass"
    c = li_checks.check_e7_peak([_traj([0.4] * 3, [0.5, 0.7, 0.6]), _traj([0.4] * 3, [0.9, 0.9, 0.9], seed=1)])
    assert c.verdict == "fail" and c.numbers["layer"][0] == 1
