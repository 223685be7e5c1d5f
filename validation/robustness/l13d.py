"""L13d under other [C] settings: the shortest trainable training length l_tr against α (paper:
Theorem 3.3 needs l_tr ≥ Ω(1/α)).

The row's own check (``refimpl.li2024.checks.check_l13d_min_train_length``: for each α, l_tr is
scanned upwards until SGD reaches an unseen-task error of 0.02 (α' = 0.8, l_ts = 20, 1000 prompts,
every 25 steps) within the step budget; pass when every (α, seed) is trainable on the grid and the
log–log slope of l_min against α is within [−1.5, −0.7]) is run at each setting, every run a cached
``li2024/train`` entry (the profile's own setting shares the main report's runs).

The α values are the profile's (``validation/li2024/generalization.py``: quick {0.2, 0.6, 1.0},
full {0.2, 0.4, …, 1.0}), with three seeds in both profiles. The l_tr grid is the full profile's
extended to 32 (:data:`LENGTHS`): with a tight step budget the smallest α needs l_tr up to 32, and
a grid that stops at 8 or 16 would turn that into "untrainable" instead of measuring it. At the
profile's own budget every run trains by l_tr = 3, so the extension changes nothing there.

The step budget is a measurement option of the check (``max_steps``, 2000 in the main row); the
theorem bounds l_tr together with the number of iterations, so the budget is swept as a [C] choice,
fixed or per α (``T1·α^p``, the theorem's own T = Θ(α^(−2/3)) or the 1/α the L13c study measures;
there the check's ``fit`` trains each α for its own budget and its pass rule is unchanged).
"""

from __future__ import annotations

import numpy as np

from refimpl.core.claims import Claim
from refimpl.li2024 import preset
from refimpl.li2024.checks import generalization as checks
from refimpl.validation.li2024 import generalization as gen
from refimpl.validation.li2024._common import fitter
from refimpl.validation.robustness._study import Dim, Setting, check_grid, dims_row, setting_row, summary_figure

ORDER = 12
CLAIM, SPEC = "L13d", "spec L13 (d), Theorem 3.3 (l_tr ≥ Ω(1/α))"
PRESET = "default"
MAX_STEPS = 2000  # the check's default budget, the main row's
ALPHAS = {p: gen.PROFILE[p]["d_alphas"] for p in ("quick", "full")}
LENGTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
SEEDS = {"quick": (0, 1, 2), "full": (0, 1, 2)}

DIMS = [
    Dim("steps", f"SGD step budget (profile {MAX_STEPS}, the check's max_steps)",
        "with an unlimited budget every l_tr ≥ 2 trains; the theorem bounds l_tr together with T, so a "
        "finite budget is what can make short prompts untrainable at small α"),
    Dim("budget", "per-α step budget T1·α^p (profile: one budget for every α)",
        "Theorem 3.3's own iteration count grows as α^(−2/3) (L13c measures ~1/α): a budget that grows "
        "like that gives each α the same chance"),
    Dim("lr", "SGD step size η (profile 0.5)", "the time scale of training: together with the budget it "
                                               "sets how far a run gets"),
    Dim("B", "minibatch size B (profile 64)", "B·l_tr prompts' columns per step average out the noise; a "
                                              "smaller B leaves more of it to the prompt length"),
    Dim("Kk", "noise range K_κ (profile 0.5)", "the noise the context must average out"),
]


def _s(name, dims, over=None, **knobs):
    return Setting(name, dims, over or {}, knobs)


def _lr(v):
    return {"train": {"lr": v}}


def _B(v):
    return {"train": {"batch_size": v}}


# Compute (one core, from the exploratory run's wall_s per setting over 5 α × 3 seeds):
# quick ≈ 0.65 × (25 + 17 + 15 + 38 + 20 + 36 + 15) s ≈ 1.8 min with its 3 α;
# full ≈ 13 min (the 13 fixed-budget settings ≈ 10.7 min, the 6 per-α budgets ≈ 2.3 min).
SETTINGS = {
    "quick": [
        _s("profile", ()),
        _s("steps=500", ("steps",), max_steps=500), _s("steps=200", ("steps",), max_steps=200),
        _s("B=256,steps=500", ("B", "steps"), _B(256), max_steps=500),
        _s("lr=2.0,steps=500", ("lr", "steps"), _lr(2.0), max_steps=500),
        _s("Kk=0,steps=500", ("Kk", "steps"), {"data": {"kappa_max": 0.0}}, max_steps=500),
        _s("budget=250·α^(−2/3)", ("budget",), budget=(250, -2 / 3)),
    ],
    "full": [
        _s("profile", ()),
        *[_s(f"steps={v}", ("steps",), max_steps=v) for v in (500, 200, 100)],
        _s("lr=0.1", ("lr",), _lr(0.1)),
        *[_s(f"lr={v},steps=500", ("lr", "steps"), _lr(v), max_steps=500) for v in (0.1, 2.0)],
        *[_s(f"B={v},steps=500", ("B", "steps"), _B(v), max_steps=500) for v in (16, 256)],
        _s("B=16", ("B",), _B(16)),
        _s("B=16,lr=0.1,steps=500", ("B", "lr", "steps"), {"train": {"batch_size": 16, "lr": 0.1}}, max_steps=500),
        _s("Kk=0", ("Kk",), {"data": {"kappa_max": 0.0}}),
        _s("Kk=0,steps=500", ("Kk", "steps"), {"data": {"kappa_max": 0.0}}, max_steps=500),
        *[_s(f"budget={T1}·α^({e})", ("budget",), budget=(T1, p))
          for T1 in (250, 500, 1000) for e, p in (("−2/3", -2 / 3), ("−1", -1.0))],
    ],
}


