"""Adapters from the spec Y and spec L prompts to spec-T token sequences (refimpl.transformer.adapters):
shapes, where the label row sits, and that nothing leaks the labels the model must predict."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.experiments.adapters import li_token_roles, li_tokens, yang_tokens
from refimpl.li2024 import preset as li_preset
from refimpl.li2024.data import make_instance, sample_batch
from refimpl.yang2024.data import embedding, make_dictionary, sample_prompts


@pytest.fixture(scope="module")
def yang():
    V_all, Z_all = make_dictionary(12, 5, 3, 0)
    pr = sample_prompts(Z_all, 4, 0.1, 7, 1)
    return V_all, pr


def test_yang_tokens_shapes_and_label_row(yang):
    V_all, pr = yang
    X, t = yang_tokens(V_all, pr["y_all"], 4)
    assert X.shape == (7, 12, 6) and t.shape == (7, 12)
    np.testing.assert_array_equal(t, pr["y_all"])
    for b in range(7):  # row k of X[b] is column k of the spec's E (spec Y4)
        np.testing.assert_array_equal(X[b], embedding(V_all, pr["y"][b]).T)
    np.testing.assert_array_equal(X[:, :4, 5], pr["y_all"][:, :4])  # labels in the last feature
    assert np.all(X[:, 4:, 5] == 0)


def test_yang_tokens_do_not_leak_the_query_labels(yang):
    V_all, pr = yang
    y2 = pr["y_all"].copy()
    y2[:, 4:] = np.random.default_rng(0).standard_normal((7, 8)) * 100
    X1, _ = yang_tokens(V_all, pr["y_all"], 4)
    X2, t2 = yang_tokens(V_all, y2, 4)
    np.testing.assert_array_equal(X1, X2)  # changing the K − N unseen labels leaves X untouched
    assert not np.array_equal(t2, pr["y_all"])


def test_yang_tokens_errors(yang):
    V_all, pr = yang
    with pytest.raises(ValueError, match="N must be"):
        yang_tokens(V_all, pr["y_all"], 0)
    with pytest.raises(ValueError, match="N must be"):
        yang_tokens(V_all, pr["y_all"], 13)
    with pytest.raises(ValueError, match="y_all must have shape"):
        yang_tokens(V_all, pr["y_all"][:, :5], 4)
    bad = pr["y_all"].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="y_all must be finite"):
        yang_tokens(V_all, bad, 4)


@pytest.fixture(scope="module")
def li():
    cfg = li_preset("tiny")
    inst = make_instance(cfg.data, 0)
    return cfg, inst, sample_batch(inst, 50, np.random.default_rng(1), tasks="unseen")


def test_li_tokens_shapes_and_query_last(li):
    cfg, inst, b = li
    X, z = li_tokens(b)
    l = cfg.data.l_test
    assert X.shape == (50, l + 1, cfg.data.d) and z.shape == (50,)
    np.testing.assert_array_equal(X, b["P"].transpose(0, 2, 1))
    d_x = cfg.data.d_x
    assert np.all(X[:, -1, d_x:] == 0)  # the query's label rows are zero (spec L5)
    # every context token carries ±q in its label rows, matching its label y_i
    np.testing.assert_allclose(X[:, :l, d_x:], b["y"][..., None] * inst.q, atol=0)
    np.testing.assert_array_equal(z, b["z"])


def test_li_tokens_do_not_leak_the_query_label(li):
    _, inst, _ = li
    b = sample_batch(inst, 400, np.random.default_rng(2), tasks="unseen")
    X, z = li_tokens(b)
    d_x = inst.cfg.d_x
    assert np.all(X[:, -1, d_x:] == 0)  # the query token's label rows are zero
    # X is a function of P alone: flipping every query label changes the target, never the tokens
    X2, z2 = li_tokens({**b, "z": -b["z"]})
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(z2, -z)


def test_li_token_roles(li):
    _, _, b = li
    r = li_token_roles(b)
    l = b["pattern"].shape[1] - 1
    for key in ("same", "other", "context"):
        assert r[key].shape == b["pattern"].shape and not r[key][:, -1].any()
    np.testing.assert_array_equal(r["same"][:, :l], b["pattern"][:, :l] == b["pattern"][:, l:])
    assert not np.any(r["same"] & r["other"])  # the query's pattern is one of the task's two
    # same-pattern contexts carry the query's label (f is ±1 on the task's two patterns)
    lab = b["y"] * b["z"][:, None]
    assert np.all(lab[r["same"][:, :l]] == 1)


def test_li_tokens_errors(li):
    _, _, b = li
    with pytest.raises(ValueError, match="batch must be a dict"):
        li_tokens({"P": b["P"]})
    with pytest.raises(ValueError, match="±1"):
        li_tokens({"P": b["P"], "z": b["z"] * 0.5})
    with pytest.raises(ValueError, match="shape"):
        li_tokens({"P": b["P"], "z": b["z"][:3]})
