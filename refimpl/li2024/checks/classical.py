"""Check of figure E3 (validation module ``classical``): in-context learning vs classical learners
fitted on each prompt's context (spec L §6 E3).

For every test prompt, each classical learner (``refimpl.li2024.classical``) is fitted on that
prompt's l context pairs (x_i = feature block of context column i, label y_i = ±1) and predicts
the query's label from x_query; the trained one-layer model (spec L7) predicts sign F(Ψ; P) from
the whole prompt. All learners see the same prompts, so their errors are compared prompt by
prompt (paired).

Sampling [C]. The errors to resolve are ~1e−3 while one scikit-learn fit costs ~0.5 ms, so plain
Monte Carlo would need hundreds of thousands of fits. Nearly every error happens on the few prompts
where no or one context example shares the query's relevant pattern (ICL errs only there at
l = 20), and the number k of such context examples is known exactly for every prompt: k ~
Binomial(l, α'/2) (spec L4: each context example has the query's pattern with probability α'/2,
independently). We therefore use stratified sampling: prompts are drawn from the data model
(``sample_batch``) in chunks, binned into strata by k ({0}, {1}, {2}, {≥ 3}, rare strata merged
with their neighbour), the first ``n_per_stratum`` prompts of each stratum are kept, and every
learner's error is estimated as Σ_h W_h · (error rate in stratum h) with the exact binomial
weights W_h (``refimpl.core.stats.stratified_rate``). This is unbiased, and it spends the fits
where the errors are. The ICL error on all generated candidates (plain Monte Carlo, cheap) is
reported beside it as a cross-check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from refimpl.core.claims import Claim, verdict
from refimpl.core.stats import binomial_strata, mean_of_independent, stratified_rate
from refimpl.core.trajectory import Trajectory
from refimpl.li2024.checks import paper as PAPER
from refimpl.li2024.checks._common import fmt
from refimpl.li2024.classical import LEARNERS, classical_errors
from refimpl.li2024.data import Instance, prompt_rng, sample_batch
from refimpl.li2024.metrics import margins
from refimpl.li2024.model import forward

# --------------------------------------------------------------------------------------------
# E3: the learners compared and the design of the measurement
# --------------------------------------------------------------------------------------------
E3_CLASSICAL = LEARNERS  # ("logistic", "svm_gauss", "svm_linear", "1nn", "3nn"): refimpl.li2024.classical
E3_LABELS = {"icl": "ICL (trained one-layer model)", "logistic": "logistic regression",
             "svm_gauss": "SVM, Gaussian kernel", "svm_linear": "SVM, linear kernel",
             "1nn": "1-NN", "3nn": "3-NN"}
E3_STRATA_SPLIT = 3  # strata by k = # contexts sharing the query's pattern: {0}, {1}, {2}, {≥ 3} [C]
E3_MIN_EXPECTED = 50  # a stratum expected to get fewer candidates than this is merged upward [C]
E3_RNG_TAG = 3003  # key of the E3 prompt streams in prompt_rng (distinct from other measurements)

# spec L §6 E3, values read off the paper's plot at l = 20 (a learner not listed: not given):
E3_PAPER_L20 = PAPER.E3_AT_20  # {α': {learner: error}} (refimpl.li2024.checks.paper)
E3_PAPER_NOTE = PAPER.E3_NOTE


# --------------------------------------------------------------------------------------------
# E3: stratified measurement of every learner on the same prompts
# --------------------------------------------------------------------------------------------
def stratum_groups(l: int, alpha: float, n_candidates: int, split: int = E3_STRATA_SPLIT,
                   min_expected: float = E3_MIN_EXPECTED) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Strata over k = # contexts sharing the query's relevant pattern, k ~ Binomial(l, α'/2)
    (spec L4), and their exact probabilities: ``refimpl.core.stats.binomial_strata`` with the E3
    design ({0}, {1}, {2}, {≥ 3}; a stratum expected to get fewer than ``min_expected`` of
    ``n_candidates`` prompts is merged upward). Returns ([(k_lo, k_hi)], weights (H,))."""
    return binomial_strata(l, alpha / 2, n_candidates, split, min_expected)


