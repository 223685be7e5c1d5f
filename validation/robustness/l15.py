"""L15 (iii) and (iv) under other [C] settings: pruning a fraction R of the large W_O rows raises the
loss by Ω(R); magnitude pruning beats random pruning at every rate.

The row that fails is the in-domain one (unseen tasks T \\ T_tr, α' = 0.6, l_ts = 20; the OOD row
passes). Its own check (``refimpl.li2024.checks.pruning.check_l15iii_large_rows``: removing a
uniform random R-fraction of the large rows, R = 0.1 … 0.5, raises the hinge loss by Δ(R), strictly
increasing in R with Δ(R)/R ≥ 0.01 at every R and seed) is run at each setting; the OOD row's
verdict at the same setting is reported beside it. Every (setting, seed) is a cached
``li2024/train`` run and a cached ``li2024/pruning`` measurement, the main module's own entries (the
profile's setting shares both with the main report: all of them in the full profile, seed 0 in the
quick one).

L15 (iv), which fails in-domain in the full profile, is judged on the same measurements by its own
check (``check_l15iv_magnitude_vs_random``: hinge after magnitude pruning ≤ the mean over random
masks of the same size at 10–40 %, every seed); it has its own rows and figure.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.claims import Claim
from refimpl.li2024 import preset
from refimpl.li2024.checks import pruning as checks
from refimpl.validation.li2024._common import fitter
from refimpl.validation.robustness._study import Dim, Setting, check_grid, dims_row, setting_row, summary_figure

ORDER = 50
CLAIM, SPEC = "L15iii", "spec L15 (iii), L10"
CLAIM_IV, SPEC_IV = "L15iv", "spec L15, L9"
SETTING = "unseen"  # the row that fails (checks.PRUNE_SETTINGS); "ood" is reported beside it
BASE = preset("default")  # the main module's configuration (the profile's own setting)
FLOOR = 1e-5  # the summary figure's log axis starts here (Δhinge/R can be ≤ 0)

DIMS = [
    Dim("steps", "training length (profile 2000 SGD steps)",
        "sets the test prompts' margins: Δhinge has a term linear in R only from prompts with margin zF < 1, "
        "and a well-trained model has few of them in-domain"),
    Dim("lr", "SGD step size η (profile 0.5)", "the same, through how far 2000 steps get"),
    Dim("alpha", "training α (profile 0.8; the paper's is not recoverable)",
        "training on prompts harder than the test's (α' = 0.6) leaves margins near 1 on the test prompts"),
    Dim("l_tr", "training prompt length l_tr (profile 20)", "the same through the number of contexts"),
    Dim("m", "number of W_O rows m (profile 100)",
        "how much of F a fraction R of the large rows carries (exploratory run: no effect)"),
    Dim("kappa", "noise scale K_κ (profile 0.5)", "the noise the margins must absorb (exploratory run: no effect)"),
    Dim("delta", "initial query–key scale δ (profile 0.2)", "how far the attention trains, hence the margins"),
]


def _s(name, dims, over):
    return Setting(name, dims, over)


# Compute (one core), estimated from the exploratory run's wall-clock times
# (3 seeds, 50,000 prompts and 20 masks per seed; training is most of it, ≈ 3.4 s per 1000 steps per
# seed): quick ≈ 29 (profile) + 11 (steps=200) + 16 (steps=800) + 24 (alpha=0.4) + 23 (l_tr=8)
# + 32 (lr=0.1) ≈ 135 s ≈ 2.3 min, an upper bound (quick measures 20,000 prompts with 10 masks);
# full ≈ 7.5 min at the exploratory run's sizes, ≈ 11 min at the full profile's (100,000 prompts, 20 masks,
# and E5's extra α').
SETTINGS = {
    "quick": [
        _s("profile", (), {}),
        *[_s(f"steps={v}", ("steps",), {"train": {"steps": v}}) for v in (200, 800)],
        _s("lr=0.1", ("lr",), {"train": {"lr": 0.1}}),
        _s("alpha=0.4", ("alpha",), {"data": {"alpha": 0.4}}),
        _s("l_tr=8", ("l_tr",), {"data": {"l_train": 8}}),
    ],
    "full": [
        _s("profile", (), {}),
        *[_s(f"steps={v}", ("steps",), {"train": {"steps": v}}) for v in (200, 400, 800, 8000)],
        *[_s(f"m={v}", ("m",), {"model": {"m": v}}) for v in (20, 50, 400)],
        *[_s(f"Kk={v:g}", ("kappa",), {"data": {"kappa_max": v}}) for v in (0.0, 0.25)],
        *[_s(f"lr={v:g}", ("lr",), {"train": {"lr": v}}) for v in (0.1, 2.0)],
        *[_s(f"delta={v:g}", ("delta",), {"model": {"delta": v}}) for v in (0.05, 0.7)],
        _s("alpha=0.4", ("alpha",), {"data": {"alpha": 0.4}}),
        _s("l_tr=8", ("l_tr",), {"data": {"l_train": 8}}),
        _s("steps=400,m=400", ("steps", "m"), {"train": {"steps": 400}, "model": {"m": 400}}),
    ],
}
SEEDS = {"quick": (0, 1, 2), "full": (0, 1, 2)}
# (prompts per measurement, random masks per size): the main module's sizes, so its entries are shared
SIZES = {"quick": (20_000, 10), "full": (100_000, 20)}


def run(ctx) -> list[Claim]:
    settings, seeds = SETTINGS[ctx.profile], SEEDS[ctx.profile]
    n, n_random = SIZES[ctx.profile]
    check_grid(DIMS, settings)
    fit = fitter(ctx)
    cfgs = [BASE.replace(**s.over) if s.over else BASE for s in settings]
    runs = [[fit(cfg, seed) for seed in seeds] for cfg in cfgs]  # every training requested before any is used
    meas = [[ctx.cached("li2024/pruning",  # the main module's entry (validation/li2024/pruning.py)
                        {"config": cfg.to_dict(), "seed": r.seed, "n": n, "n_random": n_random},
                        lambda r=r: checks.measure_pruning(r, n, n_random)) for r in rs]
            for cfg, rs in zip(cfgs, runs)]
    claims = [checks.check_l15iii_large_rows(m, SETTING) for m in meas]
    ood = [checks.check_l15iii_large_rows(m, "ood") for m in meas]
    slope = [np.asarray(c.numbers["d_hinge_random"]) / np.asarray(c.numbers["R"])[None, :] for c in claims]  # (S, R)
    values = [float(s.min()) for s in slope]
    per_seed = [[float(v) for v in s.min(axis=1)] for s in slope]
    fig = summary_figure(ctx, "L15iii", "L15 (iii), unseen tasks: min over R and seeds of Δhinge(R)/R", settings,
                         [max(v, FLOOR) for v in values], [c.verdict for c in claims],
                         per_seed=[[max(v, FLOOR) for v in p] for p in per_seed],
                         ylabel=f"min Δhinge(R)/R (floored at {FLOOR:g}; dots: seeds)",
                         target=(checks.L15III_MIN_SLOPE, max([1.0, *values])),
                         target_label=f"≥ {checks.L15III_MIN_SLOPE:g} (and Δhinge increasing in R)", log=True)
    rows = [dims_row(CLAIM, SPEC, DIMS, settings, seeds, figure=fig)]
    for s, c, o, m, v, ps in zip(settings, claims, ood, meas, values, per_seed):
        N = c.numbers
        rows.append(setting_row(
            CLAIM, SPEC, s, DIMS, seeds,
            measured=f"{c.measured}; the OOD row at this setting: {o.verdict}", verdict=c.verdict, figure=fig,
            expected=f"{c.expected} (unseen tasks T \\ T_tr, α' = 0.6, l_ts = 20: the row that fails)",
            numbers={"R": N["R"], "d_hinge_random": N["d_hinge_random"], "d_hinge_random_se": N["d_hinge_random_se"],
                     "d_hinge_largest": N["d_hinge_largest"], "d_error_random": N["d_error_random"],
                     "hinge_unpruned": N["hinge_unpruned"], "min_slope": N["min_slope"], "min_ratio": v,
                     "seed_min_ratio": ps, "n_small": [d["settings"][SETTING]["n_small"] for d in m],
                     "n": n, "n_random": n_random, "ood_verdict": o.verdict,
                     "ood_d_hinge_random": o.numbers["d_hinge_random"]}))
    return rows + l15iv_rows(ctx, settings, seeds, meas)


def l15iv_rows(ctx, settings, seeds, meas) -> list[Claim]:
    """L15 (iv) in-domain at each setting, by its own check on the same measurements; the figure
    shows the smallest paired difference hinge(random) − hinge(magnitude), in standard errors,
    over the rates (and seeds)."""
    iv = [checks.check_l15iv_magnitude_vs_random(m, SETTING) for m in meas]
    z = [np.asarray(c.numbers["diff_hinge"]) / np.where(np.asarray(c.numbers["diff_hinge_se"]) > 0,
                                                        np.asarray(c.numbers["diff_hinge_se"]), np.inf) for c in iv]
    fig = summary_figure(ctx, "L15iv", "L15 (iv), unseen tasks: min over rates of (random − magnitude) hinge / SE",
                         settings, [float(a.min()) for a in z], [c.verdict for c in iv],
                         per_seed=[[float(v) for v in a.min(axis=1)] for a in z],
                         ylabel="min paired difference / SE (dots: seeds)", target=0.0,
                         target_label="0: magnitude = random (the check needs magnitude ≤ random)")
    rows = [dims_row(CLAIM_IV, SPEC_IV, DIMS, settings, seeds, figure=fig)]
    for s, c, a in zip(settings, iv, z):
        N = c.numbers
        rows.append(setting_row(CLAIM_IV, SPEC_IV, s, DIMS, seeds, measured=c.measured, expected=c.expected,
                                verdict=c.verdict, figure=fig,
                                numbers={"rates": N["rates"], "hinge_magnitude": N["hinge_magnitude"],
                                         "hinge_random": N["hinge_random"], "diff_hinge": N["diff_hinge"],
                                         "diff_hinge_se": N["diff_hinge_se"], "min_z": float(a.min())}))
    return rows
