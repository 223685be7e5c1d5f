"""Fig4-floor under other [C] settings: where between N/3 and N does the loss floor of H < N appear?

The row (``validation/yang2024/figures.py``, ``refimpl.yang2024.checks.measure_fig4_floor`` and
``check_fig4_floor``): Adam on the closed-form loss Y7 from the Y6 initialisation, one run per H;
pass when every H < N run fell by < 5% over its last 20% of steps and ends ≥ 10× above every H ≥ N
run (quick: N = 10, lr 1e−2, 5000 steps, H ∈ {4, 8, 10, 16}; full: N = 30, lr 1e−3, 20 000 steps,
H ∈ {10, 20, 30, 64}; one seed).

Here every (setting, seed) is one cached ``robustness/fig4_floor`` entry: the same measurement over
a grid of H from N/3 to N and a few above (:data:`GRID`, which contains the row's H), seeds 0–2 (the
seed draws the dictionary and Q⁰). Each run of H is independent of the others (same data and
initialisation stream for every H), so the row's measurement at a setting is the grid's restriction
to the row's H. Per setting and seed:

- the verdict: ``check_fig4_floor`` on the row's H (at the profile's own setting and seed 0, the
  main row's verdict); the setting passes when every seed passes;
- the localisation: for each H < N of the grid, "at a floor" = ``check_fig4_floor`` on {H} and the
  grid's H ≥ N (the row's rule for that one H); the smallest H without a floor (N when every H < N
  has one).

lr: the quick profile's main Fig. 4 runs use 1e−3 (the paper's 1e−4 scaled for the reduced instance)
and its floor runs 10× that; full uses the paper's 1e−4 and 1e−3. Each profile's setting is the
row's (10×), and "lr" settings go back to 1×, at the row's length and at 10× (quick) / 3× (full) the
steps.

Compute (one core, Numba; one step over the whole grid: ~1 ms quick, ~40 ms full, measured on a
busy machine): quick, 9 settings × 3 seeds, seven at 5000 steps (~5 s a run), one at 20 000 (~20 s),
one at 50 000 (~50 s): ≈ 6 core-minutes. full, 6 settings × 3 seeds, four at 20 000 steps
(~800 s a run), two at 60 000 (~2400 s): ≈ 6–7 core-hours (the two 60 000-step settings are 60%).
"""

from __future__ import annotations

import numpy as np

from refimpl.core.claims import Claim
from refimpl.validation.robustness._study import Dim, Setting, check_grid, dims_row, setting_row, summary_figure
from refimpl.validation.yang2024 import figures
from refimpl.yang2024.checks import check_fig4_floor, measure_fig4_floor

ORDER = 30
CLAIM, SPEC = "Fig4-floor", "spec Y §6 Fig. 4, Y10–Y11"
GRID = {"quick": (3, 4, 5, 6, 7, 8, 9, 10, 12, 16), "full": (10, 15, 20, 25, 28, 30, 32, 64)}  # ⊇ the row's H

DIMS = [
    Dim("lr", "Adam learning rate (profile: the row's, 10× the main Fig. 4 runs': quick 1e−2, full 1e−3)",
        "a floor is a run that stopped falling: at a small step Adam may still descend slowly when the budget "
        "ends (the main Fig4 row's finding at the paper's lr), at a large one it may hover at a level the step sets"),
    Dim("steps", "training length (profile: quick 5000, full 20 000 Adam steps)",
        "the rule reads the fall over the last 20% of steps: a slow descent can look like a floor in a short run"),
    Dim("tau", "feature-noise level τ (profile 0.01, [C])",
        "sets L* and the excess loss left to an H < N model, so the 10× gap to the H ≥ N runs"),
    Dim("tokens", "token normalisation (profile unit norm, [C]; the paper's experiments use raw Gaussian tokens)",
        "changes the conditioning of the attention scores, hence the landscape the H < N runs stall on"),
    Dim("m", "number of basic tasks m (quick's reduced instance: 8; the paper's 20 at N = 30)",
        "if the floor's onset followed m rather than N it would move with m"),
]


def _s(name, dims, *, cfg=None, floor=None, exploratory=False):
    over = {k: v for k, v in (("cfg", cfg), ("floor", floor)) if v}
    return Setting(name, dims, over, exploratory=exploratory)


SETTINGS = {
    "quick": [
        _s("profile", ()),
        _s("lr=1e-3", ("lr",), floor={"lr": 1e-3}),
        _s("lr=1e-3,steps=50000", ("lr", "steps"), floor={"lr": 1e-3, "steps": 50_000, "record_every": 500}),
        _s("steps=20000", ("steps",), floor={"steps": 20_000, "record_every": 200}),
        _s("tau=0.1", ("tau",), cfg={"tau": 0.1}),
        _s("tau=0.001", ("tau",), cfg={"tau": 0.001}),
        _s("tokens=raw", ("tokens",), cfg={"normalize_tokens": False}),
        _s("m=4", ("m",), cfg={"m": 4}),
        _s("m=16", ("m",), cfg={"m": 16}),
    ],
    "full": [
        _s("profile", ()),
        _s("lr=1e-4", ("lr",), floor={"lr": 1e-4}),
        _s("lr=1e-4,steps=60000", ("lr", "steps"), floor={"lr": 1e-4, "steps": 60_000, "record_every": 600}),
        _s("steps=60000", ("steps",), floor={"steps": 60_000, "record_every": 600}),
        _s("tau=0.1", ("tau",), cfg={"tau": 0.1}),
        _s("tokens=raw", ("tokens",), cfg={"normalize_tokens": False}),
    ],
}
SEEDS = {"quick": (0, 1, 2), "full": (0, 1, 2)}


