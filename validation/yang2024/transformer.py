"""Spec Y Fig. 2(b) and Fig. 5 with the 4-layer reference transformer of spec T (``vaswani4``).

Fig. 2(b): Adam on minibatches from a pool of training prompts (λ ~ N(0, I)); the training loss
(1/2K) mean_b Σ_k (ŷ_k − y_k)² on a fixed subset of the pool, and the in-domain (λ ~ N(0, I)) and OOD
(λ ~ N(1, 4I)) inference losses (1/K)‖ŷ − ŷ*‖² against the ridge targets ŷ* of spec Y12 on 200 test
prompts each, vs iteration. Fig. 5: the same training for H ∈ {1, 2, 4, 8, 16, 32, 64} heads under a
fixed budget of training time per H (evaluations off the clock, BLAS pinned to one thread); final
training loss vs H, and the loss vs training time and vs iteration, with the steps each H completed.

The paper trained at N = 30, K = 200, d = 100, m = 20 with d_model = 256, d_ff = 512, batch 256,
Adam lr 1e−4, on a GPU. One step of that model costs ~10¹¹ flops here (measured: B = 8, T = 200
takes 0.8 s per step on one core, so B = 256 would take ~25 s), so every size is reduced [C]:

=========  ===============================================  ==============================================
profile    data (spec Y)                                    model / training
=========  ===============================================  ==============================================
quick      K = 40, N = 10, d = 20, m = 8, τ = 0.01          d_model 64, d_ff 128, H = 8 (Fig. 2(b)),
           2000 training prompts                            batch 32, Adam lr 1e−3, 200 steps;
                                                            Fig. 5: 5 s of training per H
full       K = 60, N = 10, d = 30, m = 8, τ = 0.01          d_model 64, d_ff 128, H = 8, batch 32,
           10000 training prompts                           Adam lr 1e−3, 1200 steps;
                                                            Fig. 5: 100 s of training per H [P: 100 s]
=========  ===============================================  ==============================================

Everything else is the ``vaswani4`` preset (4 layers, post-norm, ReLU, no mask, no positions,
per-position read-out, squared loss) with d_in = d + 1. lr 1e−3 instead of 1e−4 [C]: with ~10²–10³
steps instead of the paper's ~10⁴ the paper's step size barely moves the loss. d_model = 64 allows
H up to 64 (head size 1 at H = 64). Wall-clock results depend on the machine and its load: the
steps completed per H and the loss against iterations are reported beside the loss against time.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim
from refimpl.core.trajectory import Trajectory
from refimpl.experiments.yang_deep import make_yang_data, run_yang, yang_batch_fn, yang_losses
from refimpl.transformer.config import preset
from refimpl.transformer.train import train_adam
from refimpl.yang2024 import checks
from refimpl.yang2024.config import Config

ORDER = 25
PROFILE = {
    "quick": {"ycfg": dict(K=40, N=10, d=20, m=8, tau=0.01), "n_train": 2000, "d_model": 64, "d_ff": 128, "H": 8,
              "batch": 32, "lr": 1e-3, "steps": 200, "eval_every": 25, "Hs": (1, 2, 4, 8, 16, 32, 64),
              "budget_s": 5.0, "eval_every_s": 1.0, "n_fig5_eval": 128, "seed": 0},
    "full": {"ycfg": dict(K=60, N=10, d=30, m=8, tau=0.01), "n_train": 10000, "d_model": 64, "d_ff": 128, "H": 8,
             "batch": 32, "lr": 1e-3, "steps": 1200, "eval_every": 60, "Hs": (1, 2, 4, 8, 16, 32, 64),
             "budget_s": 100.0, "eval_every_s": 10.0, "n_fig5_eval": 128, "seed": 0},
}
N_TEST = 200


def _tcfg(prof, ycfg, H):
    return preset("vaswani4", d_in=ycfg.d + 1, d_model=prof["d_model"], d_ff=prof["d_ff"], n_heads=H,
                  max_T=max(ycfg.K, 1))


def _setting(prof, ycfg, ctx) -> str:
    return (f"{ctx.profile} [C]: K={ycfg.K}, N={ycfg.N}, d={ycfg.d}, m={ycfg.m}, τ={ycfg.tau:g}; d_model "
            f"{prof['d_model']}, d_ff {prof['d_ff']}, batch {prof['batch']}, Adam lr {prof['lr']:g} "
            f"(paper: K=200, N=30, d=100, m=20, d_model 256, d_ff 512, batch 256, lr 1e-4)")


def fig5_run(tcfg, data, prof, progress) -> Trajectory:
    """One Fig. 5 budget run: training loss only, on the first ``n_fig5_eval`` pool prompts (the
    Trajectory without its parameters)."""
    from refimpl.transformer.model import init_params

    small = {**data, "train_eval": data["pool"][:prof["n_fig5_eval"]]}

    def ev(p):
        return {"train": yang_losses(p, tcfg, small, which=("train",))["train"]}

    params = init_params(tcfg, prof["seed"])
    res = train_adam(params, tcfg, yang_batch_fn(data, prof["batch"], prof["seed"] + 1), lr=prof["lr"],
                     budget_s=prof["budget_s"], eval_fn=ev, eval_every_s=prof["eval_every_s"], threads=1,
                     progress=progress, desc=f"Fig. 5 H={tcfg.n_heads}", seed=prof["seed"])
    return _strip(res)


def run(ctx) -> list[Claim]:
    prof = PROFILE[ctx.profile]
    ycfg = Config(**prof["ycfg"])
    key = {k: v for k, v in prof.items() if k not in ("Hs", "budget_s", "eval_every_s", "n_fig5_eval")}
    data = make_yang_data(ycfg, prof["n_train"], N_TEST, prof["seed"])
    setting = _setting(prof, ycfg, ctx)

    main = ctx.cached("yang2024/transformer_fig2b", key, lambda: _strip(run_yang(
        _tcfg(prof, ycfg, prof["H"]), data, lr=prof["lr"], batch_size=prof["batch"], seed=prof["seed"],
        steps=prof["steps"], eval_every=prof["eval_every"], progress=ctx.progress, desc="Fig. 2(b)")))
    c2 = checks.check_fig2b(main, setting + f", H={prof['H']}, {prof['steps']} steps")
    c2.figure = fig2b(ctx, main, ycfg, prof)

    runs = {}
    for H in prof["Hs"]:
        runs[H] = ctx.cached(f"yang2024/transformer_fig5_H{H}", {**prof, "H": H},
                             lambda H=H: fig5_run(_tcfg(prof, ycfg, H), data, prof, ctx.progress), exclusive=True)
    s5 = setting + f", {prof['budget_s']:g} s of training per H (paper: 100 s on its GPU)"
    claims5 = [checks.check_fig5_best_h(runs, s5), checks.check_fig5_steps(runs, s5), checks.fig5_per_iteration(runs, s5)]
    f5 = fig5(ctx, runs, ycfg, prof)
    for c in claims5:
        c.figure = f5
    return [c2, *claims5]


def _strip(res: Trajectory) -> Trajectory:
    """The run without its parameters (what the cache keeps)."""
    res.params = {}
    return res


def fig2b(ctx, r, ycfg, prof) -> str:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    rec = r.records
    ax.semilogy(rec["step"], rec["train"], label="training loss (1/2K)Σ(ŷ − y)² (fixed pool subset)")
    ax.semilogy(rec["step"], rec["in"], label="in-domain (1/K)‖ŷ − ŷ*‖²")
    ax.semilogy(rec["step"], rec["ood"], label="OOD λ ~ N(1, 4I)")
    ax.set(xlabel="Adam step", ylabel="loss",
           title=f"Fig. 2(b): 4-layer transformer, H={prof['H']}, d_model={prof['d_model']}, N={ycfg.N}, K={ycfg.K}, "
                 f"d={ycfg.d}, m={ycfg.m} ({ctx.profile})")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    return ctx.save_figure(fig, "fig2b_transformer")


def fig5(ctx, runs, ycfg, prof) -> str:
    Hs = sorted(runs)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    final = [runs[H].final("train") for H in Hs]
    ax.loglog(Hs, final, "o-", color="C0", label="final training loss")
    ax.set(xlabel="H (heads)", ylabel="final training loss", title=f"(a) after {prof['budget_s']:g} s of training")
    ax.set_xticks(Hs, [str(H) for H in Hs])
    ax2 = ax.twinx()
    ax2.bar(Hs, [runs[H].steps_done for H in Hs], width=np.array(Hs) * 0.3, color="grey", alpha=0.3,
            label="steps completed")
    ax2.set_ylabel("steps completed (bars)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8)
    for k, H in enumerate(Hs):
        r = runs[H].records
        axes[1].semilogy(r["time"], r["train"], color=f"C{k}", label=f"H = {H} ({runs[H].steps_done} steps)")
        axes[2].semilogy(r["step"], r["train"], color=f"C{k}", label=f"H = {H}")
    axes[1].set(xlabel="training time (s, evaluations excluded; 1 BLAS thread)", ylabel="training loss",
                title="(b) loss vs time")
    axes[2].set(xlabel="Adam step", ylabel="training loss", title="(b') the same runs vs iterations")
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.suptitle(f"Fig. 5: 4-layer transformer, fixed training-time budget per H; K={ycfg.K}, N={ycfg.N}, d={ycfg.d}, "
                 f"m={ycfg.m}, d_model={prof['d_model']}, batch {prof['batch']}, lr {prof['lr']:g} ({ctx.profile})",
                 fontsize=10)
    fig.tight_layout()
    return ctx.save_figure(fig, "fig5_transformer")
