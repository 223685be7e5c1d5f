"""The classical learners of spec L E3 (refimpl.li2024.classical), fitted per prompt: exact on easy
prompts (noise-free, α' = 1: 1-NN and the linear SVM cannot err once the context holds the query's
pattern / both classes), single-class contexts and l < k handled, bad shapes and names refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.li2024.classical import LEARNERS, classical_errors
from refimpl.li2024.config import DataConfig
from refimpl.li2024.data import make_instance, sample_batch


def context_arrays(batch, d_x):
    """(X (n, l, d_x), y (n, l), x_query (n, d_x), z (n,)) of a batch, as the E3 check builds them."""
    P = batch["P"]
    l = P.shape[2] - 1
    return P[:, :d_x, :l].transpose(0, 2, 1), batch["y"], P[:, :d_x, l], batch["z"]


def test_classical_learners_are_exact_on_noise_free_prompts():
    """κ = 0, α' = 1: contexts are exactly µ_a (+1) or µ_b (−1). 1-NN errs only when no context has
    the query's pattern (then the only candidate is the other class: always wrong); the linear SVM
    never errs when both classes are present; and nobody errs beyond the k = 0 prompts by much."""
    cfg = DataConfig(d_x=12, d_y=4, M1=6, M2=6, kappa_max=0.0, alpha_test=1.0, l_test=6)
    inst = make_instance(cfg, 3)
    b = sample_batch(inst, 300, np.random.default_rng(4), tasks="all")
    X, y, xq, z = context_arrays(b, cfg.d_x)
    err = classical_errors(X, y, xq, z)
    k = np.sum(b["pattern"][:, :-1] == b["pattern"][:, -1:], axis=1)
    both = (y == 1).any(axis=1) & (y == -1).any(axis=1)
    assert (k == 0).sum() > 0 and both.sum() > 200  # the sample covers both situations
    np.testing.assert_array_equal(err["1nn"], k == 0)  # wrong exactly when the query's pattern is absent
    assert not err["svm_linear"][both].any()
    assert not err["svm_gauss"][both & (k >= 2)].any()
    for name in LEARNERS:
        assert err[name][k >= 3].mean() <= 0.05, name


def test_single_class_context_predicts_that_class_and_short_contexts_work():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 2, 5))  # l = 2 < 3 neighbours
    y = np.array([[1, 1], [-1, -1], [1, -1]])
    xq = np.vstack([X[0, 0], X[1, 1], X[2, 1] + 1e-3])  # third query next to its −1 context
    z = np.array([1.0, 1.0, -1.0])
    err = classical_errors(X, y, xq, z)
    for name in LEARNERS:
        assert not err[name][0], name  # all +1 context, z = +1
        assert err[name][1], name  # all −1 context, z = +1: predicted −1
    assert not err["1nn"][2]


def test_classical_errors_rejects_mismatched_shapes_and_names():
    X, y = np.zeros((2, 3, 4)), np.ones((2, 3))
    with pytest.raises(ValueError, match="shapes"):
        classical_errors(X, y[:, :2], np.zeros((2, 4)), np.ones(2))
    with pytest.raises(ValueError, match="unknown classical"):
        classical_errors(X, y, np.zeros((2, 4)), np.ones(2), names=("perceptron",))