def measure_e3_cell(run: Trajectory, l: int, alpha: float, n_candidates: int, n_per_stratum: int,
                    rng, chunk: int = 5_000, names: Sequence[str] = E3_CLASSICAL) -> dict:
    """E3 at one (l, α') for one trained model: every learner's error on the same stratified prompts
    of the unseen tasks T \\ T_tr (see the module docstring).

    Draws chunks of prompts until every stratum holds ``n_per_stratum`` prompts or
    ``n_candidates`` prompts were drawn. Returns the per-prompt errors ``err[name]`` (n,) bool over
    the kept prompts, their ``stratum`` (n,), the strata and weights, the ICL error on all drawn
    candidates (plain Monte Carlo: ``icl_plain``, ``n_drawn``) and the candidates' k histogram."""
    inst: Instance = run.data
    d_x = inst.cfg.d_x
    groups, weights = stratum_groups(l, alpha, n_candidates)
    of_k = np.zeros(l + 1, dtype=np.int64)  # stratum index of each k
    for h, (lo, hi) in enumerate(groups):
        of_k[lo : hi + 1] = h
    H = len(groups)
    kept = {key: [] for key in ("X", "xq", "y", "z", "icl", "stratum")}
    filled = np.zeros(H, dtype=np.int64)
    k_hist = np.zeros(l + 1, dtype=np.int64)
    drawn, icl_errors = 0, 0
    while drawn < n_candidates and np.any(filled < n_per_stratum):
        b = min(chunk, n_candidates - drawn)
        batch = sample_batch(inst, b, rng, tasks="unseen", l=l, alpha=alpha)
        F, _ = forward(run.params, batch, run.config)
        icl = margins(F, batch["z"]) <= 0  # (b,)  spec L10: error = z·F ≤ 0
        k = np.sum(batch["pattern"][:, :l] == batch["pattern"][:, l:], axis=1)  # (b,)
        k_hist += np.bincount(k, minlength=l + 1)
        drawn += b
        icl_errors += int(icl.sum())
        h_of = of_k[k]  # (b,)
        for h in range(H):
            idx = np.flatnonzero(h_of == h)[: n_per_stratum - filled[h]]
            if idx.size == 0:
                continue
            filled[h] += idx.size
            kept["X"].append(batch["P"][idx, :d_x, :l].transpose(0, 2, 1))  # (n_h, l, d_x)
            kept["xq"].append(batch["P"][idx, :d_x, l])  # (n_h, d_x)
            kept["y"].append(batch["y"][idx])  # (n_h, l)
            kept["z"].append(batch["z"][idx])  # (n_h,)
            kept["icl"].append(icl[idx])
            kept["stratum"].append(np.full(idx.size, h))
    S = {key: np.concatenate(v) for key, v in kept.items()}
    err = {"icl": S["icl"]}
    err.update(classical_errors(S["X"], S["y"], S["xq"], S["z"], names))
    return {"l": l, "alpha": alpha, "groups": groups, "weights": weights, "stratum": S["stratum"],
            "n_per_stratum": np.bincount(S["stratum"], minlength=H), "err": err,
            "icl_plain": icl_errors / drawn, "n_drawn": drawn, "k_hist": k_hist}


def measure_e3(run: Trajectory, grid: Sequence[tuple], names: Sequence[str] = E3_CLASSICAL) -> list[dict]:
    """``measure_e3_cell`` for each (l, α', n_candidates, n_per_stratum) of ``grid``; each cell
    draws its prompts from its own stream ``prompt_rng(seed, E3_RNG_TAG, 1000·α', l)``."""
    return [measure_e3_cell(run, l, a, nc, ns, prompt_rng(run.seed, E3_RNG_TAG, round(1000 * a), l), names=names)
            for (l, a, nc, ns) in grid]


