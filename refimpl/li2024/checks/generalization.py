"""Checks of the in-domain generalisation conditions of Theorem 3.3 (validation module
``generalization``): coverage of the training tasks (spec L13 b), iterations vs α (L13 c), the
shortest trainable l_tr and the test length vs α' (L13 d).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from refimpl.core.claims import Claim, verdict
from refimpl.core.stats import loglog_fit
from refimpl.core.trajectory import Trajectory
from refimpl.li2024.checks import paper as PAPER
from refimpl.li2024.checks._common import Fit, first_length_below, fmt
from refimpl.li2024.config import Config
from refimpl.li2024.data import all_tasks, coverage, prompt_rng, training_tasks
from refimpl.li2024.metrics import error_curve, measure

# --------------------------------------------------------------------------------------------
# L13 (b): a training-task set that breaks coverage generalises worse
# --------------------------------------------------------------------------------------------
L13B_MIN_EXCESS = 0.01  # the coverage-breaking T_tr's unseen-task error exceeds the covering one's by ≥ this


def coverage_variants(M1: int, shifts=(1, 2, 3)) -> dict:
    """Training-task sets of equal size (except 'minimal'): the default covering T_tr (spec L3 [C]);
    'minimal' = shifts (1,): each pattern once as + and once as − (|T_tr| = M1, so |T_tr| ≥ M1
    holds while Condition 3.2 |T_tr|/|T| ≥ (M1 − 1)^{-1/2} fails); 'never_minus': pattern 0 is
    never the − pattern (its tasks (a, 0) replaced by unseen tasks avoiding 0); 'absent': pattern 0
    in no training task."""
    default = [tuple(int(x) for x in t) for t in training_tasks(M1, shifts)]
    unseen = [tuple(int(x) for x in t) for t in all_tasks(M1) if tuple(t) not in default]
    never_minus = [t for t in default if t[1] != 0]
    never_minus += [t for t in unseen if 0 not in t][: len(default) - len(never_minus)]
    absent = [t for t in default if 0 not in t]
    absent += [t for t in unseen if 0 not in t and t not in absent][: len(default) - len(absent)]
    return {"covering": tuple(default), "minimal": tuple(tuple(t) for t in training_tasks(M1, (1,)).tolist()),
            "never_minus": tuple(never_minus), "absent": tuple(absent)}


def check_l13b_coverage(fit: Fit, base: Config, seeds: Sequence[int], n_test: int,
                        min_excess: float = L13B_MIN_EXCESS) -> Claim:
    """Spec L13 (b): a T_tr in which some pattern is never the − pattern generalises worse to the
    unseen tasks than the covering T_tr of the same size. Also reports 'absent' (a pattern in no
    training task) and 'minimal' (|T_tr| = M1, violating Condition 3.2 but not |T_tr| ≥ M1), so the
    report shows which of the two stated conditions the measurement supports."""
    d = base.data
    variants = coverage_variants(d.M1, d.train_shifts)
    out = {}
    for name, tt in variants.items():
        cfg = base.replace(data=dict(train_tasks=tt))
        errs, hinges = [], []
        for s in seeds:
            r = fit(cfg, s)
            m = measure(r.params, cfg, r.data, n_test, prompt_rng(s, 13, 2), tasks="unseen", l=d.l_test,
                        alpha=d.alpha_test)
            errs.append(m["error"])
            hinges.append(m["hinge"])
        plus, minus = coverage(np.array(tt), d.M1)
        out[name] = {"error": np.array(errs), "hinge": np.array(hinges), "size": len(tt),
                     "ratio": len(tt) / (d.M1 * (d.M1 - 1)), "plus": plus, "minus": minus}
    cond32 = (d.M1 - 1) ** -0.5
    excess = out["never_minus"]["error"] - out["covering"]["error"]
    ok = bool(np.all(excess >= min_excess))
    txt = "; ".join(f"{k} (|T_tr| = {v['size']}, ratio {v['ratio']:.2f}): error {fmt(v['error'])}, hinge "
                    f"{fmt(v['hinge'])}" for k, v in out.items())
    return Claim(
        id="L13b",
        claim="A training-task set that breaks coverage (pattern 0 never the − pattern) generalises worse",
        spec="spec L13 (b), L3 (Condition 3.2)",
        measured=f"unseen-task error at α' = {d.alpha_test}, l_ts = {d.l_test}, n = {n_test}, seeds {list(seeds)}: "
                 f"{txt}. Condition 3.2 needs ratio ≥ (M1 − 1)^(-1/2) = {cond32:.2f}; 'minimal' meets only |T_tr| ≥ M1",
        expected=f"error(never_minus) − error(covering) ≥ {min_excess:g} at every seed",
        verdict=verdict(ok),
        numbers={"variants": out,
                 "tasks": {k: [list(t) for t in v] for k, v in variants.items()}, "cond32_ratio": cond32},
    )


# --------------------------------------------------------------------------------------------
# L13 (c): iterations to a loss threshold scale as α^{-2/3}
# --------------------------------------------------------------------------------------------
L13C_THRESHOLD = 0.1  # training-task hinge loss (evaluation batch at the training α, l_tr) to reach
L13C_EXPONENT = -2 / 3  # Theorem 3.3: T = Θ(α^{-2/3})


def check_l13c_iterations_vs_alpha(fit: Fit, base: Config, alphas: Sequence[float], seeds: Sequence[int],
                                   threshold: float = L13C_THRESHOLD, max_steps: int = 4000,
                                   eval_every: int = 5, n_eval: int = 500) -> Claim:
    """Spec L13 (c): the number of SGD steps until the training-task hinge loss first falls to
    ``threshold`` (evaluated every ``eval_every`` steps on a fixed batch of ``n_eval`` prompts at the
    training α), fitted as a power of α over all (α, seed) points. Passes when the 95% interval of
    the log–log slope contains −2/3; the slope is reported whatever it is."""
    its = np.full((len(alphas), len(seeds)), np.nan)
    for i, a in enumerate(alphas):
        cfg = base.replace(data=dict(alpha=float(a)), train=dict(steps=max_steps, eval_every=eval_every, n_eval=n_eval))
        for j, s in enumerate(seeds):
            r = fit(cfg, s, stop_when=("train", "hinge", threshold))
            its[i, j] = np.nan if r.stopped_at is None else max(r.stopped_at, eval_every)
    A = np.repeat(np.asarray(alphas, float), len(seeds)).reshape(its.shape)
    ok_pts = np.isfinite(its)
    fitres = loglog_fit(A[ok_pts], its[ok_pts]) if ok_pts.sum() >= 3 else None
    lo, hi = fitres["ci"] if fitres else (np.nan, np.nan)
    inside = bool(fitres is not None and lo <= L13C_EXPONENT <= hi)
    means = np.array([np.mean(row[np.isfinite(row)]) if np.isfinite(row).any() else np.nan for row in its])
    return Claim(
        id="L13c",
        claim="Iterations to reach a loss threshold scale as α^(-2/3)",
        spec="spec L13 (c), Theorem 3.3",
        measured=(f"steps to training hinge ≤ {threshold:g}: " + ", ".join(f"α={a:g}: {m:.0f}" for a, m in zip(alphas, means))
                  + f" (mean over seeds {list(seeds)}; {int((~ok_pts).sum())} runs did not reach it in {max_steps} steps); "
                  + (f"log–log slope {fitres['slope']:.3f}, 95% CI [{lo:.3f}, {hi:.3f}], R² {fitres['r2']:.2f}"
                     if fitres else "no fit")),
        expected=f"the 95% interval of the slope contains {L13C_EXPONENT:.3f}",
        verdict=verdict(inside),
        numbers={"alphas": np.asarray(alphas), "seeds": list(seeds), "iterations": its, "fit": fitres,
                 "threshold": threshold, "expected_slope": L13C_EXPONENT},
        paper=PAPER.L13C_VALUE,
    )


# --------------------------------------------------------------------------------------------
# L13 (d): shortest trainable l_tr ∝ 1/α; test error small once l_ts ≳ 1/α'
# --------------------------------------------------------------------------------------------
L13D_TRAINED_ERROR = 0.02  # "trainable": unseen-task error (α' = 0.8, l_ts = 20, evaluation batch) reaches this
L13D_TEST_EPS = 0.05  # l*(α') = shortest l_ts from which the test error stays ≤ this
L13D_SLOPE_RANGE = (-1.5, -0.7)  # accepted log–log slope of l_min(α) and l*(α') against α (1/α ↔ −1)


def check_l13d_min_train_length(fit: Fit, base: Config, alphas: Sequence[float], lengths: Sequence[int],
                                seeds: Sequence[int], max_steps: int = 2000, n_eval: int = 1000) -> Claim:
    """Spec L13 (d), first half: the shortest training prompt length l_tr at which SGD succeeds
    within ``max_steps`` steps ("succeeds": the unseen-task evaluation error at α' = 0.8, l_ts = 20
    reaches ``L13D_TRAINED_ERROR``), scanned upwards over ``lengths``, for each α. Theorem 3.3 needs
    l_tr ≥ Ω(1/α): passes when the log–log slope of l_min against α is within ``L13D_SLOPE_RANGE``.
    The steps SGD needed at l_min are reported too."""
    lmin = np.full((len(alphas), len(seeds)), np.inf)
    steps = np.full_like(lmin, np.nan)
    for i, a in enumerate(alphas):
        for j, s in enumerate(seeds):
            for l in lengths:
                cfg = base.replace(data=dict(alpha=float(a), l_train=int(l)),
                                   train=dict(steps=max_steps, n_eval=n_eval, eval_every=25))
                r = fit(cfg, s, stop_when=("unseen", "error", L13D_TRAINED_ERROR))
                if r.stopped_at is not None:
                    lmin[i, j], steps[i, j] = l, r.stopped_at
                    break
    A = np.repeat(np.asarray(alphas, float), len(seeds)).reshape(lmin.shape)
    ok = np.isfinite(lmin)
    fitres = loglog_fit(A[ok], lmin[ok]) if ok.sum() >= 3 and np.ptp(lmin[ok]) > 0 else None
    slope = fitres["slope"] if fitres else 0.0  # a constant l_min has slope 0
    passed = bool(np.all(ok) and L13D_SLOPE_RANGE[0] <= slope <= L13D_SLOPE_RANGE[1])
    return Claim(
        id="L13d",
        claim="The shortest trainable training-prompt length l_tr scales as 1/α",
        spec="spec L13 (d), Theorem 3.3 (l_tr ≥ Ω(1/α))",
        measured=", ".join(f"α={a:g}: l_min {fmt(lmin[i], '.0f')} (steps {fmt(steps[i], '.0f')})" for i, a in enumerate(alphas))
                 + f"; log–log slope {slope:.2f}"
                 + (f" (95% CI [{fitres['ci'][0]:.2f}, {fitres['ci'][1]:.2f}])" if fitres else " (l_min constant)")
                 + f"; grid {list(lengths)}, ≤ {max_steps} steps",
        expected=f"slope of log l_min vs log α within {L13D_SLOPE_RANGE} (1/α ↔ −1), every run trainable within the grid",
        verdict=verdict(passed),
        numbers={"alphas": np.asarray(alphas), "lengths": list(lengths), "l_min": lmin, "steps": steps,
                 "fit": fitres, "slope": slope},
        paper=PAPER.L13D_TRAIN_VALUE,
    )


def check_l13d_test_length(runs: Sequence[Trajectory], alphas_test: Sequence[float], lengths: Sequence[int], n: int,
                           eps: float = L13D_TEST_EPS) -> Claim:
    """Spec L13 (d), second half: for trained models, the shortest test length l*(α') from which
    the unseen-task error (mean over ``runs``) stays ≤ ``eps``. Passes when l* is non-increasing in
    α' and the log–log slope of l* against α' is within ``L13D_SLOPE_RANGE`` (l_ts ≳ 1/α')."""
    curves = {float(a): [error_curve(r, lengths, n, tasks="unseen", alpha=float(a), key=31) for r in runs]
              for a in alphas_test}
    mean = {a: np.mean([c["error"] for c in cs], axis=0) for a, cs in curves.items()}
    lstar = np.array([first_length_below(lengths, mean[float(a)], eps) for a in alphas_test])
    a = np.asarray(alphas_test, float)
    order = np.argsort(a)
    mono = bool(np.all(lstar[order][1:] <= lstar[order][:-1]))  # inf-safe "non-increasing"
    fin = np.isfinite(lstar)
    fitres = loglog_fit(a[fin], lstar[fin]) if fin.sum() >= 3 and np.ptp(lstar[fin]) > 0 else None
    slope = fitres["slope"] if fitres else float("nan")
    passed = bool(mono and np.all(fin) and fitres is not None
                  and L13D_SLOPE_RANGE[0] <= slope <= L13D_SLOPE_RANGE[1])
    return Claim(
        id="L13d",
        claim="Test error is small once l_ts ≳ 1/α'",
        spec="spec L13 (d)",
        measured=", ".join(f"α'={x:g}: l* = {v:g} (1/α' = {1 / x:.2f})" for x, v in zip(a, lstar))
                 + f"; slope {slope:.2f}" + (f" (95% CI [{fitres['ci'][0]:.2f}, {fitres['ci'][1]:.2f}])" if fitres else "")
                 + f"; n = {n} prompts per point, seeds {[r.seed for r in runs]}",
        expected=f"l* = first l_ts from which error ≤ {eps:g}: non-increasing in α', slope vs α' within {L13D_SLOPE_RANGE}",
        verdict=verdict(passed),
        numbers={"alphas_test": a, "lengths": np.asarray(lengths), "l_star": lstar, "slope": slope, "fit": fitres,
                 "curves": {str(k): [c["error"] for c in v] for k, v in curves.items()}, "eps": eps},
        paper=PAPER.L13D_TEST_VALUE,
    )
