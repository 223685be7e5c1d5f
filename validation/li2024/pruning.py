"""Pruning of W_O rows (spec L9, L15) and figures E4, E5.

Trains the one-layer model at the default preset (the runs shared with the other modules), then
prunes rows ("neurons") of W_O: all small rows (norm < 2 ξ√m_a), the smallest k rows (magnitude
pruning), k uniformly random rows (random pruning), or a fraction R of the large rows. Every
comparison between masks uses the same test prompts. The settings are OOD tasks at α' = 0.6
(the paper's E4 setting) and the unseen in-domain tasks T \\ T_tr at the same α', l_ts = 20;
E5 repeats magnitude pruning on OOD prompts at α' ∈ {0.6, 0.8, 1.0}. A sweep over M1 (M2 = 24) and
M2 (M1 = 6) measures which M the error left after pruning the small rows tracks (spec L15 (ii)).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim
from refimpl.li2024 import preset
from refimpl.li2024.checks import fmt
from refimpl.li2024.checks import pruning as checks
from refimpl.validation.li2024._common import fitter

ORDER = 50
PROFILE = {
    "quick": {"seeds": (0,), "n_test": 20_000, "n_random": 10, "m_seeds": (0,), "n_m": 20_000},
    "full": {"seeds": (0, 1, 2), "n_test": 100_000, "n_random": 20, "m_seeds": (0, 1, 2), "n_m": 100_000},
}
# the expectations and thresholds are in refimpl/li2024/checks/pruning.py


def run(ctx) -> list[Claim]:
    prof = PROFILE[ctx.profile]
    cfg = preset("default")
    fit = fitter(ctx)
    meas = []
    for seed in prof["seeds"]:
        r = fit(cfg, seed)
        key = {"config": cfg.to_dict(), "seed": seed, "n": prof["n_test"], "n_random": prof["n_random"]}
        meas.append(ctx.cached("li2024/pruning", key,
                               lambda r=r: checks.measure_pruning(r, prof["n_test"], prof["n_random"])))
    points = ctx.cached(
        "li2024/pruning_m", {"config": cfg.to_dict(), "seeds": prof["m_seeds"], "n": prof["n_m"],
                             "M1": checks.L15M_M1, "M2": checks.L15M_M2},
        lambda: checks.measure_m_sweep(fit, cfg, prof["m_seeds"], prof["n_m"]))

    bimodal = checks.check_l15i_bimodal(meas)
    small = {s: checks.check_l15ii_small_rows(meas, s) for s in checks.PRUNE_SETTINGS}
    which_m = checks.check_l15ii_which_m(points)
    large = {s: checks.check_l15iii_large_rows(meas, s) for s in checks.PRUNE_SETTINGS}
    mag_vs_rand = {s: checks.check_l15iv_magnitude_vs_random(meas, s) for s in checks.PRUNE_SETTINGS}
    e4 = checks.check_e4(meas)
    e5 = checks.check_e5(meas)

    fig_e4 = figure_e4(ctx, e4)
    fig_e5 = figure_e5(ctx, e5)
    fig_l15 = figure_l15(ctx, bimodal, which_m, large, mag_vs_rand["unseen"])
    for c in (small["ood"], mag_vs_rand["ood"], e4):
        c.figure = fig_e4
    e5.figure = fig_e5
    for c in (bimodal, small["unseen"], which_m, large["ood"], large["unseen"], mag_vs_rand["unseen"]):
        c.figure = fig_l15
    return [bimodal, small["ood"], small["unseen"], which_m, large["ood"], large["unseen"],
            mag_vs_rand["ood"], mag_vs_rand["unseen"], e4, e5]


def _band(ax, x, Y, color, label, **kw):
    """Mean over seeds (rows of Y) as a line, min–max as a shaded band when there are several."""
    Y = np.atleast_2d(Y)
    ax.plot(x, Y.mean(axis=0), color=color, label=label, **kw)
    if len(Y) > 1:
        ax.fill_between(x, Y.min(axis=0), Y.max(axis=0), color=color, alpha=0.2, lw=0)


def _norm_bars(ax, norms, threshold):
    """Sorted W_O row norms (mean over seeds of the k-th smallest) as bars on a twin axis, at the
    pruning rate at which magnitude pruning removes that row."""
    srt = np.mean([np.sort(n) for n in norms], axis=0)
    m = len(srt)
    x = 100 * (np.arange(m) + 1) / m
    tw = ax.twinx()
    tw.bar(x, srt, width=100 / m * 0.9, color="0.6", alpha=0.35, label="sorted ‖W_O,(i)‖ (right axis)")
    tw.axhline(threshold, color="0.4", ls=":", lw=1, label=f"small threshold {threshold:.3f}")
    tw.set_ylim(0, 1.15 * srt.max())
    tw.set_ylabel("row norm ‖W_O,(i)‖₂")
    ax.set_zorder(tw.get_zorder() + 1)
    ax.patch.set_visible(False)
    return tw


def figure_e4(ctx, e4: Claim) -> str:
    N = e4.numbers
    xm, xr = 100 * N["rates_magnitude"], 100 * N["rates_random"]
    x0r = np.concatenate([[0.0], xr])
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.6))
    seeds = N["seeds"]
    n = N["n"]
    for ax, metric in zip(axes[:2], ("error", "hinge")):
        floor = 0.5 / n if metric == "error" else 0.0
        Ym = np.maximum(N[f"{metric}_magnitude"], floor)
        Yr = np.maximum(np.column_stack([N[f"{metric}_unpruned"], N[f"{metric}_random"]]), floor)
        _band(ax, xm, Ym, "C0", "magnitude pruning (ours)", marker="o", ms=3)
        _band(ax, x0r, Yr, "C3", "random pruning (ours, mean of masks)", marker="s", ms=3)
        if metric == "error":
            for kind, color in (("magnitude", "C0"), ("random", "C3")):
                px, py = zip(*N["paper"][kind])
                ax.plot(100 * np.array(px), py, ls="--", color=color, marker="*", ms=9, alpha=0.8,
                        label=f"paper, {kind} (read off plot)")
            ax.set_yscale("log")
        fs = 100 * np.mean(N["small_fraction"])
        ax.axvline(fs, color="k", ls="-.", lw=1, label=f"small-row fraction {fs:.0f}%")
        tw = _norm_bars(ax, N["norms"], N["threshold"])
        ax.set(xlabel="pruning rate (% of the m rows of W_O)",
               ylabel="classification error (zF ≤ 0)" if metric == "error" else "hinge loss",
               title=f"({'a' if metric == 'error' else 'b'}) {metric}, OOD, α' = 0.6, l_ts = 20")
        ax.set_xlim(-1, 42)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax = axes[2]
    D, SE = N["diff_hinge"], N["diff_hinge_se"]
    for i, s in enumerate(seeds):
        ax.errorbar(xr + 0.3 * i, D[i], yerr=2 * SE[i], fmt="o-", ms=3, capsize=2, lw=1,
                    label=f"seed {s} (± 2 paired SE)")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="pruning rate (%)", ylabel="hinge(random) − hinge(magnitude)",
           title="(c) random minus magnitude, same prompts")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.suptitle(f"E4: magnitude vs random pruning of W_O rows (one-layer model, default preset, seeds {seeds}, "
                 f"n = {n} prompts; bands = min–max over seeds)")
    fig.tight_layout()
    return ctx.save_figure(fig, "pruning_E4")


def figure_e5(ctx, e5: Claim) -> str:
    N = e5.numbers
    x = 100 * N["rates"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    colors = ("C3", "C1", "C2")
    for j, a in enumerate(N["alphas"]):
        _band(axes[0], x, np.maximum(N["error"][:, j], 1e-5), colors[j], f"α' = {a:g}", marker="o", ms=2)
        _band(axes[1], x, N["hinge"][:, j], colors[j], f"α' = {a:g}", marker="o", ms=2)
        _band(axes[2], x, N["d_hinge"][:, j], colors[j], f"α' = {a:g}", marker="o", ms=2)
    fs = 100 * np.mean(N["small_fraction"])
    for ax in axes:
        ax.axvline(fs, color="k", ls="-.", lw=1, label=f"small-row fraction {fs:.0f}%")
        ax.axvline(40, color="0.5", ls=":", lw=1)
        ax.set_xlabel("magnitude pruning rate (% of rows)")
    axes[0].set(yscale="log", ylabel="classification error", title="(a) error, OOD, l_ts = 20")
    axes[1].set(yscale="log", ylabel="hinge loss", title="(b) hinge loss")
    axes[2].set(ylabel="hinge(rate) − hinge(0)", title="(c) increase over the unpruned model")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(f"E5: magnitude pruning at several α' (seeds {N['seeds']}; bands = min–max over seeds; "
                 f"dotted line = the end of E4's range)")
    fig.tight_layout()
    return ctx.save_figure(fig, "pruning_E5")


def figure_l15(ctx, bimodal: Claim, which_m: Claim, large: dict, mvr_unseen: Claim) -> str:
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    # (a) histogram of the row norms (all seeds)
    ax = axes[0, 0]
    N = bimodal.numbers
    allnorms = np.concatenate(N["norms"])
    ax.hist(allnorms, bins=50, color="C0", alpha=0.8)
    ax.axvline(N["threshold"], color="k", ls=":", label=f"small threshold 2ξ√m_a = {N['threshold']:.3f}")
    ax.axvline(N["init_scale"], color="C2", ls="--", label=f"initial scale ξ√m_a = {N['init_scale']:.3f}")
    ref = N["spec_ref"]
    ax.axvspan(ref["large_norm"][0], ref["large_norm"][1], color="C1", alpha=0.15, label="spec prototype: large rows")
    ax.axvline(ref["small_norm"], color="C1", lw=2, alpha=0.6,
               label=f"spec prototype: {ref['small_fraction'][0]:.0%}–{ref['small_fraction'][1]:.0%} near {ref['small_norm']}")
    ax.set(xlabel="‖W_O,(i)‖₂", ylabel="rows (all seeds)",
           title=f"(a) W_O row norms; small fraction {fmt(N['small_fraction'], '.0%')}")
    ax.legend(fontsize=7)
    # (b) Δhinge after pruning a fraction R of the large rows
    ax = axes[0, 1]
    for s, color in (("ood", "C3"), ("unseen", "C0")):
        L = large[s].numbers
        R = L["R"]
        _band(ax, R, np.maximum(L["d_hinge_random"], 1e-6), color, f"{s}: random among large", marker="o", ms=3)
        _band(ax, R, np.maximum(L["d_hinge_largest"], 1e-6), color, f"{s}: largest first", ls="--", marker="^", ms=3)
    ms = large["ood"].numbers["min_slope"]
    ax.plot(R, ms * R, color="k", ls=":", label=f"test line {ms:g} · R")
    ax.set(yscale="log", xlabel="fraction R of the large rows pruned", ylabel="Δhinge (floored at 1e-6)",
           title="(b) L15 (iii): cost of pruning large rows, α' = 0.6")
    ax.legend(fontsize=7)
    # (c) classification error after pruning large rows
    ax = axes[0, 2]
    for s, color in (("ood", "C3"), ("unseen", "C0")):
        L = large[s].numbers
        _band(ax, L["R"], L["d_error_random"], color, f"{s}: Δerror, random among large", marker="o", ms=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="fraction R of the large rows pruned", ylabel="Δ classification error",
           title="(c) classification error after pruning large rows")
    ax.legend(fontsize=7)
    # (d), (e) residual hinge after pruning the small rows vs M1 and M2
    W = which_m.numbers
    pts = W["points"]
    for ax, key, fixed, slope, lab in ((axes[1, 0], "M1", ("M2", 24), W["slope_M1"], "(d)"),
                                       (axes[1, 1], "M2", ("M1", 6), W["slope_M2"], "(e)")):
        P = [p for p in pts if p[fixed[0]] == fixed[1]]
        ax.scatter([p[key] for p in P], [p["hinge_pruned"] for p in P], color="C0", s=18, label="per seed, pruned")
        ax.scatter([p[key] for p in P], [p["hinge"] for p in P], color="C1", s=40, marker="x", label="per seed, unpruned")
        Ms, res = W[key], W[f"residual_{key}"]
        ax.plot(Ms, res, color="C0", label=f"mean, slope {slope:+.2f}")
        x = np.array([min(Ms), max(Ms)], dtype=float)
        anchor = 6 if key == "M1" else 24  # the default preset's value
        if anchor in Ms:
            ax.plot(x, res[Ms.index(anchor)] * (x / anchor) ** -0.5, color="k", ls=":",
                    label="slope −1/2 (through the default)")
        ax.set(xscale="log", yscale="log", xlabel=key, ylabel="hinge after pruning the small rows",
               title=f"{lab} residual vs {key} ({fixed[0]} = {fixed[1]}), unseen tasks, α' = 0.6")
        ax.set_xticks(Ms)
        ax.set_xticklabels([str(v) for v in Ms])
        ax.legend(fontsize=7)
    # (f) magnitude vs random pruning in-domain
    ax = axes[1, 2]
    C = mvr_unseen.numbers["curve"]
    sel = C["rates_magnitude"] <= 0.4 + 1e-9
    _band(ax, 100 * C["rates_magnitude"][sel], C["hinge_magnitude"][:, sel], "C0", "magnitude", marker="o", ms=3)
    _band(ax, 100 * np.concatenate([[0.0], C["rates_random"]]),
          np.column_stack([C["hinge_unpruned"], C["hinge_random"]]), "C3", "random (mean of masks)", marker="s", ms=3)
    fs = 100 * np.mean(C["small_fraction"])
    ax.axvline(fs, color="k", ls="-.", lw=1, label=f"small-row fraction {fs:.0f}%")
    ax.set(xlabel="pruning rate (% of rows)", ylabel="hinge loss",
           title="(f) L15 (iv) in-domain: unseen tasks, α' = 0.6")
    ax.legend(fontsize=8)
    fig.suptitle(f"L15: pruning theorem checks (default preset, seeds {N['seeds']}; bands = min–max over seeds)")
    fig.tight_layout()
    return ctx.save_figure(fig, "pruning_L15")
