"""The robustness studies of the deep model (validation/robustness/deep.py: E7, E7-peak, L14-deep)
and of Fig4-floor (validation/robustness/fig4.py), each run at a tiny size through a real
Context: the row ids and numbers, and every setting's verdict against the row's own check
recomputed here, independently of the study, on the same runs (the deep runs read back from the
cache under the key the main row writes, the Fig. 4 runs measured again over the row's H)."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.experiments.li_deep import li_instance, li_ood_curves
from refimpl.li2024 import preset as li_preset
from refimpl.li2024.checks import deep as dchecks
from refimpl.li2024.checks import ood as ochecks
from refimpl.transformer.config import preset as t_preset
from refimpl.validation.context import Context
from refimpl.validation.li2024 import deep as deep_main
from refimpl.validation.plan import ContextSpec, NotReady, PlanContext
from refimpl.validation.robustness import deep, fig4
from refimpl.validation.robustness._study import Setting, check_grid
from refimpl.validation.yang2024 import figures
from refimpl.yang2024.checks import check_fig4_floor, measure_fig4_floor
from refimpl.yang2024.config import Config


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """BLAS on one thread, as on Dask workers: the (20, 41, 64) products of the l = 40 curves cross
    OpenBLAS's threading threshold, and on a busy machine its spinning threads made them ~100× slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


