"""Spec L checks of the default training run (refimpl.li2024.checks.training): L13 (a), L16 rise.

Each verdict follows the numbers: a trained tiny model passes at a loose target and fails at an
impossible one; the untrained model fails.
"""

from __future__ import annotations

import pytest

from refimpl.li2024 import preset
from refimpl.li2024.checks import plain_fit
from refimpl.li2024.checks import training as checks

TINY = preset("tiny")


@pytest.fixture(scope="module")
def tiny_run():
    return plain_fit(TINY, 0)


# ------------------------------------------------------------------------------------ L13a, L16
def test_l13a_and_l16_on_a_trained_tiny_model(tiny_run):
    tests = checks.measure_default([tiny_run], 2000)
    a = checks.check_l13a_unseen_error([tiny_run], tests, target=0.2)
    assert a.verdict == "pass" and a.numbers["error_unseen"][0] <= 0.2
    assert checks.check_l13a_unseen_error([tiny_run], tests, target=1e-6).verdict == "fail"
    assert checks.check_l13a_unseen_vs_train([tiny_run], tests, max_gap=0.5).verdict == "pass"
    untrained = plain_fit(TINY.replace(train=dict(steps=0)), 0)
    t0 = checks.measure_default([untrained], 2000)
    assert checks.check_l13a_unseen_error([untrained], t0, target=0.2).verdict == "fail"
    assert checks.check_l16_attention_rise([untrained], final=0.9).verdict == "fail"


def test_l16_rise_reads_the_records_and_passes_a_trained_run(tiny_run):
    c = checks.check_l16_attention_rise([tiny_run], uniform_tol=0.1, final=0.5)
    assert c.numbers["attn_same_start"][0] == tiny_run.records["unseen/attn_same"][0]
    assert c.numbers["attn_same_end"][0] == tiny_run.records["unseen/attn_same"][-1]
    assert c.verdict == "pass", c.measured