def configure(profile: str, s: Setting):
    """(yang2024 config, floor options {lr, steps, Hs, record_every}) of setting ``s``: the row's
    (``validation/yang2024/figures.py`` at ``profile``) with the setting's overrides."""
    prof = figures.PROFILE[profile]
    cfg = figures._cfg(prof)
    if s.over.get("cfg"):
        cfg = cfg.replace(**s.over["cfg"])
    return cfg, {**prof["floor"], **s.over.get("floor", {})}


def restrict(m: dict, Hs) -> dict:
    """The measurement ``m`` of ``measure_fig4_floor`` restricted to the runs of ``Hs`` (each run
    is independent of the others, so this is the measurement over ``Hs``)."""
    Hs = [H for H in m["H"] if H in set(Hs)]
    return {**m, "H": Hs, **{k: {H: m[k][H] for H in Hs} for k in ("t", "excess", "late_fall")}}


def locate(m: dict) -> dict:
    """Per H < N of ``m``: at a floor by the row's rule (``check_fig4_floor`` on {H} and every
    H ≥ N of ``m``); the smallest H without a floor (N when every H < N has one)."""
    N = m["N"]
    ge = [H for H in m["H"] if H >= N]
    floor = {H: check_fig4_floor(restrict(m, [H, *ge])).verdict == "pass" for H in m["H"] if H < N}
    return {"floor": floor, "smallest_without": min([H for H, f in floor.items() if not f] + [N])}


def measure(ctx) -> tuple[list, tuple, list, list]:
    """(settings, seeds, configurations, measurements per setting and seed); every measurement is
    requested before any is used."""
    settings, seeds = SETTINGS[ctx.profile], SEEDS[ctx.profile]
    check_grid(DIMS, settings)
    grid = GRID[ctx.profile]
    confs = [configure(ctx.profile, s) for s in settings]
    for _, fl in confs:
        if not set(fl["Hs"]) <= set(grid):
            raise ValueError(f"the grid {grid} must contain the row's H {fl['Hs']}")
    ms = [[ctx.cached("robustness/fig4_floor", {"cfg": cfg.to_dict(), "Hs": grid, "lr": fl["lr"], "steps": fl["steps"],
                                                "record_every": fl["record_every"], "seed": sd},
                      lambda cfg=cfg, fl=fl, sd=sd: measure_fig4_floor(cfg, grid, fl["lr"], fl["steps"], sd,
                                                                      fl["record_every"]))
           for sd in seeds] for cfg, fl in confs]
    return settings, seeds, confs, ms


def run(ctx) -> list[Claim]:
    settings, seeds, confs, ms = measure(ctx)
    results = []
    for (_, fl), mm in zip(confs, ms):
        row = [check_fig4_floor(restrict(m, fl["Hs"])) for m in mm]  # the row's check on the row's H, per seed
        loc = [locate(m) for m in mm]
        results.append({"row": row, "loc": loc, "verdict": "pass" if all(c.verdict == "pass" for c in row) else "fail"})
    N = confs[0][0].N
    grid = GRID[ctx.profile]
    sw = [[r["smallest_without"] for r in res["loc"]] for res in results]
    fig = summary_figure(ctx, "Fig4-floor", f"Fig4-floor: smallest H without a loss floor (N = {N}), per setting",
                         settings, [min(v) for v in sw], [r["verdict"] for r in results], lo=[min(v) for v in sw],
                         hi=[max(v) for v in sw], per_seed=sw, ylabel=f"smallest H of {grid[0]}…{grid[-1]} without a "
                         "floor (dots: per seed)", target=(N, max(grid)), target_label="every H < N at a floor")
    rows = [dims_row(CLAIM, SPEC, DIMS, settings, seeds, figure=fig)]
    for s, (cfg, fl), mm, res in zip(settings, confs, ms, results):
        row, loc = res["row"], res["loc"]
        below = [H for H in grid if H < N]
        final = {H: [float(m["excess"][H][-1]) for m in mm] for H in grid}
        late = {H: [float(m["late_fall"][H]) for m in mm] for H in grid}
        measured = (
            f"Adam lr {fl['lr']:g}, {fl['steps']} steps; the row's check on H ∈ {{{', '.join(map(str, fl['Hs']))}}}, "
            "seed by seed: " + ", ".join(f"seed {sd} {c.verdict}" for sd, c in zip(seeds, row))
            + f"; H < N = {N} at a floor by the row's rule (against H ∈ {{{', '.join(str(H) for H in grid if H >= N)}}}): "
            + "; ".join(f"seed {sd}: {', '.join(str(H) for H in below if lc['floor'][H]) or 'none'}"
                        for sd, lc in zip(seeds, loc))
            + "; smallest H without a floor: " + ", ".join(str(lc["smallest_without"]) for lc in loc)
            + "; final L − L* (seed median): " + ", ".join(f"H={H}: {np.median(final[H]):.2e}" for H in grid))
        rows.append(setting_row(
            CLAIM, SPEC, s, DIMS, seeds, measured=measured,
            expected=row[0].expected + "; every seed (each judged as the row judges its one seed)",
            verdict=res["verdict"], figure=fig,
            numbers={"N": N, "lr": fl["lr"], "steps": fl["steps"], "row_H": list(fl["Hs"]), "grid": list(grid),
                     "seed_verdicts": [c.verdict for c in row],
                     "grid_verdicts": [check_fig4_floor(m).verdict for m in mm],
                     "floor": [{str(H): f for H, f in lc["floor"].items()} for lc in loc],
                     "smallest_without_floor": [lc["smallest_without"] for lc in loc],
                     "final": {str(H): v for H, v in final.items()}, "late_fall": {str(H): v for H, v in late.items()},
                     "cfg": cfg.to_dict()}))
    return rows
