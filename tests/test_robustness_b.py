"""The robustness studies of E3 and L15 (iii) (validation/robustness/e3.py, l15.py), each run at a tiny
size through a real serial Context: the rows (a dimensions row, then one per setting), their numbers,
and that each setting's verdict is the row's own check on the same data, recomputed here from
independently trained runs (same seeds and backend, no cache).

The modules' grids, seeds and sizes are patched down to a few seconds; training takes the NumPy path.
"""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.li2024 import data as ldata
from refimpl.li2024 import preset, train
from refimpl.li2024.checks import classical as cc
from refimpl.li2024.checks import pruning as pc
from refimpl.validation.context import Context
from refimpl.validation.robustness import e3, l15
from refimpl.validation.robustness._study import Setting

SEEDS = (0, 1)


def _run_module(mod, tmp_path, **patches):
    """``mod.run`` on a fresh quick-profile Context, with the module's globals patched."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("refimpl.validation.li2024._common.jit_disabled", lambda: True)  # NumPy training path
        for name, value in patches.items():
            mp.setattr(mod, name, value)
        ctx = Context("robustness", "quick", tmp_path, code="test", progress=False)
        rows = mod.run(ctx)
    return rows, ctx


def _common_rows(rows, claim, settings, fig):
    head, body = rows[0], rows[1:]
    assert head.id == f"{claim} · dimensions" and head.verdict == "info"
    assert head.numbers["settings"] == [s.name for s in settings] and head.numbers["seeds"] == list(SEEDS)
    assert {d["key"] for d in head.numbers["dims"]} == {k for s in settings for k in s.dims}
    assert [r.id for r in body] == [f"{claim} · {s.name}" for s in settings]
    for r, s in zip(body, settings):
        assert r.verdict in ("pass", "fail")
        assert r.figure == head.figure == fig
        assert r.numbers["setting"] == s.name and r.numbers["dims"] == list(s.dims)
        assert r.numbers["exploratory"] == s.exploratory and r.numbers["seeds"] == list(SEEDS)
        assert ("EXPLORATORY" in r.claim) == s.exploratory
    return {s.name: r for s, r in zip(settings, body)}


# --------------------------------------------------------------------------------------------
# E3
# --------------------------------------------------------------------------------------------
E3_BASE = preset("tiny").replace(train=dict(steps=150, n_eval=64))
E3_CELL = (20, 0.6, 3000, 15)
E3_SETTINGS = [
    Setting("profile", ()),
    Setting("Kk=0", ("kappa",), {"data": {"kappa_max": 0.0}}),
    Setting("beta=2", ("beta",), {"data": {"beta": 2.0}}),
    Setting("steps=50", ("steps",), {"train": {"steps": 50}}),
    Setting("Kk=1.5", ("kappa",), {"data": {"kappa_max": 1.5}}, exploratory=True),
    Setting("xnoise=1", ("xnoise",), {}, {"x_noise": 1.0}, exploratory=True),
]


@pytest.fixture(scope="module")
def e3_rows(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e3")
    rows, ctx = _run_module(e3, tmp, BASE=E3_BASE, SETTINGS={"quick": E3_SETTINGS}, SEEDS={"quick": SEEDS},
                            CELL={"quick": E3_CELL})
    return rows, ctx, tmp


def _e3_direct(setting):
    """The setting's check, from scratch: train, measure the cell, judge."""
    cfg = e3.config(setting, E3_BASE)
    sigma = setting.knobs.get("x_noise")
    cells = []
    for seed in SEEDS:
        r = train(cfg, seed, backend="numpy", progress=False)
        cells.append([e3.measure_noisy_cell(r, E3_CELL, sigma) if sigma else cc.measure_e3(r, [E3_CELL])[0]])
    return cc.check_e3_icl_vs_classical(cells, list(SEEDS))


def test_e3_rows_and_numbers(e3_rows):
    rows, ctx, tmp = e3_rows
    by = _common_rows(rows, "E3", E3_SETTINGS, "robustness_E3.png")
    assert (tmp / "robustness_E3.png").stat().st_size > 5_000
    for r in by.values():
        n = r.numbers
        assert n["learners"][0] == "icl" and n["classical"] == list(cc.E3_CLASSICAL)
        assert len(n["error"]) == len(n["learners"]) and len(n["z"]) == len(n["classical"])
        assert n["max_z"] == pytest.approx(float(np.max(n["z"]))) and len(n["seed_max_z"]) == len(SEEDS)
        assert n["cell"] == list(E3_CELL) and len(n["icl_plain"]) == len(SEEDS)
        assert set(n["stratum_error"]) == set(n["learners"]) and len(n["stratum_weights"]) == len(n["strata"])
        assert sum(n["stratum_weights"]) == pytest.approx(1.0)
    assert by["Kk=1.5"].numbers["kappa_max"] == 1.5 and by["profile"].numbers["kappa_max"] == 0.5
    assert by["xnoise=1"].numbers["x_noise"] == 1.0
    # the noisy test prompts change what every learner sees (same trained model as the profile's)
    assert not np.allclose(by["xnoise=1"].numbers["error"], by["profile"].numbers["error"])
    assert cc.sample_batch is ldata.sample_batch  # the swap is undone
    # every setting but xnoise trains its own model; xnoise measures the profile's: 5 configs × 2 seeds
    assert ctx.cache_misses == 5 * len(SEEDS) + len(E3_SETTINGS) * len(SEEDS)


