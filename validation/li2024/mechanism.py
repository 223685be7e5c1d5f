"""Mechanism of the one-layer model (spec L16 Proposition 1, L17 Proposition 2) and figure E6.

Trains the default preset by SGD keeping a parameter snapshot every ``snapshot_every`` steps, then
follows through training, on fixed unseen-task and OOD prompts: the attention mass on same-pattern
and on "other" contexts, ‖W_Q p_q‖, ‖W_K p_i‖ and their components along the relevant pattern, and
the geometry of the rows of W_O W_V (feature block vs µ̄, label block vs q). The ablations zero
the context label blocks, or the IDI noise, of fresh unseen-task prompts.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim
from refimpl.li2024 import preset
from refimpl.li2024.checks import mechanism as checks
from refimpl.li2024.checks import paper as PAPER
from refimpl.li2024.checks.training import L16_FINAL_ATTN
from refimpl.validation.li2024._common import fitter

ORDER = 60
PROFILE = {
    "quick": {"seeds": (0,), "snapshot_every": 25, "n_traj": 2000, "n_ablation": 20_000},
    "full": {"seeds": (0, 1, 2), "snapshot_every": 25, "n_traj": 4000, "n_ablation": 100_000},
}
# the expectations are in refimpl/li2024/checks/mechanism.py; these are the paper's E6 values (spec L §6)
PAPER_E6 = PAPER.E6  # (b) attention masses, (c) feature angle, (d) label angle (refimpl.li2024.checks.paper)


def run(ctx) -> list[Claim]:
    prof = PROFILE[ctx.profile]
    cfg = preset("default")
    fit = fitter(ctx)
    runs = [fit(cfg, seed, snapshot_every=prof["snapshot_every"]) for seed in prof["seeds"]]
    key = {"config": cfg.to_dict(), "seeds": prof["seeds"], "snapshot_every": prof["snapshot_every"]}
    trajs = ctx.cached("li2024/mechanism_trajectory", {**key, "n": prof["n_traj"]},
                       lambda: [checks.mechanism_trajectory(r, prof["n_traj"]) for r in runs])
    abl = ctx.cached("li2024/mechanism_ablation", {**key, "n": prof["n_ablation"]},
                     lambda: checks.measure_l17_ablations(runs, prof["n_ablation"]))
    claims = [
        checks.check_l16_attention_split(trajs),
        checks.check_l16_qk_norms(trajs),
        checks.check_l17_row_kinds(runs),
        checks.check_l17_label_ablation(abl),
        checks.check_l17_noise_ablation(abl),
    ]
    fig_name = figure(ctx, trajs, cfg)
    for c in claims[:3]:
        c.figure = fig_name
    return claims


def _band(ax, x, ys, color, label, ls="-", lw=1.5, band=True):
    """Median over seeds as a line, min–max over seeds as a shaded band (one seed: just the line)."""
    ys = np.asarray(ys)
    ax.plot(x, np.median(ys, axis=0), color=color, ls=ls, lw=lw, label=label)
    if band and len(ys) > 1:
        ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.2, lw=0)


def figure(ctx, trajs, cfg) -> str:
    steps = trajs[0]["step"]
    T = steps[-1]
    seeds = [t["seed"] for t in trajs]

    def S(key):
        return [t[key] for t in trajs]

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    paper = dict(marker="*", ms=13, color="k", ls="none", zorder=5)

    # (a) ‖W_Q p_q‖, ‖W_K p_i‖ and their components along the pattern (unseen tasks; OOD dotted)
    ax = axes[0, 0]
    _band(ax, steps, S("unseen/q_norm"), "C0", "‖W_Q p_q‖")
    _band(ax, steps, S("unseen/q_pattern"), "C0", "  component along µ_j (query's pattern)", ls="--")
    _band(ax, steps, S("unseen/k_norm"), "C1", "‖W_K p_i‖")
    _band(ax, steps, S("unseen/k_pattern"), "C1", "  component along µ_j (key's pattern)", ls="--")
    if "ood/q_norm" in trajs[0]:
        _band(ax, steps, S("ood/q_norm"), "C0", "‖W_Q p_q‖, OOD prompts", ls=":", lw=1)
        _band(ax, steps, S("ood/k_norm"), "C1", "‖W_K p_i‖, OOD prompts", ls=":", lw=1)
    ax.axvspan((1 - checks.L16_LATE_FRACTION) * T, T, color="grey", alpha=0.1, label="plateau window (last 20%)")
    ax.set(xlabel="SGD step", ylabel="norm (mean over prompts)", title="(a) query / key projections (paper: grow, plateau)")
    ax.legend(fontsize=8, loc="lower right")

    # (b) attention on same-pattern and on "other" contexts
    ax = axes[0, 1]
    _band(ax, steps, S("unseen/attn_same"), "C0", "same pattern, unseen tasks")
    _band(ax, steps, S("unseen/attn_other"), "C3", "'other' (outside the task pair), unseen tasks")
    if "ood/attn_same" in trajs[0]:
        _band(ax, steps, S("ood/attn_same"), "C0", f"same pattern, OOD (S1 = {cfg.data.S1})", ls="--")
        _band(ax, steps, S("ood/attn_other"), "C3", "'other', OOD", ls="--")
    ax.axhline(cfg.data.alpha_test / 2, color="C0", ls=":", lw=1, label="uniform attention: α'/2, 1 − α'")
    ax.axhline(1 - cfg.data.alpha_test, color="C3", ls=":", lw=1)
    ax.axhline(L16_FINAL_ATTN, color="grey", ls="-.", lw=1, label=f"check: same ≥ {L16_FINAL_ATTN}")
    ax.axhline(checks.L16_OTHER_MAX, color="grey", ls=(0, (1, 3)), lw=1, label=f"check: other ≤ {checks.L16_OTHER_MAX}")
    a0, a1 = PAPER_E6["attn_same"]
    ax.plot([0, T], [a0, a1], label="paper E6(b): same 0.42 → 1.0, other → 0", **paper)
    ax.plot([T], [PAPER_E6["attn_other_end"]], **paper)
    ax.set(ylim=(-0.02, 1.05), xlabel="SGD step", ylabel="attention mass (mean over prompts)",
           title="(b) attention mass (solid: unseen tasks, dashed: OOD)")
    ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 0.1))

    # (c) feature block of W_O W_V rows: angle to µ̄ (left) and magnitude (right)
    ax = axes[1, 0]
    g = trajs[0]["group_size"]
    _band(ax, steps, S("rows/pos/feature_angle"), "C2", f"large rows, a_i > 0 ({g['pos']} at seed {seeds[0]})")
    _band(ax, steps, S("rows/neg/feature_angle"), "C4", f"large rows, a_i < 0 ({g['neg']})")
    _band(ax, steps, S("rows/small/feature_angle"), "grey", f"small rows ({g['small']})", lw=1)
    ax.axhline(checks.L17_FEATURE_ANGLE, color="grey", ls="-.", lw=1, label="check: < π/4")
    f0, (f1, f2) = PAPER_E6["feature_angle"]
    ax.plot([0], [f0], label="paper E6(c): π/2 → 0.35–0.4 rad", **paper)
    ax.errorbar([T], [(f1 + f2) / 2], yerr=[[(f2 - f1) / 2]], fmt="*", ms=13, color="k", capsize=8, lw=2, zorder=5)
    ax.set(ylim=(0, np.pi), xlabel="SGD step", ylabel="angle to µ̄ (rad, median over the group)",
           title="(c) feature block of W_O W_V rows")
    ax2 = ax.twinx()
    _band(ax2, steps, S("rows/pos/feature_norm"), "C2", "‖feature block‖, a_i > 0 (median over seeds)", ls=":", band=False)
    _band(ax2, steps, S("rows/neg/feature_norm"), "C4", "‖feature block‖, a_i < 0", ls=":", band=False)
    ax2.set_ylabel("‖feature block‖ (dotted, median)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")

    # (d) label block: angle to q
    ax = axes[1, 1]
    _band(ax, steps, S("rows/pos/label_angle"), "C2", "large rows, a_i > 0")
    _band(ax, steps, S("rows/neg/label_angle"), "C4", "large rows, a_i < 0")
    _band(ax, steps, S("rows/small/label_angle"), "grey", "small rows", lw=1)
    ax.axhline(checks.L17_LABEL_ANGLE, color="C2", ls="-.", lw=1, label=f"check: < {checks.L17_LABEL_ANGLE} (a_i > 0)")
    ax.axhline(np.pi - checks.L17_LABEL_ANGLE, color="C4", ls="-.", lw=1,
               label=f"check: > π − {checks.L17_LABEL_ANGLE} (a_i < 0)")
    ends = PAPER_E6["label_angle_end"]
    ax.plot([T, T], [ends["pos"], ends["neg"]], label="paper E6(d): → small (a_i > 0), → near π (a_i < 0)", **paper)
    ax.set(ylim=(-0.1, np.pi + 0.1), xlabel="SGD step", ylabel="angle to q (rad, median over the group)",
           title="(d) label block of W_O W_V rows")
    ax.legend(fontsize=8, loc="center right")

    fig.suptitle(f"E6 — mechanism of the one-layer model, default preset (seeds {seeds}; "
                 f"{'median, min–max band' if len(seeds) > 1 else 'one seed'}; rows grouped by the final model; "
                 f"paper values ★ drawn at our first/last step)")
    fig.tight_layout()
    return ctx.save_figure(fig, "E6_mechanism")