# ------------------------------------------------------------------------------------ the real grids
@pytest.mark.parametrize("mod", [deep, fig4])
@pytest.mark.parametrize("profile", ["quick", "full"])
def test_real_grids_are_well_formed(mod, profile):
    """Both profiles: unique names, declared dimensions, one profile setting, ≥ 3 dimensions,
    ≥ 3 seeds, and every setting configures (no computation)."""
    check_grid(mod.DIMS, mod.SETTINGS[profile])
    assert len(mod.SEEDS[profile]) >= 3
    for s in mod.SETTINGS[profile]:
        mod.configure(profile, s)
    if mod is fig4:  # the grid holds the row's H, from ~N/3 to above N
        N, fl = fig4.configure(profile, fig4.SETTINGS[profile][0])[0].N, figures.PROFILE[profile]["floor"]
        grid = fig4.GRID[profile]
        assert set(fl["Hs"]) <= set(grid) and min(grid) <= -(-N // 3) and sum(H > N for H in grid) >= 2


def test_deep_profile_setting_is_the_main_rows_run():
    """The profile's own setting asks for exactly the main row's ``li2024/deep_train`` entries."""
    for profile in ("quick", "full"):
        base, tcfg, p = deep.configure(profile, Setting("profile"))
        main_base = li_preset("default")
        main_p = deep_main.PROFILE[profile]
        main_key = {"cfg": main_base.to_dict(), "tcfg": deep_main._tcfg(main_base, main_p).to_dict(),
                    "p": {k: v for k, v in main_p.items() if k not in ("seeds", "n")}}
        assert deep.train_key(base, tcfg, p) == main_key


# ------------------------------------------------------------------------------------ deep, tiny
TINY_DEEP = {"seeds": (0,), "steps": 4, "batch": 8, "lr": 3e-4, "warmup": 1, "l_range": (1, 40),
             "snapshot_every": 2, "eval_every": 4, "n": 20, "n_traj": 16, "backend": "numpy"}
DEEP_SETTINGS = [Setting("profile"), Setting("steps=6", ("steps",), {"train": {"steps": 6}}),
                 Setting("d=16", ("width",), {"tcfg": {"d_model": 16, "d_ff": 32}}),
                 Setting("pos=none", ("pos",), {"tcfg": {"positions": "none"}})]
DEEP_SEEDS = (0, 1)


def _deep_tiny(monkeypatch):
    monkeypatch.setitem(deep_main.PROFILE, "quick", TINY_DEEP)
    monkeypatch.setitem(deep.SETTINGS, "quick", DEEP_SETTINGS)
    monkeypatch.setitem(deep.SEEDS, "quick", DEEP_SEEDS)


def _deep_expected(name):
    """(li config, transformer config, training options) of a tiny setting, written out here."""
    base = li_preset("default")
    tc = dict(d_in=base.data.d, max_T=41)
    return {"profile": (base, t_preset("gpt2_3l2h", **tc), TINY_DEEP),
            "steps=6": (base, t_preset("gpt2_3l2h", **tc), {**TINY_DEEP, "steps": 6}),
            "d=16": (base, t_preset("gpt2_3l2h", **tc, d_model=16, d_ff=32), TINY_DEEP),
            "pos=none": (base, t_preset("gpt2_3l2h", **tc, positions="none"), TINY_DEEP)}[name]


def test_deep_study_rows_are_the_rows_own_checks(tmp_path, monkeypatch):
    _deep_tiny(monkeypatch)
    ctx = Context("robustness", "quick", tmp_path, progress=False, code="test")
    rows = deep.run(ctx)
    names = [s.name for s in DEEP_SETTINGS]
    assert [r.id for r in rows] == ["E7, E7-peak, L14-deep · dimensions"] + [
        f"{c} · {n}" for c in deep.CLAIMS for n in names]
    assert rows[0].verdict == "info" and rows[0].numbers["settings"] == names
    assert [d["key"] for d in rows[0].numbers["dims"]] == ["steps", "width", "pos"]
    by_id = {r.id: r for r in rows}
    for name in names:
        base, tcfg, p = _deep_expected(name)
        key = {"cfg": base.to_dict(), "tcfg": tcfg.to_dict(),
               "p": {k: v for k, v in p.items() if k not in ("seeds", "n")}}
        # the runs, read back under the key validation/li2024/deep.py writes (never recomputed here)
        runs = [ctx.cached("li2024/deep_train", {**key, "seed": s}, lambda: pytest.fail("run not cached"))
                for s in DEEP_SEEDS]
        assert [r.records["step"][-1] for r in runs] == [p["steps"]] * 2
        trajs = [r.extra["traj"] for r in runs]
        e1 = [li_ood_curves(r.params, tcfg, li_instance(base, s), ochecks.L14_S1, (10, 20, 40), p["n"], seed=s,
                            alpha=base.data.alpha_test) for s, r in zip(DEEP_SEEDS, runs)]
        own = {"E7": dchecks.check_e7_every_layer(trajs), "E7-peak": dchecks.check_e7_peak(trajs),
               "L14-deep S1": dchecks.deep_claim(ochecks.check_l14_s1(e1), deep_main.MODEL),
               "L14-deep plateau": dchecks.deep_claim(ochecks.check_l14_plateau(e1), deep_main.MODEL)}
        one = [{"E7": dchecks.check_e7_every_layer([t]).verdict, "E7-peak": dchecks.check_e7_peak([t]).verdict,
                "L14-deep S1": ochecks.check_l14_s1([c]).verdict, "L14-deep plateau": ochecks.check_l14_plateau([c]).verdict}
               for t, c in zip(trajs, e1)]
        for claim, c in own.items():
            row = by_id[f"{claim} · {name}"]
            assert row.verdict == c.verdict and row.verdict in ("pass", "fail")
            assert row.expected == c.expected and row.measured.startswith(c.measured)
            assert row.numbers["setting"] == name and row.numbers["seeds"] == list(DEEP_SEEDS)
            assert row.numbers["seed_verdicts"] == [o[claim] for o in one]
            assert row.numbers["steps"] == p["steps"] and row.numbers["tcfg"] == tcfg.to_dict()
            np.testing.assert_allclose(row.numbers["unseen_error_end"], [r.records["error"][-1] for r in runs])
            for k, v in c.numbers.items():
                np.testing.assert_array_equal(row.numbers[k], v)
        np.testing.assert_array_equal(by_id[f"L14-deep S1 · {name}"].numbers["error_at"],
                                      [[cv[s1]["error"][1] for s1 in ochecks.L14_S1] for cv in e1])
    assert by_id["E7 · d=16"].numbers["overrides"] == {"tcfg": {"d_model": 16, "d_ff": 32}}
    for claim in deep.CLAIMS:
        assert (tmp_path / f"robustness_deep_{claim.replace(' ', '_')}.png").is_file()


def test_deep_study_requests_every_run_before_using_one(tmp_path, monkeypatch):
    """Planned as a Dask run plans it: every (setting, seed) training run is declared before the
    module stops at its first placeholder."""
    _deep_tiny(monkeypatch)
    tasks = []

    class Planner:
        def record(self, task, module):
            tasks.append(task)

    ctx = PlanContext("robustness", "quick", tmp_path, planner=Planner(), module="deep", code="test",
                      spec=ContextSpec("robustness", "quick", None, "test", None))
    with pytest.raises(NotReady):
        deep.run(ctx)
    names = [t.entry.name for t in tasks]
    n = len(DEEP_SETTINGS) * len(DEEP_SEEDS)
    assert names[:n] == ["li2024/deep_train"] * n and names[n:] == ["robustness/deep_e1"] * n
    assert all(t.captured for t in tasks[n:])  # each curve waits for its run


# ------------------------------------------------------------------------------------ Fig4-floor, tiny
TINY_CFG = dict(K=12, N=4, d=5, m=3, H=8, tau=0.01)
TINY_FLOOR = {"lr": 1e-2, "steps": 1000, "Hs": (2, 4, 8), "record_every": 50}
FIG4_SETTINGS = [Setting("profile"), Setting("lr=3e-2", ("lr",), {"floor": {"lr": 3e-2}}),
                 Setting("steps=300", ("steps",), {"floor": {"steps": 300, "record_every": 15}}),
                 Setting("tau=0.1", ("tau",), {"cfg": {"tau": 0.1}})]
FIG4_GRID = (1, 2, 3, 4, 6, 8)
FIG4_SEEDS = (0, 1)


def test_fig4_study_rows_are_the_rows_own_check(tmp_path, monkeypatch):
    monkeypatch.setitem(figures.PROFILE, "quick", {**figures.PROFILE["quick"], "cfg": TINY_CFG, "floor": TINY_FLOOR})
    monkeypatch.setitem(fig4.SETTINGS, "quick", FIG4_SETTINGS)
    monkeypatch.setitem(fig4.SEEDS, "quick", FIG4_SEEDS)
    monkeypatch.setitem(fig4.GRID, "quick", FIG4_GRID)
    ctx = Context("robustness", "quick", tmp_path, progress=False, code="test")
    rows = fig4.run(ctx)
    names = [s.name for s in FIG4_SETTINGS]
    assert [r.id for r in rows] == ["Fig4-floor · dimensions"] + [f"Fig4-floor · {n}" for n in names]
    assert rows[0].verdict == "info" and [d["key"] for d in rows[0].numbers["dims"]] == ["lr", "steps", "tau"]
    expected = {"profile": (Config(**TINY_CFG), TINY_FLOOR), "lr=3e-2": (Config(**TINY_CFG), {**TINY_FLOOR, "lr": 3e-2}),
                "steps=300": (Config(**TINY_CFG), {**TINY_FLOOR, "steps": 300, "record_every": 15}),
                "tau=0.1": (Config(**{**TINY_CFG, "tau": 0.1}), TINY_FLOOR)}
    seen = set()
    for row in rows[1:]:
        cfg, fl = expected[row.numbers["setting"]]
        assert row.numbers["N"] == 4 and row.numbers["lr"] == fl["lr"] and row.numbers["steps"] == fl["steps"]
        assert row.numbers["grid"] == list(FIG4_GRID) and row.numbers["row_H"] == list(fl["Hs"])
        # the row's check on the row's own measurement (the main row's computation), seed by seed
        own = [check_fig4_floor(measure_fig4_floor(cfg, fl["Hs"], fl["lr"], fl["steps"], s, fl["record_every"]))
               for s in FIG4_SEEDS]
        assert row.numbers["seed_verdicts"] == [c.verdict for c in own]
        assert row.verdict == ("pass" if all(c.verdict == "pass" for c in own) else "fail")
        assert row.expected.startswith(own[0].expected)
        for j, c in enumerate(own):
            for H, v in c.numbers["final"].items():
                assert row.numbers["final"][H][j] == v
        # the localisation: the same rule for one H < N at a time, against the grid's H ≥ N
        for j, s in enumerate(FIG4_SEEDS):
            floors = {str(H): check_fig4_floor(measure_fig4_floor(cfg, (H, 4, 6, 8), fl["lr"], fl["steps"], s,
                                                                  fl["record_every"])).verdict == "pass"
                      for H in (1, 2, 3)}
            assert row.numbers["floor"][j] == floors
            seen.update(floors.values())
            assert row.numbers["smallest_without_floor"][j] == min([int(H) for H, f in floors.items() if not f] + [4])
    assert seen == {True, False}  # the tiny grid has H with and without a floor: both branches are exercised
    assert (tmp_path / "robustness_Fig4-floor.png").is_file()
