"""Spec L E1, E2 and E7 with the 3-layer, 2-head GPT-2 of spec T (``gpt2_3l2h``), beside the
one-layer model of spec L7.

The paper ran E1, E2 and E7 with a small GPT-2 (3 layers, 2 heads). Here the ``gpt2_3l2h`` preset
(pre-norm, GELU, causal mask, learned positions, read-out at the last position, hinge loss;
[C] d_model 64, d_ff 256) reads each prompt as l+1 tokens, query last (refimpl.transformer.adapters),
on the default data model of spec L (the instance of the one-layer run with the same seed).

Training [C] (the paper's optimiser and schedule for its GPT-2 are not recoverable): Adam, lr 3e−4
after 50 linear warm-up steps, batch 64 prompts from T_tr at the training α = 0.8; each
minibatch has one prompt length l ~ U{1..40}, so every learned position up to the longest test
length (40) is trained — a fixed l_tr = 20 would leave the positions of longer test prompts
untrained. quick: 1 seed, 400 steps; full: 2 seeds, 1500 steps (the one-layer model: 3 seeds,
2000 SGD steps of batch 64 at l_tr = 20). One step costs ~0.1 s on one idle core (B = 64, T ≈ 21).
Trial runs before the sizes were fixed (seed 0, 1000 steps, unseen-task error at l_ts = 20 on 500
prompts): lr 1e−3 constant without warm-up oscillated (0.03–0.10 from step 400), lr 1e−3 and 5e−4 with cosine decay
got stuck near 0.3–0.36 after a loss jump around step 200, lr 3e−4 constant reached 0.02.

E1 / E2: the deep model's curves on n prompts per length (quick 500, full 2000; the one-layer
curves use 4000 / 20000) from the same prompt streams as the one-layer curves, judged by the same
checks (refimpl.li2024.checks.ood L14, E2) — the one-layer curves are the ones ``validation/li2024/ood.py``
computes (shared through the cache). E7: per layer, the attention the query pays to contexts with
its relevant pattern (head mean), on fixed unseen-task prompts (l_ts = 20, α' = 0.8) at parameter
snapshots through training.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim
from refimpl.experiments.li_deep import li_attention_trajectory, li_error_curve, li_instance, li_ood_curves, train_li
from refimpl.li2024 import preset as li_preset
from refimpl.li2024.checks import deep as dchecks
from refimpl.li2024.checks import ood as ochecks
from refimpl.li2024.checks import paper as PAPER
from refimpl.li2024.metrics import error_curve
from refimpl.transformer.config import preset
from refimpl.validation.li2024 import ood
from refimpl.validation.li2024._common import fitter

ORDER = 65
PROFILE = {
    "quick": {"seeds": (0,), "steps": 400, "batch": 64, "lr": 3e-4, "warmup": 50, "l_range": (1, 40),
              "snapshot_every": 25, "eval_every": 50, "n": 300, "n_traj": 300, "backend": "numba"},
    "full": {"seeds": (0, 1), "steps": 1500, "batch": 64, "lr": 3e-4, "warmup": 50, "l_range": (1, 40),
             "snapshot_every": 50, "eval_every": 100, "n": 1000, "n_traj": 1000, "backend": "numba"},
}
MODEL = "3-layer GPT-2"
E7_PAPER = PAPER.E7  # spec L §6 E7 (refimpl.li2024.checks.paper)


def _tcfg(base, p):
    return preset("gpt2_3l2h", d_in=base.data.d, max_T=p["l_range"][1] + 1)


def train_deep(base, tcfg, p, seed, progress):
    """Train the GPT-2 for one seed and measure its E7 trajectory: the ``train_li`` Trajectory with
    ``extra["traj"]`` (snapshots dropped after)."""
    inst = li_instance(base, seed)
    res = train_li(tcfg, inst, lr=p["lr"], steps=p["steps"], batch_size=p["batch"], l_range=p["l_range"], seed=seed,
                   snapshot_every=p["snapshot_every"], eval_every=p["eval_every"], schedule="constant",
                   warmup=p["warmup"], progress=progress, desc=f"li2024 GPT-2 seed {seed}", backend=p["backend"])
    res.extra["traj"] = li_attention_trajectory(res, tcfg, inst, p["n_traj"])
    res.snapshots = {}
    return res


def run(ctx) -> list[Claim]:
    p = PROFILE[ctx.profile]
    base = li_preset("default")
    alpha = base.data.alpha_test
    tcfg = _tcfg(base, p)

    # one-layer curves: exactly the computations (and cache entries) of validation/li2024/ood.py
    p1 = ood.PROFILE[ctx.profile]
    fit = fitter(ctx)
    runs1 = [fit(base, s) for s in p1["seeds"]]
    e1_one = ctx.cached("li2024/e1_curves", {"cfg": base.to_dict(), "p": p1},
                        lambda: [ochecks.ood_curves(r, ochecks.L14_S1, p1["lengths"], p1["n"], alpha) for r in runs1])
    e2_lengths = [l for l in p1["lengths"] if l <= 20]
    e2_one = ctx.cached("li2024/e2_curves", {"cfg": base.to_dict(), "p": p1},
                        lambda: [{(kind, a): error_curve(r, e2_lengths, p1["n"], tasks=kind, alpha=a, key=2)
                                  for kind in ("unseen", "ood") for a in ochecks.E2_ALPHAS} for r in runs1])

    key = {"cfg": base.to_dict(), "tcfg": tcfg.to_dict(),
           "p": {k: v for k, v in p.items() if k not in ("seeds", "n")}}
    deep = [ctx.cached("li2024/deep_train", {**key, "seed": s}, lambda s=s: train_deep(base, tcfg, p, s, ctx.progress))
            for s in p["seeds"]]

    def curves():
        e1, e2 = [], []
        for s, r in zip(p["seeds"], deep):
            inst = li_instance(base, s)
            e1.append(li_ood_curves(r.params, tcfg, inst, ochecks.L14_S1, p1["lengths"], p["n"], seed=s, alpha=alpha))
            e2.append({(kind, a): li_error_curve(r.params, tcfg, inst, e2_lengths, p["n"], seed=s, tasks=kind,
                                                 alpha=a, key=2)
                       for kind in ("unseen", "ood") for a in ochecks.E2_ALPHAS})
        return e1, e2

    e1_deep, e2_deep = ctx.cached("li2024/deep_curves", {**key, "seeds": p["seeds"], "n": p["n"],
                                                         "lengths": p1["lengths"]}, curves)
    same_seeds = [c for s, c in zip(p1["seeds"], e1_one) if s in p["seeds"]]

    trained = Claim(
        "deep-train", f"{MODEL} trained on T_tr (Adam, {p['steps']} steps, l ~ U{{{p['l_range'][0]}..{p['l_range'][1]}}}, "
        f"{p['backend']} backend)",
        "spec L §6 (E1, E2, E7 setting)",
        "unseen-task error at l_ts = 20 on the evaluation batch, start → end: "
        + ", ".join(f"seed {s}: {r.records['error'][0]:.3f} → {r.records['error'][-1]:.3f}"
                    for s, r in zip(p["seeds"], deep))
        + "; training time " + ", ".join(f"{r.extra['train_time']:.0f}" for r in deep) + " s",
        "reported (the E1/E2/E7 rows presuppose a trained model)", "info",
        numbers={"error": [r.records["error"] for r in deep], "step": [r.records["step"] for r in deep]})
    claims = [
        trained,
        dchecks.deep_claim(ochecks.check_l14_s1(e1_deep), MODEL),
        dchecks.deep_claim(ochecks.check_l14_plateau(e1_deep), MODEL),
        dchecks.compare_at_length(e1_deep, same_seeds, seeds=p["seeds"]),
        dchecks.deep_claim(ochecks.check_e2_length_vs_alpha(e2_deep), MODEL),
        dchecks.check_e7_every_layer([r.extra["traj"] for r in deep]),
        dchecks.check_e7_peak([r.extra["traj"] for r in deep]),
    ]
    f1 = figure_e1(ctx, e1_one, e1_deep, p1, p)
    f2 = figure_e2(ctx, e2_one, e2_deep, p1, p)
    f7 = figure_e7(ctx, deep, p)
    for c in claims[:4]:
        c.figure = f1
    claims[4].figure = f2
    claims[0].figure = f7
    claims[5].figure = claims[6].figure = f7
    return claims


def _curve(ax, x, curves, color, label, floor, ls="-"):
    arr = np.maximum(np.array(curves), floor)
    ax.plot(x, arr.mean(axis=0), color=color, ls=ls, label=label)
    if len(arr) > 1:
        ax.fill_between(x, arr.min(axis=0), arr.max(axis=0), color=color, alpha=0.2, lw=0)


def figure_e1(ctx, e1_one, e1_deep, p1, p) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    for ax, e1, n, name, seeds in ((axes[0], e1_one, p1["n"], "one-layer model (spec L7)", p1["seeds"]),
                                   (axes[1], e1_deep, p["n"], MODEL, p["seeds"])):
        floor = 0.5 / n
        for k, s in enumerate(sorted(e1[0], reverse=True)):
            _curve(ax, e1[0][s]["lengths"], [c[s]["error"] for c in e1], f"C{k}", f"S1 = {s:g}", floor)
            ax.plot([20], [ood.E1_PAPER_AT_20[s]], marker="*", ms=11, color=f"C{k}", mec="k", ls="none")
        ax.plot([], [], "k*", ms=10, label="paper at l = 20 (3-layer GPT-2)")
        ax.axhline(ochecks.L14_EPS, color="grey", ls="--", lw=1)
        ax.axhline(floor, color="grey", ls=":", lw=1, label=f"0 errors of {n}")
        ax.set(yscale="log", xlabel="l_ts (context examples)", title=f"{name}, seeds {list(seeds)}")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("OOD classification error")
    fig.suptitle("E1: OOD error vs l_ts (α' = 0.8)", fontsize=11)
    fig.tight_layout()
    return ctx.save_figure(fig, "E1_deep")


def figure_e2(ctx, e2_one, e2_deep, p1, p) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    for ax, e2, n, name, seeds in ((axes[0], e2_one, p1["n"], "one-layer model (spec L7)", p1["seeds"]),
                                   (axes[1], e2_deep, p["n"], MODEL, p["seeds"])):
        floor = 0.5 / n
        for k, a in enumerate(ochecks.E2_ALPHAS):
            for kind, ls, mk in (("unseen", "-", "*"), ("ood", "--", "^")):
                _curve(ax, e2[0][(kind, a)]["lengths"], [c[(kind, a)]["error"] for c in e2], f"C{k}",
                       f"α' = {a:g}, {'in-domain' if kind == 'unseen' else 'OOD'}", floor, ls)
                ax.plot([20], [ood.E2_PAPER_AT_20[(kind, a)]], marker=mk, ms=9, color=f"C{k}", mec="k", ls="none")
        ax.plot([], [], "k*", label="paper at l = 20 (in-domain)")
        ax.plot([], [], "k^", label="paper at l = 20 (OOD)")
        ax.set(yscale="log", xlabel="l_ts (context examples)", title=f"{name}, seeds {list(seeds)}")
        ax.legend(fontsize=7, ncol=2)
    axes[0].set_ylabel("classification error")
    fig.suptitle("E2: error vs l_ts (in-domain = unseen tasks)", fontsize=11)
    fig.tight_layout()
    return ctx.save_figure(fig, "E2_deep")


def figure_e7(ctx, deep, p) -> str:
    trajs = [r.extra["traj"] for r in deep]
    L = trajs[0]["same"].shape[1]
    fig, axes = plt.subplots(1, L + 1, figsize=(4.2 * (L + 1), 4.2))
    for k in range(L):
        ax = axes[k]
        for j, t in enumerate(trajs):
            steps = t["step"]
            ax.plot(steps, t["same"][:, k].mean(axis=1), color="C0", lw=2,
                    label="same pattern (head mean)" if j == 0 else None)
            ax.plot(steps, t["other"][:, k].mean(axis=1), color="C3", lw=1.5,
                    label="'other' patterns (head mean)" if j == 0 else None)
            for h in range(t["same"].shape[2]):
                ax.plot(steps, t["same"][:, k, h], color="C0", lw=0.7, ls=":",
                        label="same pattern, single heads" if j == 0 and h == 0 else None)
        T = trajs[0]["step"][-1]
        ax.axhline(trajs[0]["uniform_same"], color="grey", ls="--", lw=1, label="uniform causal attention")
        ax.errorbar([0], [np.mean(E7_PAPER["start"])], yerr=[[np.ptp(E7_PAPER["start"]) / 2]], fmt="k*", ms=11,
                    capsize=6, label="paper E7: 0.43–0.52 → 0.77–0.88")
        ax.errorbar([T], [np.mean(E7_PAPER["end"])], yerr=[[np.ptp(E7_PAPER["end"]) / 2]], fmt="k*", ms=11, capsize=6)
        ax.set(ylim=(0, 1.02), xlabel="Adam step", title=f"layer {k}")
        if k == 0:
            ax.set_ylabel("attention mass from the query token")
            ax.legend(fontsize=7, loc="upper left")
    ax = axes[L]
    for j, r in enumerate(deep):
        ax.semilogy(r.records["step"], np.maximum(r.records["error"], 0.5 / 500), color=f"C{j}",
                    label=f"seed {r.seed}: unseen-task error")
    ax.set(xlabel="Adam step", ylabel="error (evaluation batch, l_ts = 20)", title="training progress")
    ax.legend(fontsize=7)
    fig.suptitle(f"E7: {MODEL}, per-layer attention on same-pattern contexts (unseen tasks, l_ts = 20, α' = 0.8; "
                 f"{ctx.profile})", fontsize=10)
    fig.tight_layout()
    return ctx.save_figure(fig, "E7_deep")