def budget_steps(T1: float, p: float, alpha: float) -> int:
    """The per-α step budget round(T1·α^p)."""
    return int(round(T1 * float(alpha) ** p))


def budget_fit(fit, T1: float, p: float):
    """``fit`` that trains each α for its own budget round(T1·α^p) (replaces the check's max_steps)."""

    def fit_alpha(cfg, seed, **kwargs):
        return fit(cfg.replace(train=dict(steps=budget_steps(T1, p, cfg.data.alpha))), seed, **kwargs)

    return fit_alpha


def run(ctx) -> list[Claim]:
    settings, seeds, alphas, lengths = SETTINGS[ctx.profile], SEEDS[ctx.profile], ALPHAS[ctx.profile], LENGTHS
    check_grid(DIMS, settings)
    fit = fitter(ctx)
    base0 = preset(PRESET)
    results = []
    for s in settings:  # every setting is requested before any is used (a Dask run trains them together)
        base = base0.replace(**s.over) if s.over else base0
        budget = s.knobs.get("budget")
        if budget:  # the check's text then reads "≤ the largest budget"; the row adds the budget per α
            max_steps, f = max(budget_steps(*budget, a) for a in alphas), budget_fit(fit, *budget)
        else:
            max_steps, f = s.knobs.get("max_steps", MAX_STEPS), fit
        results.append(ctx.cached(
            "robustness/l13d", {"cfg": base.to_dict(), "alphas": alphas, "lengths": lengths, "seeds": seeds,
                                "max_steps": max_steps, "budget": budget},
            lambda base=base, f=f, max_steps=max_steps: checks.check_l13d_min_train_length(
                f, base, alphas, lengths, seeds, max_steps=max_steps)))
    slopes, lo, hi, per_seed, verdicts = [], [], [], [], []
    for c in results:
        f = c.numbers["fit"]
        slopes.append(c.numbers["slope"])
        ci = f["ci"] if f and np.all(np.isfinite(f["ci"])) else (None, None)  # two points: no interval
        lo.append(ci[0])
        hi.append(ci[1])
        verdicts.append(c.verdict)
        per_seed.append(seed_slopes(alphas, c.numbers["l_min"]))
    fig = summary_figure(ctx, "L13d", "L13d: log–log slope of the shortest trainable l_tr against α, per setting",
                         settings, slopes, verdicts, lo=lo, hi=hi, per_seed=per_seed,
                         ylabel="slope (95% interval; dots: per seed)", target=checks.L13D_SLOPE_RANGE,
                         target_label="pass: slope in [−1.5, −0.7] (1/α ↔ −1), all trainable")
    rows = [dims_row(CLAIM, SPEC, DIMS, settings, seeds, figure=fig)]
    for s, c, ps in zip(settings, results, per_seed):
        lmin = np.asarray(c.numbers["l_min"], float)
        measured = c.measured
        budget = s.knobs.get("budget")
        if budget:
            measured += ("; step budget per α (replaces the single budget): "
                         + ", ".join(f"α={a:g}: {budget_steps(*budget, a)}" for a in alphas))
        rows.append(setting_row(CLAIM, SPEC, s, DIMS, seeds, measured=measured, expected=c.expected,
                                verdict=c.verdict, figure=fig,
                                numbers={"alphas": list(alphas), "lengths": list(lengths), "l_min": lmin,
                                         "steps": c.numbers["steps"], "slope": c.numbers["slope"],
                                         "fit": c.numbers["fit"], "untrainable": int((~np.isfinite(lmin)).sum()),
                                         "max_steps": None if budget else s.knobs.get("max_steps", MAX_STEPS),
                                         "steps_per_alpha": ([budget_steps(*budget, a) for a in alphas] if budget
                                                             else None),
                                         "seed_slopes": ps}))
    return rows


def seed_slopes(alphas, lmin) -> list:
    """Each seed's own log–log slope of l_min against α over the α it trained at (0 when l_min is
    constant there, None with fewer than 3 such α)."""
    lmin = np.asarray(lmin, float)
    out = []
    for j in range(lmin.shape[1]):
        ok = np.isfinite(lmin[:, j])
        if ok.sum() < 3:
            out.append(None)
        elif np.ptp(lmin[ok, j]) == 0:
            out.append(0.0)
        else:
            out.append(float(np.polyfit(np.log(np.asarray(alphas, float)[ok]), np.log(lmin[ok, j]), 1)[0]))
    return out
