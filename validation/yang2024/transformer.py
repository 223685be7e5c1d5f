"""Spec Y Fig. 2(b) and Fig. 5 with the 4-layer reference transformer of spec T (``vaswani4``).

Fig. 2(b): Adam on minibatches from a pool of training prompts (λ ~ N(0, I)); the training loss
(1/2K) mean_b Σ_k (ŷ_k − y_k)² on a fixed subset of the pool, and the in-domain (λ ~ N(0, I)) and OOD
(λ ~ N(1, 4I)) inference losses (1/K)‖ŷ − ŷ*‖² against the ridge targets ŷ* of spec Y12 on 200 test
prompts each, vs iteration. Fig. 5: the same training for H ∈ {1, 2, 4, 8, 16, 32, 64} heads under a
fixed budget of training time per H; final training loss vs H, and the loss vs training time and vs
iteration, with the steps each H gets.

Fig. 5's budget is turned into steps once, so that its verdicts do not depend on the machine's
load: (1) the time of one training step (minibatch, forward, backward, Adam; BLAS pinned to one
thread) is measured for every H, interleaved across H (round r times one step of each H, the order
reversed every other round, after a warm-up round), as the median of ``timing_rounds`` steps of the
thread's CPU time (what the step computed, not what other processes took from it) — one cache
entry, run with nothing else on a Dask cluster; (2) H gets ``steps(H) = max(1,
floor(budget_s / ref_step_s · t(H_min) / t(H)))`` steps
(:func:`refimpl.yang2024.checks.fig5_step_budgets`): the training time that ``budget_s / ref_step_s``
steps of the smallest H take, shared out by the measured step-time ratios. ``ref_step_s`` is
H_min's step time on the reference machine (this project's 2-core machine, idle), so on that
machine each H trains for ``budget_s`` seconds; a uniformly faster or slower machine changes every
t(H) by the same factor and leaves the budgets unchanged, and CPU time keeps most of the load out; (3) each H trains for
exactly that many steps (deterministic, cached, and free to run beside other computations), and
Fig. 5(a)/(b) are judged on those runs. The measured step times, the budgets in seconds they imply
and the wall-clock time each run actually took are reported as info (row Fig5-clock).

The paper trained at N = 30, K = 200, d = 100, m = 20 with d_model = 256, d_ff = 512, batch 256,
Adam lr 1e−4, on a GPU. One step of that model costs ~10¹¹ flops here (measured: B = 8, T = 200
takes 0.8 s per step on one core, so B = 256 would take ~25 s), so every size is reduced [C]:

=========  ===============================================  ==============================================
profile    data (spec Y)                                    model / training
=========  ===============================================  ==============================================
quick      K = 40, N = 10, d = 20, m = 8, τ = 0.01          d_model 64, d_ff 128, H = 8 (Fig. 2(b)),
           2000 training prompts                            batch 32, Adam lr 1e−3, 200 steps;
                                                            Fig. 5: 5 s of training per H (100 steps of H = 1)
full       K = 60, N = 10, d = 30, m = 8, τ = 0.01          d_model 64, d_ff 128, H = 8, batch 32,
           10000 training prompts                           Adam lr 1e−3, 1200 steps;
                                                            Fig. 5: 100 s of training per H [P: 100 s]
                                                            (1250 steps of H = 1)
=========  ===============================================  ==============================================

Everything else is the ``vaswani4`` preset (4 layers, post-norm, ReLU, no mask, no positions,
per-position read-out, squared loss) with d_in = d + 1. lr 1e−3 instead of 1e−4 [C]: with ~10²–10³
steps instead of the paper's ~10⁴ the paper's step size barely moves the loss. d_model = 64 allows
H up to 64 (head size 1 at H = 64). The step budgets depend on the measured step-time ratios
only; the loss against iterations is reported beside the loss against (budgeted) time.
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
              "budget_s": 5.0, "ref_step_s": 0.05, "timing_rounds": 7, "eval_every_s": 1.0, "n_fig5_eval": 128,
              "seed": 0, "backend": "numba"},
    "full": {"ycfg": dict(K=60, N=10, d=30, m=8, tau=0.01), "n_train": 10000, "d_model": 64, "d_ff": 128, "H": 8,
             "batch": 32, "lr": 1e-3, "steps": 1200, "eval_every": 60, "Hs": (1, 2, 4, 8, 16, 32, 64),
             "budget_s": 100.0, "ref_step_s": 0.08, "timing_rounds": 7, "eval_every_s": 10.0,
             "n_fig5_eval": 128, "seed": 0, "backend": "numba"},
}
N_TEST = 200


def _tcfg(prof, ycfg, H):
    return preset("vaswani4", d_in=ycfg.d + 1, d_model=prof["d_model"], d_ff=prof["d_ff"], n_heads=H,
                  max_T=max(ycfg.K, 1))


def _setting(prof, ycfg, ctx) -> str:
    return (f"{ctx.profile} [C]: K={ycfg.K}, N={ycfg.N}, d={ycfg.d}, m={ycfg.m}, τ={ycfg.tau:g}; d_model "
            f"{prof['d_model']}, d_ff {prof['d_ff']}, batch {prof['batch']}, Adam lr {prof['lr']:g}, {prof['backend']} backend "
            f"(paper: K=200, N=30, d=100, m=20, d_model 256, d_ff 512, batch 256, lr 1e-4)")


def fig5_run(tcfg, data, prof, progress, steps: int, eval_every: int) -> Trajectory:
    """One Fig. 5 run: ``steps`` Adam steps (its budget), the training loss on the first
    ``n_fig5_eval`` pool prompts every ``eval_every`` steps and at the end (the Trajectory without
    its parameters). Deterministic: the same arguments give the same numbers on any machine."""
    from refimpl.transformer.model import init_params

    small = {**data, "train_eval": data["pool"][:prof["n_fig5_eval"]]}

    def ev(p):
        return {"train": yang_losses(p, tcfg, small, which=("train",))["train"]}

    params = init_params(tcfg, prof["seed"])
    res = train_adam(params, tcfg, yang_batch_fn(data, prof["batch"], prof["seed"] + 1), lr=prof["lr"],
                     steps=steps, eval_fn=ev, eval_every=eval_every, threads=1,
                     progress=progress, desc=f"Fig. 5 H={tcfg.n_heads}", seed=prof["seed"], backend=prof["backend"])
    return _strip(res)


def fig5_step_times(tcfgs: dict, data, prof) -> dict:
    """Seconds per training step of each H (``tcfgs``: {H: config}), measured interleaved: after a
    warm-up round, ``timing_rounds`` rounds each time one step of every H (order reversed every
    other round, so a drift in the machine's speed hits every H alike); the median per H. A step
    is what :func:`refimpl.transformer.train.train_adam` puts on its clock: minibatch, forward,
    backward, finiteness checks and the Adam update, BLAS on one thread (so all of it runs on this
    thread).

    ``step_s`` is the thread's CPU time per step (``time.thread_time``): the time the step computed,
    not the time other processes held the core, so a loaded machine measures nearly what an idle
    one does (the wall-clock time stretches by a load-dependent factor that is not even the same
    for short and long steps: at a load of ~7 on 2 cores it was 2× for H = 1 and the ratio of
    H = 64 to H = 1 differed from the CPU times'). ``wall_s`` is the wall-clock median, reported.
    Returns {"step_s": {H: median CPU s}, "wall_s": {H: median wall s}, "samples": {H: [CPU s]},
    "wall_samples": {H: [wall s]}, "rounds", "warmup", "clock"}."""
    import time

    from threadpoolctl import threadpool_limits

    from refimpl.core.errors import check_finite
    from refimpl.core.optim import Adam
    from refimpl.transformer.model import init_params, loss_and_grads

    Hs = sorted(tcfgs)
    state = {H: (init_params(tcfgs[H], prof["seed"]), Adam(prof["lr"]),
                 yang_batch_fn(data, prof["batch"], prof["seed"] + 1)) for H in Hs}
    warmup, rounds = 1, int(prof["timing_rounds"])
    cpu, wall = {H: [] for H in Hs}, {H: [] for H in Hs}
    with threadpool_limits(limits=1):
        for r in range(warmup + rounds):
            for H in (Hs if r % 2 == 0 else Hs[::-1]):
                params, opt, batch_fn = state[H]
                t0, c0 = time.perf_counter(), time.thread_time()
                batch = batch_fn(r)
                loss, grads = loss_and_grads(params, batch, tcfgs[H], prof["backend"], check=(r == 0))
                check_finite("loss", loss, step=r)
                check_finite("grads", grads, step=r)
                opt.step(params, grads)
                dc, dt = time.thread_time() - c0, time.perf_counter() - t0
                if r >= warmup:
                    cpu[H].append(dc)
                    wall[H].append(dt)
    return {"step_s": {H: float(np.median(cpu[H])) for H in Hs}, "wall_s": {H: float(np.median(wall[H])) for H in Hs},
            "samples": cpu, "wall_samples": wall, "rounds": rounds, "warmup": warmup, "clock": "thread CPU time"}


def run(ctx) -> list[Claim]:
    prof = PROFILE[ctx.profile]
    ycfg = Config(**prof["ycfg"])
    key = {k: v for k, v in prof.items() if k not in ("Hs", "budget_s", "eval_every_s", "n_fig5_eval")}
    data = make_yang_data(ycfg, prof["n_train"], N_TEST, prof["seed"])
    setting = _setting(prof, ycfg, ctx)

    main = ctx.cached("yang2024/transformer_fig2b", key, lambda: _strip(run_yang(
        _tcfg(prof, ycfg, prof["H"]), data, lr=prof["lr"], batch_size=prof["batch"], seed=prof["seed"],
        steps=prof["steps"], eval_every=prof["eval_every"], progress=ctx.progress, desc="Fig. 2(b)",
        backend=prof["backend"])))

    # Fig. 5 (module docstring): step times measured once (alone on a cluster), step budgets from
    # their ratios, then fixed-step runs; everything requested before anything is used
    tcfgs = {H: _tcfg(prof, ycfg, H) for H in prof["Hs"]}
    tkey = {k: v for k, v in prof.items() if k not in ("budget_s", "ref_step_s", "eval_every_s", "steps", "eval_every")}
    timing = ctx.cached("yang2024/transformer_fig5_step_times", tkey,
                        lambda: fig5_step_times(tcfgs, data, prof), exclusive=True)
    budgets = checks.fig5_step_budgets(timing["step_s"], prof["budget_s"], prof["ref_step_s"])
    runs = {}
    for H in prof["Hs"]:
        every = max(1, budgets[H] * prof["eval_every_s"] // prof["budget_s"])
        rkey = {**tkey, "H": H, "steps": budgets[H], "eval_every": int(every)}
        runs[H] = ctx.cached(f"yang2024/transformer_fig5_steps_H{H}", rkey,
                             lambda H=H, n=budgets[H], e=int(every): fig5_run(tcfgs[H], data, prof, ctx.progress, n, e))
    c2 = checks.check_fig2b(main, setting + f", H={prof['H']}, {prof['steps']} steps")
    c2.figure = fig2b(ctx, main, ycfg, prof)

    s5 = (setting + f", {prof['budget_s']:g} s of training per H at {1e3 * prof['ref_step_s']:g} ms per step of "
          f"H={min(prof['Hs'])} (paper: 100 s on its GPU)")
    claims5 = [checks.check_fig5_best_h(runs, s5), checks.check_fig5_steps(runs, s5, step_s=timing["step_s"]),
               checks.fig5_per_iteration(runs, s5), checks.fig5_clock(runs, timing, prof["budget_s"], prof["ref_step_s"])]
    f5 = fig5(ctx, runs, ycfg, prof, timing["step_s"])
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


def fig5(ctx, runs, ycfg, prof, step_s) -> str:
    Hs = sorted(runs)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    final = [runs[H].final("train") for H in Hs]
    ax.loglog(Hs, final, "o-", color="C0", label="final training loss")
    ax.set(xlabel="H (heads)", ylabel="final training loss", title=f"(a) after {prof['budget_s']:g} s of training")
    ax.set_xticks(Hs, [str(H) for H in Hs])
    ax2 = ax.twinx()
    ax2.bar(Hs, [runs[H].steps_done for H in Hs], width=np.array(Hs) * 0.3, color="grey", alpha=0.3,
            label="steps in the budget")
    ax2.set_ylabel("steps in the budget (bars)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8)
    # budgeted time: steps at H_min's reference step time, scaled by the measured step-time ratio
    scale = {H: prof["ref_step_s"] * step_s[H] / step_s[min(Hs)] for H in Hs}
    for k, H in enumerate(Hs):
        r = runs[H].records
        axes[1].semilogy(np.asarray(r["step"]) * scale[H], r["train"], color=f"C{k}",
                         label=f"H = {H} ({runs[H].steps_done} steps)")
        axes[2].semilogy(r["step"], r["train"], color=f"C{k}", label=f"H = {H}")
    axes[1].set(xlabel=f"training time (s): steps × step time, H={min(Hs)} at {1e3 * prof['ref_step_s']:g} ms, "
                       "others by measured ratio", ylabel="training loss", title="(b) loss vs time")
    axes[2].set(xlabel="Adam step", ylabel="training loss", title="(b') the same runs vs iterations")
    axes[1].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.suptitle(f"Fig. 5: 4-layer transformer, fixed training-time budget per H; K={ycfg.K}, N={ycfg.N}, d={ycfg.d}, "
                 f"m={ycfg.m}, d_model={prof['d_model']}, batch {prof['batch']}, lr {prof['lr']:g} ({ctx.profile})",
                 fontsize=10)
    fig.tight_layout()
    return ctx.save_figure(fig, "fig5_transformer")
