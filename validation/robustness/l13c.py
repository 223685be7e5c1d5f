"""L13c under other [C] settings: SGD steps to a loss threshold against α (paper: ∝ α^(−2/3)).

The row's own check (``refimpl.li2024.checks.check_l13c_iterations_vs_alpha``: steps until the
training-task hinge on 500 prompts at the training α first reaches the threshold, checked every 5
steps, over α = 0.4 … 1.0; pass when the 95% interval of the log–log slope contains −2/3) is run
at each setting, every (α, seed) run a cached ``li2024/train`` entry (the profile's own setting
shares the main report's runs).
"""

from __future__ import annotations

import numpy as np

from refimpl.core.claims import Claim
from refimpl.li2024 import preset
from refimpl.li2024.checks import generalization as checks
from refimpl.validation.li2024._common import fitter
from refimpl.validation.robustness._study import Dim, Setting, check_grid, dims_row, setting_row, summary_figure

ORDER = 10
CLAIM, SPEC = "L13c", "spec L13 (c), Theorem 3.3"
ALPHAS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

DIMS = [
    Dim("lr", "SGD step size η (profile 0.5)",
        "sets the time scale; an α-independent part of the run (the first steps) weighs more when runs are short"),
    Dim("delta", "initial query–key scale δ (profile 0.2)",
        "how sharp the attention starts: the early gradient through the softmax depends on it"),
    Dim("xi", "initial output-layer scale ξ (profile 0.01)", "the size of the early updates of W_O"),
    Dim("B", "minibatch size B (profile 64)", "SGD noise, which is larger at small α"),
    Dim("beta", "pattern scale β (profile 1)", "the margin of the relevant pattern against the noise"),
    Dim("thr", "loss threshold (profile 0.1; the paper names none)",
        "the Bayes floor of prompts without a same-pattern context is near for small α"),
]


def _s(name, dims, section=None, key=None, value=None, **knobs):
    over = {section: {key: value}} if section else {}
    return Setting(name, dims, over, knobs)


SETTINGS = {
    "quick": [
        _s("profile", ()),
        _s("lr=0.25", ("lr",), "train", "lr", 0.25), _s("lr=2.0", ("lr",), "train", "lr", 2.0),
        _s("delta=0.5", ("delta",), "model", "delta", 0.5), _s("delta=0.8", ("delta",), "model", "delta", 0.8),
        _s("xi=0.001", ("xi",), "model", "xi", 0.001), _s("xi=0.1", ("xi",), "model", "xi", 0.1),
        _s("B=256", ("B",), "train", "batch_size", 256),
        _s("beta=2", ("beta",), "data", "beta", 2.0),
        _s("thr=0.3", ("thr",), thr=0.3), _s("thr=0.03", ("thr",), thr=0.03),
    ],
    "full": [
        _s("profile", ()),
        *[_s(f"lr={v}", ("lr",), "train", "lr", v) for v in (0.1, 0.25, 1.0, 2.0)],
        *[_s(f"delta={v}", ("delta",), "model", "delta", v) for v in (0.05, 0.3, 0.5, 0.8, 1.0)],
        *[_s(f"xi={v}", ("xi",), "model", "xi", v) for v in (0.001, 0.1)],
        *[_s(f"B={v}", ("B",), "train", "batch_size", v) for v in (16, 256)],
        *[_s(f"beta={v}", ("beta",), "data", "beta", v) for v in (0.5, 1.5, 2.0, 3.0)],
        *[_s(f"thr={v}", ("thr",), thr=v) for v in (0.3, 0.03, 0.01)],
    ],
}
SEEDS = {"quick": (0, 1, 2), "full": tuple(range(8))}


def run(ctx) -> list[Claim]:
    settings, seeds = SETTINGS[ctx.profile], SEEDS[ctx.profile]
    check_grid(DIMS, settings)
    fit = fitter(ctx)
    base0 = preset("default")
    results = []
    for s in settings:  # every setting is requested before any is used (a Dask run trains them together)
        base = base0.replace(**s.over) if s.over else base0
        thr = s.knobs.get("thr", checks.L13C_THRESHOLD)
        results.append(ctx.cached("robustness/l13c", {"cfg": base.to_dict(), "alphas": ALPHAS, "seeds": seeds,
                                                      "thr": thr},
                                  lambda base=base, thr=thr: checks.check_l13c_iterations_vs_alpha(
                                      fit, base, ALPHAS, seeds, threshold=thr)))
    slopes, lo, hi, per_seed, verdicts = [], [], [], [], []
    for c in results:
        f = c.numbers["fit"]
        slopes.append(f["slope"] if f else None)
        lo.append(f["ci"][0] if f else None)
        hi.append(f["ci"][1] if f else None)
        verdicts.append(c.verdict)
        per_seed.append(_seed_slopes(c.numbers["iterations"]))
    fig = summary_figure(ctx, "L13c", "L13c: log–log slope of steps-to-threshold against α, per setting",
                         settings, slopes, verdicts, lo=lo, hi=hi, per_seed=per_seed,
                         ylabel="slope (95% interval; dots: per seed)", target=checks.L13C_EXPONENT,
                         target_label="paper: −2/3")
    rows = [dims_row(CLAIM, SPEC, DIMS, settings, seeds, figure=fig)]
    for s, c, ps in zip(settings, results, per_seed):
        rows.append(setting_row(CLAIM, SPEC, s, DIMS, seeds, measured=c.measured, expected=c.expected,
                                verdict=c.verdict, figure=fig,
                                numbers={"iterations": c.numbers["iterations"], "fit": c.numbers["fit"],
                                         "threshold": c.numbers["threshold"], "seed_slopes": ps}))
    return rows


def _seed_slopes(its) -> list:
    """Each seed's own log–log slope over the α it reached the threshold at (None if < 3)."""
    its = np.asarray(its, float)
    out = []
    for j in range(its.shape[1]):
        ok = np.isfinite(its[:, j])
        out.append(float(np.polyfit(np.log(np.asarray(ALPHAS)[ok]), np.log(its[ok, j]), 1)[0]) if ok.sum() >= 3
                   else None)
    return out
