"""Spec L checks of out-of-domain generalisation and E2 (refimpl.li2024.checks.ood): L14, E1, E2.

Synthetic curves test each verdict on both sides of its threshold; a tiny trained model runs the
measurement code paths end to end.
"""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.li2024 import preset
from refimpl.li2024.checks import ood as checks
from refimpl.li2024.checks import plain_fit
from refimpl.li2024.data import make_instance

TINY = preset("tiny")


@pytest.fixture(scope="module")
def tiny_run():
    return plain_fit(TINY, 0)


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
