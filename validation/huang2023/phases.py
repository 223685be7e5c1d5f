"""Spec H9–H13: invariants, golden trajectory, balanced two-phase and imbalanced stage-wise
convergence, and the phase figure H13 (the first numerical picture of the paper's phases).

Everything runs on the reduced dynamics of C (spec H7) over a fixed Monte-Carlo set of count
vectors (spec H8 (b)); H10 uses exact enumeration and full-Q GD.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim
from refimpl.huang2023 import checks
from refimpl.huang2023 import dynamics as D

ORDER = 10
PROFILE = {
    "quick": {"M_bal": 1000, "M_scaling": 1000, "M_events": 1000, "M_imb": 2000, "seed": 0},
    "full": {"M_bal": 4000, "M_scaling": 2000, "M_events": 2000, "M_imb": 2000, "seed": 0},
}
EVENT_LABELS = {
    "B_oth_peak": "B_oth peak", "A_over_B1": "A_k > |B_k,1|", "akk_over_ak1": "α_kk > α_k1",
    "akk_half": "α_kk > ½", "ak1_below_1/K": "α_k1 < 1/K", "Lk_below_eps": "L_k < 1e−2",
}


def run(ctx) -> list[Claim]:
    prof = PROFILE[ctx.profile]
    s = prof["seed"]
    h10 = ctx.cached("huang2023/h10", {}, checks.measure_h10)
    h9 = ctx.cached("huang2023/h9", {"seed": s}, lambda: checks.measure_h9(seed=s))
    bal_key = {"K": 10, "N": 100, "M": prof["M_bal"], "steps": 40000, "seed": s}
    bal = ctx.cached("huang2023/balanced", bal_key,
                     lambda: checks.balanced_trajectory(M=prof["M_bal"], seed=s))
    ph1 = ctx.cached("huang2023/h11_phase1", {"M": prof["M_scaling"], "seed": s},
                     lambda: checks.measure_h11_phase1(M=prof["M_scaling"], seed=s))
    sc = ctx.cached("huang2023/h12_scaling", {"M": prof["M_scaling"], "seed": s},
                    lambda: checks.measure_h12_scaling(M=prof["M_scaling"], seed=s))
    ev = ctx.cached("huang2023/h12_events", {"M": prof["M_events"], "seed": s},
                    lambda: checks.measure_h12_events(M=prof["M_events"], seed=s))
    imb = ctx.cached("huang2023/imbalanced", {"K": 10, "N": 200, "p1": 0.5, "M": prof["M_imb"], "seed": s},
                     lambda: checks.imbalanced_trajectory(10, 0.5, N=200, M=prof["M_imb"], steps=1500, seed=s))
    claims = [
        checks.check_h9(h9),
        checks.check_h10(h10),
        checks.check_h11_phase1(ph1),
        checks.check_h11_late(bal),
        checks.check_h11_attention_tail(bal),
        checks.check_h13_balanced(bal),
        *checks.check_h12_scaling(sc),
        *checks.check_h12_events(ev),
    ]
    name = figure(ctx, bal, imb)
    for c in claims:
        if c.id.startswith(("H11", "H12", "H13")):
            c.figure = name
    return claims


def figure(ctx, bal, imb) -> str:
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    K = bal.records["C"].shape[1]
    # ---- (a) balanced ------------------------------------------------------------------------
    tb = D.track(bal, 0)
    m = tb["t"] >= 1
    t = tb["t"][m]
    t_half = D.first_step(bal, 0, "akk", 0.5)
    ax = axes[0, 0]
    ax.plot(t, tb["A"][m], label="A_k = C_kk")
    ax.plot(t, bal.records["C"][m, 1:, 0].mean(axis=1), label="B_k,n (mean over n ≠ k)")
    ax.set(xscale="log", xlabel="GD step t", ylabel="logit", title=f"(a) balanced K={K}, N=100: logits")
    ax = axes[0, 1]
    ax.plot(t, tb["a_kk"][m], label="E[α_k→k]")
    ax.plot(t, 1 - tb["a_kk"][m], label="1 − E[α_k→k]")
    ax.plot(t, (2 * (1 / K) * t) ** -0.5, "k:", lw=1, label="(2ηp_k t)^(−1/2)")
    ax.axhline(1 / K, color="grey", lw=0.8, ls="--")
    ax.set(xscale="log", yscale="log", ylim=(1e-3, 1.5), xlabel="GD step t", ylabel="attention",
           title="(a) attention on the query's own feature")
    ax = axes[0, 2]
    ax.plot(t, tb["Lk"][m], label="L_k")
    ax.plot(t, K / (4 * t), "k:", lw=1, label="K/(4ηt)")
    for x, y in zip(checks.H13_T, checks.H13_LK):
        ax.plot(x, y, "rx", ms=7)
    ax.plot([], [], "rx", label="spec H13 reference")
    ax.set(xscale="log", yscale="log", ylim=(1e-5, 1), xlabel="GD step t", ylabel="loss",
           title="(a) per-feature loss")
    for ax in axes[0]:
        if t_half is not None:
            ax.axvline(t_half, color="purple", lw=1, ls="--")
            ax.text(t_half, ax.get_ylim()[0], " Phase I | Phase II", color="purple", fontsize=8, va="bottom")
        ax.legend(fontsize=8)
    # ---- (b) imbalanced ----------------------------------------------------------------------
    k = 1
    ti = D.track(imb, k)
    ev = D.detect_events(imb, k)
    t2 = ti["t"]
    ax = axes[1, 0]
    ax.plot(t2, imb.records["Lk"][:, 0], label="L_1 (dominant, p₁ = 0.5)")
    ax.plot(t2, ti["Lk"], label="L_k (under-represented)")
    ax.set(yscale="log", xlabel="GD step t", ylabel="loss", title="(b) imbalanced K=10, N=200: losses")
    ax = axes[1, 1]
    ax.plot(t2, ti["A"], label="A_k")
    ax.plot(t2, ti["B1"], label="B_k,1")
    ax.set(xlabel="GD step t", ylabel="logit", title="(b) logits of an under-represented query k")
    # the B_k,oth rise is small next to A_k and B_k,1: its own (right) axis shows the peak
    rax = ax.twinx()
    rax.plot(t2, ti["Both"], color="C2", label="B_k,oth (mean; right axis)")
    rax.set_ylabel("B_k,oth (zoomed)", color="C2")
    rax.tick_params(axis="y", labelcolor="C2")
    rax.set_ylim(-3 * max(ti["Both"].max(), 1e-3), 1.5 * max(ti["Both"].max(), 1e-3))
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = rax.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="lower left", bbox_to_anchor=(0.45, 0.12))
    ax = axes[1, 2]
    ax.plot(t2, ti["a_kk"], label="E[α_k→k]")
    ax.plot(t2, ti["a_k1"], label="E[α_k→1]")
    ax.plot(t2, 1 - ti["a_kk"] - ti["a_k1"], label="E[α_k→oth] (total)")
    ax.axhline(0.1, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="GD step t", ylabel="attention", title="(b) attention masses of query k")
    colors = plt.cm.tab10(np.arange(len(EVENT_LABELS)))
    for i, ax in enumerate(axes[1]):
        for (name, _lab), c in zip(EVENT_LABELS.items(), colors):
            if ev.get(name) is not None:
                ax.axvline(ev[name], color=c, lw=0.9, ls=":")
        if i != 1:
            ax.legend(fontsize=8, loc="best")
    y0 = axes[1, 1].get_ylim()
    for i, ((name, lab), c) in enumerate(zip(EVENT_LABELS.items(), colors)):
        if ev.get(name) is not None:
            axes[1, 1].text(ev[name], y0[1] - (i + 1) * 0.07 * (y0[1] - y0[0]), f" {lab} ({ev[name]})",
                            color=c, fontsize=7)
    fig.suptitle("Huang, Cheng, Liang 2023 — phases of softmax-attention GD (spec H13; population "
                 "dynamics of C over a fixed Monte-Carlo set of prompts, η = 1)", fontsize=11)
    fig.tight_layout()
    return ctx.save_figure(fig, "phases")