@pytest.mark.parametrize("name", ["profile", "Kk=1.5", "xnoise=1"])
def test_e3_verdict_is_the_rows_own_check(e3_rows, name):
    rows, _, _ = e3_rows
    row = next(r for r in rows if r.id == f"E3 · {name}")
    claim = _e3_direct(next(s for s in E3_SETTINGS if s.name == name))
    assert row.verdict == claim.verdict
    assert row.measured == claim.measured and row.expected == claim.expected
    np.testing.assert_allclose(row.numbers["diff"], claim.numbers["check"]["diff"])
    np.testing.assert_allclose(row.numbers["error"], claim.numbers["check"]["error"])


def test_e3_config_bypasses_only_above_the_spec_bound():
    cfg = e3.config(Setting("k", ("kappa",), {"data": {"kappa_max": 1.5}}), E3_BASE)
    assert cfg.data.kappa_max == 1.5 and cfg.to_dict()["data"]["kappa_max"] == 1.5
    b = ldata.sample_batch(ldata.make_instance(cfg.data, 0), 200, np.random.default_rng(0))
    assert np.abs(b["kappa"]).max() > 0.5
    assert e3.config(Setting("k", ("kappa",), {"data": {"kappa_max": 0.25}}), E3_BASE).data.kappa_max == 0.25
    assert E3_BASE.data.kappa_max == 0.5  # the base is not touched


def test_e3_profiles_are_valid_grids():
    for p in ("quick", "full"):
        e3.check_grid(e3.DIMS, e3.SETTINGS[p])
        assert len(e3.SEEDS[p]) >= 3
        assert all(s.exploratory == (s.over.get("data", {}).get("kappa_max", 0) > 0.5 or "x_noise" in s.knobs)
                   for s in e3.SETTINGS[p])


# --------------------------------------------------------------------------------------------
# L15 (iii)
# --------------------------------------------------------------------------------------------
L15_BASE = preset("tiny").replace(data=dict(l_train=12, l_test=12), model=dict(m=40),
                                  train=dict(steps=200, batch_size=32, n_eval=128))
L15_SIZES = (2000, 3)
L15_SETTINGS = [
    Setting("profile", ()),
    Setting("steps=100", ("steps",), {"train": {"steps": 100}}),
    Setting("lr=0.1", ("lr",), {"train": {"lr": 0.1}}),
    Setting("alpha=0.4", ("alpha",), {"data": {"alpha": 0.4}}),
]


@pytest.fixture(scope="module")
def l15_rows(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("l15")
    rows, ctx = _run_module(l15, tmp, BASE=L15_BASE, SETTINGS={"quick": L15_SETTINGS}, SEEDS={"quick": SEEDS},
                            SIZES={"quick": L15_SIZES})
    return rows, ctx, tmp


def test_l15_rows_and_numbers(l15_rows):
    rows, ctx, tmp = l15_rows
    k = len(L15_SETTINGS) + 1  # the L15iii rows, then the L15iv rows
    by = _common_rows(rows[:k], "L15iii", L15_SETTINGS, "robustness_L15iii.png")
    by_iv = _common_rows(rows[k:], "L15iv", L15_SETTINGS, "robustness_L15iv.png")
    assert len(rows) == 2 * k and (tmp / "robustness_L15iv.png").exists()
    for r in by_iv.values():
        z = np.asarray(r.numbers["diff_hinge"]) / np.asarray(r.numbers["diff_hinge_se"])
        assert r.numbers["min_z"] == pytest.approx(float(z.min()))
    assert (tmp / "robustness_L15iii.png").stat().st_size > 5_000
    for r in by.values():
        n = r.numbers
        d = np.asarray(n["d_hinge_random"])
        assert d.shape == (len(SEEDS), len(pc.L15III_R)) and np.allclose(n["R"], pc.L15III_R)
        assert n["min_ratio"] == pytest.approx(float((d / np.asarray(n["R"])).min()))
        assert len(n["seed_min_ratio"]) == len(SEEDS) and n["ood_verdict"] in ("pass", "fail")
        assert (n["n"], n["n_random"]) == L15_SIZES and "the OOD row at this setting" in r.measured
    assert ctx.cache_misses == 2 * len(L15_SETTINGS) * len(SEEDS)  # a training and a measurement each


@pytest.mark.parametrize("name", ["profile", "alpha=0.4"])
def test_l15_verdict_is_the_rows_own_check(l15_rows, name):
    rows, _, _ = l15_rows
    row = next(r for r in rows if r.id == f"L15iii · {name}")
    s = next(s for s in L15_SETTINGS if s.name == name)
    cfg = L15_BASE.replace(**s.over) if s.over else L15_BASE
    meas = [pc.measure_pruning(train(cfg, seed, backend="numpy", progress=False), *L15_SIZES) for seed in SEEDS]
    claim, ood = pc.check_l15iii_large_rows(meas, "unseen"), pc.check_l15iii_large_rows(meas, "ood")
    assert row.verdict == claim.verdict and row.numbers["ood_verdict"] == ood.verdict
    assert row.measured.startswith(claim.measured)
    np.testing.assert_allclose(row.numbers["d_hinge_random"], claim.numbers["d_hinge_random"])
    iv = pc.check_l15iv_magnitude_vs_random(meas, "unseen")
    row_iv = next(r for r in rows if r.id == f"L15iv · {name}")
    assert (row_iv.verdict, row_iv.measured, row_iv.expected) == (iv.verdict, iv.measured, iv.expected)


def test_l15_profiles_are_valid_grids():
    for p in ("quick", "full"):
        l15.check_grid(l15.DIMS, l15.SETTINGS[p])
        assert len(l15.SEEDS[p]) >= 3
