"""Out-of-domain generalisation (spec L14) and the prompt-length figures E1 and E2.

E1: OOD error vs l_ts for S1 ∈ {0.5, 0.7, 0.9, 1.1, 1.3} (ODR patterns µ'_j with coefficients
summing to S1); the negative control puts the ODI patterns outside span{ν}. E2: error vs l_ts for
α' ∈ {1.0, 0.9, 0.8}, in-domain (unseen tasks) and OOD. The paper's values (read off its plots of
a 3-layer GPT-2) are drawn beside ours (one-layer model of spec L7).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim
from refimpl.li2024 import preset
from refimpl.li2024.checks import ood as checks
from refimpl.li2024.checks import paper as PAPER
from refimpl.li2024.metrics import error_curve
from refimpl.validation.li2024._common import fitter

ORDER = 30
PROFILE = {
    "quick": {"seeds": (0,), "lengths": (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 30, 40), "n": 4_000, "n_control": 20_000},
    "full": {"seeds": (0, 1, 2), "lengths": (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 25, 30, 40), "n": 20_000,
             "n_control": 100_000},
}
# spec L §6, values read off the paper's plots at l = 20 (refimpl.li2024.checks.paper)
E1_PAPER_AT_20 = PAPER.E1_AT_20
E2_PAPER_AT_20 = PAPER.E2_AT_20


def run(ctx) -> list[Claim]:
    p = PROFILE[ctx.profile]
    base = preset("default")
    fit = fitter(ctx)
    runs = [fit(base, s) for s in p["seeds"]]
    alpha = base.data.alpha_test
    e1 = ctx.cached("li2024/e1_curves", {"cfg": base.to_dict(), "p": p},
                    lambda: [checks.ood_curves(r, checks.L14_S1, p["lengths"], p["n"], alpha) for r in runs])
    e2_lengths = [l for l in p["lengths"] if l <= 20]
    e2 = ctx.cached("li2024/e2_curves", {"cfg": base.to_dict(), "p": p},
                    lambda: [{(kind, a): error_curve(r, e2_lengths, p["n"], tasks=kind, alpha=a, key=2)
                              for kind in ("unseen", "ood") for a in checks.E2_ALPHAS} for r in runs])
    wide = base.replace(data=dict(d_x=base.data.M1 + base.data.M2 + 10))  # room for a complement direction
    control = ctx.cached("li2024/l14_control", {"cfg": base.to_dict(), "p": p},
                         lambda: checks.check_l14_negative_control(runs, p["n_control"],
                                                                   complement_runs=[fit(wide, s) for s in p["seeds"]]))
    claims = [checks.check_l14_s1(e1), checks.check_l14_plateau(e1), control, checks.check_e2_length_vs_alpha(e2)]
    f1, f2 = figure_e1(ctx, e1, p), figure_e2(ctx, e2, p)
    for c in claims[:3]:
        c.figure = f1
    claims[3].figure = f2
    return claims


def _band(ax, x, curves, color, label, floor, ls="-"):
    arr = np.maximum(np.array(curves), floor)
    ax.plot(x, arr.mean(axis=0), color=color, ls=ls, label=label)
    if len(arr) > 1:
        ax.fill_between(x, arr.min(axis=0), arr.max(axis=0), color=color, alpha=0.2, lw=0)


def figure_e1(ctx, e1, p) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    floor = 0.5 / p["n"]
    for k, s in enumerate(sorted(e1[0], reverse=True)):
        L = e1[0][s]["lengths"]
        _band(ax, L, [c[s]["error"] for c in e1], f"C{k}", f"S1 = {s:g}", floor)
        ax.plot([20], [E1_PAPER_AT_20[s]], marker="*", ms=11, color=f"C{k}", mec="k", ls="none")
    ax.plot([], [], "k*", ms=10, label="paper at l = 20 (3-layer GPT-2)")
    ax.axhline(checks.L14_EPS, color="grey", ls="--", lw=1)
    ax.axhline(floor, color="grey", ls=":", lw=1, label=f"0 errors of {p['n']}")
    ax.set(yscale="log", xlabel="l_ts (context examples)", ylabel="OOD classification error",
           title=f"E1: OOD error vs l_ts (α' = 0.8, seeds {list(p['seeds'])}, band = min–max)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return ctx.save_figure(fig, "E1_ood_S1")


def figure_e2(ctx, e2, p) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    floor = 0.5 / p["n"]
    for k, a in enumerate(checks.E2_ALPHAS):
        for kind, ls, mk in (("unseen", "-", "*"), ("ood", "--", "^")):
            L = e2[0][(kind, a)]["lengths"]
            _band(ax, L, [c[(kind, a)]["error"] for c in e2], f"C{k}",
                  f"α' = {a:g}, {'in-domain' if kind == 'unseen' else 'OOD'}", floor, ls)
            ax.plot([20], [E2_PAPER_AT_20[(kind, a)]], marker=mk, ms=9, color=f"C{k}", mec="k", ls="none")
    ax.plot([], [], "k*", label="paper at l = 20 (in-domain)")
    ax.plot([], [], "k^", label="paper at l = 20 (OOD)")
    ax.set(yscale="log", xlabel="l_ts (context examples)", ylabel="classification error",
           title="E2: error vs l_ts (in-domain = unseen tasks)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return ctx.save_figure(fig, "E2_length_alpha")