def summarize_e3(cell: dict) -> dict:
    """Stratified error ± SE of every learner in a cell, and the paired differences ICL − c."""
    w, st = cell["weights"], cell["stratum"]
    names = list(cell["err"])
    out = {"error": {}, "error_se": {}, "diff": {}, "diff_se": {}}
    for name in names:
        out["error"][name], out["error_se"][name] = stratified_rate(cell["err"][name], st, w)
    icl = cell["err"]["icl"].astype(np.int64)
    for name in (n for n in names if n != "icl"):
        d = icl - cell["err"][name].astype(np.int64)  # (n,) −1/0/+1: paired per prompt
        out["diff"][name], out["diff_se"][name] = stratified_rate(d, st, w)
    return out


# --------------------------------------------------------------------------------------------
# E3 check: ICL is the best (or tied-best) learner at l = 20
# --------------------------------------------------------------------------------------------
E3_CHECK_L = 20  # spec E3: the comparison is read at l = 20
E3_CHECK_ALPHA = 0.6  # spec E3: "at α' = 0.6 ICL is clearly best"; α' = 0.8 is reported
E3_Z = 2.0  # tied-best tolerance: ICL − c ≤ E3_Z · SE(ICL − c), one-sided ≈ 2.3% per learner


def check_e3_icl_vs_classical(cells_by_seed: Sequence[Sequence[dict]], seeds: Sequence[int],
                              alpha: float = E3_CHECK_ALPHA, l: int = E3_CHECK_L, z_tol: float = E3_Z,
                              judged: bool = True) -> Claim:
    """Spec L §6 E3: the trained model's in-context error vs classical learners fitted on each
    prompt's l context pairs (logistic regression, SVM Gaussian / linear, 1-NN, 3-NN; sklearn
    defaults [C], see :func:`classical_learners`), unseen tasks T \\ T_tr.

    Test (at ``alpha``, ``l``): ICL is the best or tied-best learner — for every classical learner
    c the paired, stratified estimate of err(ICL) − err(c), averaged over the seeds, is
    ≤ ``z_tol`` standard errors (ICL not significantly worse than any of them). ``judged=False``
    reports the same numbers with verdict "info". ``numbers`` hold the whole (seed, α', l) grid for
    figure E3 (``error``/``error_se`` of shape (S, A, L, learners)) and the paper's values."""
    alphas = sorted({c["alpha"] for c in cells_by_seed[0]}, reverse=True)
    ls = sorted({c["l"] for c in cells_by_seed[0]})
    classical = [n for n in cells_by_seed[0][0]["err"] if n != "icl"]
    learners = ["icl"] + classical
    S, A, L, K = len(cells_by_seed), len(alphas), len(ls), len(learners)
    error = np.full((S, A, L, K), np.nan)
    error_se = np.full((S, A, L, K), np.nan)
    icl_plain = np.full((S, A, L), np.nan)
    n_prompts = np.zeros((S, A, L), dtype=np.int64)
    n_drawn = np.zeros((S, A, L), dtype=np.int64)
    diff = np.zeros((S, len(classical)))
    diff_se = np.zeros((S, len(classical)))
    found = np.zeros(S, dtype=bool)
    for s, cells in enumerate(cells_by_seed):
        for c in cells:
            i, j = alphas.index(c["alpha"]), ls.index(c["l"])
            summ = summarize_e3(c)
            error[s, i, j] = [summ["error"][n] for n in learners]
            error_se[s, i, j] = [summ["error_se"][n] for n in learners]
            icl_plain[s, i, j] = c["icl_plain"]
            n_prompts[s, i, j] = len(c["stratum"])
            n_drawn[s, i, j] = c["n_drawn"]
            if math.isclose(c["alpha"], alpha) and c["l"] == l:
                diff[s] = [summ["diff"][n] for n in classical]
                diff_se[s] = [summ["diff_se"][n] for n in classical]
                found[s] = True
    if not np.all(found):
        raise ValueError(f"the measurements hold no cell at α' = {alpha}, l = {l} for every seed")
    ia, il = alphas.index(next(a for a in alphas if math.isclose(a, alpha))), ls.index(l)
    # pooled over seeds: the mean of independent per-seed estimates
    d_pool, se_pool = mean_of_independent(diff, diff_se)  # (C,) each
    z = np.array([d / s if s > 0 else (0.0 if d == 0 else math.copysign(math.inf, d))  # (C,)
                  for d, s in zip(d_pool, se_pool)])
    ok = bool(np.all(d_pool <= z_tol * se_pool))
    err_at, se_at = mean_of_independent(error[:, ia, il], error_se[:, ia, il])  # (K,) mean over seeds
    best = classical[int(np.argmin(err_at[1:]))]
    order = sorted(range(K), key=lambda k: err_at[k])
    by = ", ".join(f"{learners[k]} {err_at[k]:.2e}±{se_at[k]:.0e}" for k in order)
    worse = [c for c, dd, ss in zip(classical, d_pool, se_pool) if dd > z_tol * ss]
    better = [c for c, dd, ss in zip(classical, d_pool, se_pool) if dd < -z_tol * ss]
    a_key = next((a for a in E3_PAPER_L20 if math.isclose(a, alpha)), None)
    paper = E3_PAPER_NOTE.get(a_key) or ", ".join(f"{k} ≈ {v:.1e}" for k, v in E3_PAPER_L20.get(a_key, {}).items())
    return Claim(
        id="E3",
        claim=f"In-context learning beats classical learners fitted on the prompt's context "
              f"(α' = {alpha}, l = {l}, unseen tasks)",
        spec="spec L §6 E3",
        measured=f"error at l = {l}, best first (stratified estimate ± SE, mean of seeds {list(seeds)}; "
                 f"{int(n_prompts[:, ia, il].sum())} prompts shared by all learners): {by}. "
                 f"ICL − {best} = {d_pool[classical.index(best)]:+.2e} (z = {z[classical.index(best)]:+.1f}); "
                 f"ICL on all {int(n_drawn[:, ia, il].sum())} drawn prompts (plain MC): "
                 f"{fmt(icl_plain[:, ia, il])}. ICL significantly better than: {', '.join(better) or 'none'}; "
                 f"significantly worse than: {', '.join(worse) or 'none'}",
        expected=f"ICL best or tied-best: for every classical learner c, err(ICL) − err(c) ≤ {z_tol:g} SE "
                 f"(paired per prompt, stratified by the number of same-pattern contexts, pooled over seeds); "
                 f"paper: {paper or 'not given'}" + ("" if judged else " — reported without a verdict"),
        verdict=verdict(ok) if judged else "info",
        numbers={
            "seeds": list(seeds), "alphas": alphas, "ls": ls, "learners": learners,
            "labels": [E3_LABELS.get(n, n) for n in learners],
            "error": error, "error_se": error_se, "icl_plain": icl_plain,
            "n_prompts": n_prompts, "n_drawn": n_drawn,
            "p_no_same_pattern": np.array([[(1 - a / 2) ** ll for ll in ls] for a in alphas]),
            "check": {"alpha": alpha, "l": l, "z_tol": z_tol, "classical": classical,
                      "diff": d_pool, "diff_se": se_pool, "z": z, "diff_per_seed": diff,
                      "diff_se_per_seed": diff_se, "error": err_at, "error_se": se_at, "pass": ok},
            "paper_l20": {str(a): v for a, v in E3_PAPER_L20.items()},
        },
        paper=PAPER.E3_VALUE.get(a_key),
    )
