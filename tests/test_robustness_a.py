"""The L13d and L14 robustness studies (validation/robustness/l13d.py, l14.py) at a tiny size through
a real validation Context: the rows' ids, verdicts and numbers, each setting judged by the row's own
check on the same runs, and the grid rule (at least 3 [C] dimensions) enforced before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from refimpl.li2024 import preset
from refimpl.li2024.checks import generalization as gchecks
from refimpl.li2024.checks import ood as ochecks
from refimpl.li2024.data import make_data, with_ood
from refimpl.validation.context import Context, default_index
from refimpl.validation.jsonable import strict
from refimpl.validation.li2024._common import fitter
from refimpl.validation.plan import ContextSpec, NotReady, PlanContext
from refimpl.validation.robustness import l13d, l14
from refimpl.validation.robustness._study import Setting

TINY = preset("tiny")


def _ctx(tmp_path):
    return Context("robustness", "quick", tmp_path, code="test", progress=False)


def _structure(rows, claims, settings, seeds):
    head, body = rows[0], rows[1:]
    assert head.id.endswith(" · dimensions") and head.verdict == "info"
    assert head.numbers["settings"] == [s.name for s in settings] and head.numbers["seeds"] == list(seeds)
    assert [r.id for r in body] == [f"{c} · {s.name}" for s in settings for c in claims]
    for r in body:
        assert r.verdict in ("pass", "fail") and r.figure
        assert r.numbers["setting"] in [s.name for s in settings] and r.numbers["seeds"] == list(seeds)
        json.dumps(strict(r.numbers), allow_nan=False)  # results.json takes the numbers as they are
    return {r.id: r for r in body}


# ------------------------------------------------------------------------------------------- L13d
L13D_SETTINGS = [
    Setting("profile", (), {}, {"max_steps": 1000}),
    Setting("steps=300", ("steps",), {}, {"max_steps": 300}),
    Setting("lr=2.0", ("lr",), {"train": {"lr": 2.0}}, {"max_steps": 1000}),
    Setting("budget=250·α^(−1)", ("budget",), {}, {"budget": (250, -1.0)}),
]


@pytest.fixture
def tiny_l13d(monkeypatch):
    monkeypatch.setattr(l13d, "PRESET", "tiny")
    monkeypatch.setattr(l13d, "ALPHAS", {"quick": (0.6, 1.0)})
    monkeypatch.setattr(l13d, "LENGTHS", (1, 2))
    monkeypatch.setattr(l13d, "SEEDS", {"quick": (0,)})
    monkeypatch.setattr(l13d, "SETTINGS", {"quick": L13D_SETTINGS})


def test_l13d_rows_are_the_checks_verdicts_on_the_same_runs(tiny_l13d, tmp_path):
    ctx = _ctx(tmp_path)
    rows = l13d.run(ctx)
    by_id = _structure(rows, ["L13d"], L13D_SETTINGS, (0,))
    assert (tmp_path / "robustness_L13d.png").exists()
    fit = fitter(ctx)
    for s in L13D_SETTINGS:
        row = by_id[f"L13d · {s.name}"]
        base = TINY.replace(**s.over) if s.over else TINY
        if "budget" in s.knobs:
            f, ms = l13d.budget_fit(fit, *s.knobs["budget"]), 417
            assert row.numbers["steps_per_alpha"] == [417, 250] and "α=0.6: 417" in row.measured
        else:
            f, ms = fit, s.knobs["max_steps"]
            assert row.numbers["max_steps"] == ms and row.numbers["steps_per_alpha"] is None
        hits = ctx.cache_hits
        own = gchecks.check_l13d_min_train_length(f, base, (0.6, 1.0), (1, 2), (0,), max_steps=ms)
        assert ctx.cache_hits > hits  # the same (cached) runs, not new ones
        assert row.verdict == own.verdict
        np.testing.assert_array_equal(row.numbers["l_min"], own.numbers["l_min"])
        assert row.numbers["slope"] == own.numbers["slope"]
        assert row.numbers["untrainable"] == int(np.isinf(own.numbers["l_min"]).sum())
    # l_tr = 1 never trains (a softmax over one column has no gradient); 1000 steps train l_tr = 2
    np.testing.assert_array_equal(by_id["L13d · profile"].numbers["l_min"], [[2.0], [2.0]])


def test_l13d_budget_fit_trains_each_alpha_for_its_own_budget():
    seen = []
    f = l13d.budget_fit(lambda cfg, seed, **kw: seen.append((cfg.data.alpha, cfg.train.steps, kw)), 250, -2 / 3)
    for a in (0.2, 1.0):
        f(TINY.replace(data=dict(alpha=a), train=dict(steps=2000)), 0, stop_when=("unseen", "error", 0.02))
    assert seen == [(0.2, 731, {"stop_when": ("unseen", "error", 0.02)}), (1.0, 250, {"stop_when": ("unseen", "error", 0.02)})]


def test_l13d_profiles_vary_three_dimensions_with_three_seeds():
    for p in ("quick", "full"):
        l13d.check_grid(l13d.DIMS, l13d.SETTINGS[p])
        assert len(l13d.SEEDS[p]) >= 3
    assert {s.name for s in l13d.SETTINGS["quick"]} <= {s.name for s in l13d.SETTINGS["full"]}


def test_fewer_than_three_dimensions_are_refused_before_any_work(tiny_l13d, monkeypatch, tmp_path):
    monkeypatch.setattr(l13d, "SETTINGS", {"quick": L13D_SETTINGS[:3]})
    ctx = _ctx(tmp_path)
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        l13d.run(ctx)
    assert ctx.cache_misses == 0


# ------------------------------------------------------------------------------------------- L14
L14_SETTINGS = [
    Setting("profile", ()),
    Setting("odr=dense", ("odr",), {}, {"odr": "dense"}),
    Setting("alpha'=0.6", ("alpha_test",), {}, {"alpha_test": 0.6}),
    Setting("steps=100", ("steps",), {"train": {"steps": 100}}),
]
L14_LENGTHS, L14_N = (10, 20, 40), 300


@pytest.fixture
def tiny_l14(monkeypatch):
    monkeypatch.setattr(l14, "PRESET", "tiny")
    monkeypatch.setattr(l14, "CURVES", {"quick": {"lengths": L14_LENGTHS, "n": L14_N}})
    monkeypatch.setattr(l14, "SEEDS", {"quick": (0,)})
    monkeypatch.setattr(l14, "SETTINGS", {"quick": L14_SETTINGS})


def test_l14_rows_are_the_checks_verdicts_on_the_same_curves(tiny_l14, tmp_path):
    ctx = _ctx(tmp_path)
    rows = l14.run(ctx)
    by_id = _structure(rows, [l14.CLAIM_P, l14.CLAIM_S], L14_SETTINGS, (0,))
    assert rows[0].id == "L14 · dimensions"
    assert (tmp_path / "robustness_L14_plateau.png").exists() and (tmp_path / "robustness_L14_S1.png").exists()
    fit = fitter(ctx)
    for s in L14_SETTINGS:
        base = TINY.replace(**s.over) if s.over else TINY
        hits = ctx.cache_hits
        run = fit(base, 0)
        assert ctx.cache_hits == hits + 1  # the study trained through the validation's cached fit
        alpha = s.knobs.get("alpha_test", 0.8)
        if s.knobs.get("odr", "pair") == "pair":  # computed here without the study's code
            own = [ochecks.ood_curves(run, ochecks.L14_S1, L14_LENGTHS, L14_N, alpha)]
        else:
            own = [l14.curves(run, s.knobs["odr"], alpha, L14_LENGTHS, L14_N)]
        p, c = by_id[f"{l14.CLAIM_P} · {s.name}"], by_id[f"{l14.CLAIM_S} · {s.name}"]
        assert p.verdict == ochecks.check_l14_plateau(own).verdict
        assert c.verdict == ochecks.check_l14_s1(own).verdict
        np.testing.assert_array_equal(p.numbers["ratio"], ochecks.check_l14_plateau(own).numbers["ratio"])
        np.testing.assert_array_equal(c.numbers["error_at"], ochecks.check_l14_s1(own).numbers["error_at"])
        assert p.numbers["odr"] == s.knobs.get("odr", "pair") and c.numbers["alpha_test"] == alpha
        assert p.numbers["mean_error"]["0.5"].shape == (len(L14_LENGTHS),)


def test_l14_odr_constructions():
    inst = make_data(TINY, 0)
    assert l14.odr_instance(inst, "pair", 0) is inst
    for kind in ("unequal", "signed", "single", "dense"):
        new = l14.odr_instance(inst, kind, 0)
        np.testing.assert_allclose(new.ood_coef.sum(axis=1), 1.0)
        np.testing.assert_allclose(new.mu_ood, new.ood_coef @ inst.mu)
        scaled = with_ood(new, S1=0.7)
        np.testing.assert_allclose(scaled.ood_coef.sum(axis=1), 0.7)
    dense = l14.odr_instance(inst, "dense", 0).ood_coef
    assert np.all(dense > 0) and not np.allclose(dense, l14.odr_instance(inst, "dense", 1).ood_coef)
    with pytest.raises(ValueError, match="unknown ODR construction"):
        l14.odr_instance(inst, "nope", 0)


def test_l14_profiles_vary_three_dimensions_with_three_seeds():
    for p in ("quick", "full"):
        l14.check_grid(l14.DIMS, l14.SETTINGS[p])
        assert len(l14.SEEDS[p]) >= 3
        assert 10 in l14.CURVES[p]["lengths"] and 20 in l14.CURVES[p]["lengths"]
        assert l14.CURVES[p]["lengths"][-1] == 40
    assert {s.name for s in l14.SETTINGS["quick"]} <= {s.name for s in l14.SETTINGS["full"]}


# ------------------------------------------------------------------------------------------- Dask
class _Planner:
    def __init__(self):
        self.tasks = []

    def record(self, task, module):
        self.tasks.append(task)


def test_every_setting_is_requested_before_any_value_is_used(tiny_l13d, tiny_l14, tmp_path):
    """Planned for Dask, each study declares all its computations (one per L13d setting, one per
    L14 setting and seed) before it touches the first placeholder."""
    for mod, n in ((l13d, len(L13D_SETTINGS)), (l14, len(L14_SETTINGS))):
        planner = _Planner()
        spec = ContextSpec("robustness", "quick", default_index(), "test", None)
        ctx = PlanContext("robustness", "quick", tmp_path / mod.__name__, planner=planner, module=mod.__name__,
                          spec=spec, code="test")
        with pytest.raises(NotReady):
            mod.run(ctx)
        assert len(planner.tasks) == n and len({t.key for t in planner.tasks}) == n
        assert {t.entry.name for t in planner.tasks} == {"robustness/l13d" if mod is l13d else "robustness/l14_curves"}
