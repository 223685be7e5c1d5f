"""In-domain generalisation conditions of Theorem 3.3 (spec L13 b–d).

(b) a training-task set that breaks coverage; (c) iterations to a loss threshold vs α, log–log
slope with a confidence interval over seeds against −2/3; (d) the shortest trainable l_tr vs α
against 1/α, and the test error vs l_ts against the 1/α' threshold.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim
from refimpl.li2024 import preset
from refimpl.li2024.checks import generalization as checks
from refimpl.validation.li2024._common import fitter

ORDER = 20
PROFILE = {
    "quick": {
        "b_seeds": (0,), "b_n": 10_000,
        "c_alphas": (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), "c_seeds": (0, 1, 2),
        "d_alphas": (0.2, 0.6, 1.0), "d_lengths": (1, 2, 3, 4, 6, 8), "d_seeds": (0,),
        "dt_alphas": (0.2, 0.4, 0.6, 0.8, 1.0), "dt_lengths": tuple(range(1, 21)) + (24, 28, 32), "dt_seeds": (0,),
        "dt_n": 4_000,
    },
    "full": {
        "b_seeds": (0, 1, 2), "b_n": 50_000,
        "c_alphas": (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0), "c_seeds": tuple(range(8)),
        "d_alphas": (0.2, 0.4, 0.6, 0.8, 1.0), "d_lengths": (1, 2, 3, 4, 6, 8, 12, 16), "d_seeds": (0, 1, 2),
        "dt_alphas": (0.2, 0.3, 0.4, 0.6, 0.8, 1.0), "dt_lengths": tuple(range(1, 21)) + (24, 28, 32, 40),
        "dt_seeds": (0, 1, 2), "dt_n": 20_000,
    },
}


def run(ctx) -> list[Claim]:
    p = PROFILE[ctx.profile]
    base = preset("default")
    fit = fitter(ctx)
    b = ctx.cached("li2024/l13b", {"cfg": base.to_dict(), "p": [p["b_seeds"], p["b_n"]]},
                   lambda: checks.check_l13b_coverage(fit, base, p["b_seeds"], p["b_n"]))
    c = ctx.cached("li2024/l13c", {"cfg": base.to_dict(), "p": [p["c_alphas"], p["c_seeds"]]},
                   lambda: checks.check_l13c_iterations_vs_alpha(fit, base, p["c_alphas"], p["c_seeds"]))
    d1 = ctx.cached("li2024/l13d_train", {"cfg": base.to_dict(), "p": [p["d_alphas"], p["d_lengths"], p["d_seeds"]]},
                    lambda: checks.check_l13d_min_train_length(fit, base, p["d_alphas"], p["d_lengths"], p["d_seeds"]))
    runs = [fit(base, s) for s in p["dt_seeds"]]
    d2 = ctx.cached("li2024/l13d_test", {"cfg": base.to_dict(), "p": [p["dt_alphas"], p["dt_lengths"], p["dt_seeds"], p["dt_n"]]},
                    lambda: checks.check_l13d_test_length(runs, p["dt_alphas"], p["dt_lengths"], p["dt_n"]))
    name = figure(ctx, b, c, d1, d2)
    for claim in (b, c, d1, d2):
        claim.figure = name
    return [b, c, d1, d2]


def figure(ctx, b, c, d1, d2) -> str:
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.4))
    # (a) L13b: unseen-task error by training-task set
    ax = axes[0]
    var = b.numbers["variants"]
    names = list(var)
    errs = [np.mean(var[k]["error"]) for k in names]
    floor = 1e-5
    ax.bar(range(len(names)), np.maximum(errs, floor), color=["C0", "C7", "C3", "C3"][: len(names)])
    for i, k in enumerate(names):
        ax.scatter(np.full(len(var[k]["error"]), i), np.maximum(var[k]["error"], floor), color="k", s=12, zorder=3)
    ax.set_xticks(range(len(names)), [f"{k}\n|T_tr|={var[k]['size']}" for k in names], fontsize=8)
    ax.set(yscale="log", ylabel="unseen-task error (α' = 0.8, l_ts = 20)", title="(a) L13b coverage of T_tr")
    # (b) L13c: iterations vs α
    ax = axes[1]
    al, its = c.numbers["alphas"], c.numbers["iterations"]
    for j in range(its.shape[1]):
        ax.plot(al, its[:, j], "o", color="C0", alpha=0.5, ms=4)
    fr = c.numbers["fit"]
    if fr:
        xs = np.linspace(al.min(), al.max(), 50)
        ax.plot(xs, np.exp(fr["intercept"]) * xs ** fr["slope"], "C0-",
                label=f"fit: slope {fr['slope']:.2f} [{fr['ci'][0]:.2f}, {fr['ci'][1]:.2f}]")
        ax.plot(xs, np.exp(fr["intercept"]) * xs.mean() ** (fr["slope"] + 2 / 3) * xs ** (-2 / 3), "k--",
                label="slope −2/3 (Theorem 3.3)")
    ax.set(xscale="log", yscale="log", xlabel="α (training)", ylabel=f"SGD steps to hinge ≤ {c.numbers['threshold']:g}",
           title="(b) L13c iterations vs α")
    ax.legend(fontsize=8)
    # (c) L13d: l_min vs α and l* vs α'
    ax = axes[2]
    lm = d1.numbers["l_min"]
    for j in range(lm.shape[1]):
        ax.plot(d1.numbers["alphas"], lm[:, j], "s-", color="C2", alpha=0.7, label="shortest trainable l_tr" if j == 0 else None)
    ax.plot(d2.numbers["alphas_test"], d2.numbers["l_star"], "o-", color="C1",
            label=f"l*: error ≤ {d2.numbers['eps']:g} from l_ts on")
    xs = np.linspace(0.2, 1.0, 50)
    ax.plot(xs, 1 / xs, "k--", label="1/α")
    ax.set(xscale="log", yscale="log", xlabel="α (train) / α' (test)", ylabel="prompt length", title="(c) L13d lengths vs α")
    ax.legend(fontsize=8)
    # (d) test error vs l_ts for several α'
    ax = axes[3]
    L = d2.numbers["lengths"]
    nfloor = 0.5 / 4000
    for k, (a, cs) in enumerate(d2.numbers["curves"].items()):
        m = np.mean(cs, axis=0)
        ax.plot(L, np.maximum(m, nfloor), color=f"C{k}", label=f"α' = {float(a):g}")
        ax.axvline(1 / float(a), color=f"C{k}", ls=":", lw=1)
    ax.axhline(d2.numbers["eps"], color="grey", ls="--", lw=1)
    ax.set(yscale="log", xlabel="l_ts", ylabel="unseen-task error", title="(d) error vs l_ts (dotted: 1/α')")
    ax.legend(fontsize=8)
    fig.suptitle("Li et al. 2024, Theorem 3.3 conditions (one-layer model, default preset)")
    fig.tight_layout()
    return ctx.save_figure(fig, "generalization")
