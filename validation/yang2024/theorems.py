"""Spec Y10–Y14 on the small instance of the issue (K = 12, N = 4, d = 5, m = 3, τ = 0.1), the
GD curves for several H (Y11), and Fig. 3 (gap vs N, m = 100, τ = 0.01, K = 200, d = 100)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim
from refimpl.yang2024 import checks

ORDER = 10
PROFILE = {
    "quick": {"steps": 8000, "y14_steps": 20000, "fig3_prompts": 200, "seed": 0},
    "full": {"steps": 8000, "y14_steps": 50000, "fig3_prompts": 200, "seed": 0},
}
HS = (2, 3, 4, 8, 16)


def run(ctx) -> list[Claim]:
    prof = PROFILE[ctx.profile]
    s = prof["seed"]
    y10 = ctx.cached("yang2024/y10", {"seed": s}, lambda: checks.measure_y10(seed=s))
    y11 = ctx.cached("yang2024/y11", {"seed": s, "steps": prof["steps"], "H": HS},
                     lambda: checks.measure_y11(Hs=HS, steps=prof["steps"], seed=s))
    y12 = checks.measure_y12(y11["params"][8], y11["batch"])
    y13 = ctx.cached("yang2024/y13", {"n": prof["fig3_prompts"], "seed": s},
                     lambda: checks.measure_y13(n_prompts=prof["fig3_prompts"], seed=s))
    y14 = ctx.cached("yang2024/y14", {"steps": prof["y14_steps"], "seed": s},
                     lambda: checks.measure_y14(steps=prof["y14_steps"], seed=s))
    y11s = ctx.cached("yang2024/y11_scaling", {"seed": s, "steps": prof["steps"]},
                      lambda: checks.measure_y11_scaling(steps=prof["steps"], seed=s))
    c11 = checks.check_y11(y11)
    claims = [checks.check_y10(y10), *c11, checks.check_y11_scaling(y11s), checks.check_y12(y12), checks.check_y13(y13),
              checks.check_y14(y14)]
    f11 = fig_y11(ctx, y11, y14, c11[0].numbers)
    f3 = fig3(ctx, y13)
    for c in claims:
        if c.id.startswith(("Y11", "Y14")):
            c.figure = f11
        if c.id == "Y13":
            c.figure = f3
    return claims


def fig_y11(ctx, y11, y14, nums) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for H in y11["H"]:
        ex = np.maximum(y11["excess"][H], 1e-300)
        ax.semilogy(y11["t"][H], ex, label=f"H = {H}" + (" (< N)" if H < y11["cfg"]["N"] else ""))
    ax.semilogy(y14["t"], y14["excess"], "k--", lw=1, label="H = 1")
    ax.axhline(y14["bound"], color="grey", ls=":", lw=1, label="H = 1 lower bound (Y14)")
    ax.set(xlabel="GD step t", ylabel="L − L*", ylim=(1e-32, 1e2),
           title=f"Y11: GD on Y7, K=12, N=4, d=5, m=3, τ=0.1, η_Q=η_w={y11['eta_Q']}; "
                 f"H=8 rate ρ={nums['rate']:.2e}")
    ax.legend(fontsize=8)
    return ctx.save_figure(fig, "y11_gd")


def fig3(ctx, m) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    N, gap = np.array(m["N"]), np.array(m["gap"])
    ax.plot(N, gap * 1e3, "o-", ms=3)
    ax.axvline(m["m"], color="k", ls="--", lw=1, label=f"N = m = {m['m']}")
    ax.set(xlabel="prompt length N", ylabel="gap (1/K)‖ŷ* − ŷ_best‖²  (×1e−3)",
           title=f"Fig. 3: K={m['K']}, d={m['d']}, m={m['m']}, τ={m['tau']}")
    ax.legend()
    return ctx.save_figure(fig, "fig3_gap_vs_N")
