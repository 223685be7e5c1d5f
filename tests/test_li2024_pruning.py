"""Pruning of spec L9 (refimpl.li2024.pruning): the keep masks remove the stated rows, and
evaluating many masks from one unpruned pass equals evaluating each pruned model."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.li2024 import preset
from refimpl.li2024 import pruning as P
from refimpl.li2024.checks import plain_fit
from refimpl.li2024.metrics import measure


@pytest.fixture(scope="module")
def run():
    cfg = preset("tiny").replace(data=dict(l_train=12, l_test=12), model=dict(m=40),
                                 train=dict(steps=400, batch_size=32, n_eval=256))
    return plain_fit(cfg, 0, backend="numpy")


def test_masks_remove_the_stated_rows():
    norms = np.array([0.3, 0.05, 0.2, 0.05, 0.4, 0.1])
    np.testing.assert_array_equal(P.magnitude_keep(norms, 3), [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(P.largest_keep(norms, 2), [0, 1, 1, 1, 0, 1])
    np.testing.assert_array_equal(P.magnitude_keep(norms, 1, among=[0, 2, 4]), [1, 1, 0, 1, 1, 1])
    keep = P.random_keep(6, 2, np.random.default_rng(0), among=[0, 2, 4])
    assert keep.sum() == 4 and set(np.flatnonzero(keep == 0)) <= {0, 2, 4}
    assert P.rate_to_count(0.15, 40) == 6 and P.rate_to_count(0.0, 40) == 0
    with pytest.raises(ValueError, match="k must be"):
        P.magnitude_keep(norms, 7)
    with pytest.raises(ValueError, match="rate"):
        P.rate_to_count(1.5, 10)


def test_evaluate_masks_equals_measure_with_keep(run):
    """One unpruned pass + Σ keep_i a_i r_i gives the pruned model's F (spec L9): same numbers as
    ``measure(..., keep=k)`` on the same prompts (two batches of 300 = two chunks of 300)."""
    m = run.params["W_O"].shape[0]
    rng = np.random.default_rng(5)
    keeps = np.array([np.ones(m), P.magnitude_keep(P.row_norms(run.params), 16), P.random_keep(m, 12, rng)])
    ev = P.evaluate_masks(run.params, run.config, run.data, keeps, 600, np.random.default_rng(1), tasks="ood",
                          alpha=0.6, n_batches=2)
    for j, k in enumerate(keeps):
        ref = measure(run.params, run.config, run.data, 600, np.random.default_rng(1), tasks="ood", alpha=0.6,
                      keep=k, chunk=300)
        assert ev["hinge"][j] == pytest.approx(ref["hinge"], rel=1e-12, abs=1e-14)
        assert ev["error"][j] == pytest.approx(ref["error"], abs=1e-15)
    # a contrast's mean is the difference of the means; its SE is 0 only for identical masks
    d, se = P.mask_contrast(ev, "hinge", [-1.0, 0.0, 1.0])
    assert d == pytest.approx(ev["hinge"][2] - ev["hinge"][0], abs=1e-14) and se > 0
    assert P.mask_contrast(ev, "hinge", [1.0, 0.0, 0.0])[1] > 0
    with pytest.raises(ValueError, match="keeps"):
        P.evaluate_masks(run.params, run.config, run.data, np.full((1, m), 0.5), 10, np.random.default_rng(0))
