"""Checks of the pruning theorem (validation module ``pruning``): spec L15 (i)–(iv) and figures
E4, E5.

Pruning (spec L9; the masks and their evaluation are model-side, ``refimpl.li2024.pruning``):
removing a set S of rows ("neurons") of the trained W_O gives F(Ψ_S; P) = Σ_{i∉S} a_i
Relu(W_{O,(i)} v). Magnitude pruning removes the rows of smallest ℓ2 norm [C: row norm], random
pruning a uniform random set of the same size. Every comparison between masks is paired: all
masks of one measurement are evaluated on the same test prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from refimpl.core.claims import Claim, verdict
from refimpl.core.stats import residual_slope
from refimpl.core.trajectory import Trajectory
from refimpl.li2024.checks import paper as PAPER
from refimpl.li2024.checks._common import Fit, fmt
from refimpl.li2024.config import Config
from refimpl.li2024.data import prompt_rng
from refimpl.li2024.pruning import (
    evaluate_masks,
    init_row_scale,
    largest_keep,
    magnitude_keep,
    mask_contrast,
    random_keep,
    rate_to_count,
    row_norms,
)

# --------------------------------------------------------------------------------------------
# the measurements behind L15 (ii)–(iv), E4 and E5 (one trained model)
# --------------------------------------------------------------------------------------------
L15I_SMALL_FACTOR = 2.0  # a row is "small" when ‖W_O,(i)‖ < 2 ξ√m_a: W_O⁰ rows have norm ≈ ξ√m_a ± ξ/√2
# (at m = 100 the largest initial row is ≈ 1.3 ξ√m_a), so 2× separates rows still at the initial scale
E4_RATES = tuple(round(0.02 * i, 2) for i in range(21))  # E4 x-axis: 0–40% of the rows, step 2%
E5_RATES = tuple(round(0.02 * i, 2) for i in range(31))  # E5 x-axis: 0–60% (past E4's range, to see the breakdown)
L15III_R = (0.1, 0.2, 0.3, 0.4, 0.5)  # fractions R of the LARGE rows pruned in (iii)
PRUNE_SETTINGS = {  # name -> (tasks, α'); l = l_ts. L15 (ii)–(iv) run in both; E4 is "ood"
    "ood": ("ood", 0.6),  # the paper's pruning setting (E4): OOD tasks T', α' = 0.6
    "unseen": ("unseen", 0.6),  # in-domain unseen tasks T \ T_tr at the same α'
}
E5_ALPHAS = (0.6, 0.8, 1.0)  # α' of E5 (OOD tasks); 0.6 is the E4 measurement itself


def small_rows(params, cfg: Config, factor: float = L15I_SMALL_FACTOR) -> np.ndarray:
    """Boolean (m,): rows of W_O with norm < ``factor`` · ξ√m_a (spec L15 (i) "small")."""
    return row_norms(params) < factor * init_row_scale(cfg)


def _prune_mask_rng(*key: int) -> np.random.Generator:
    """The generator of the random pruning masks of one measurement."""
    return np.random.default_rng([9_000_051, *key])


def measure_pruning_setting(run: Trajectory, n: int, *, tasks: str, alpha: float, l: int | None = None,
                            mag_rates: Sequence[float] = E5_RATES, rand_rates: Sequence[float] = E4_RATES[1:],
                            n_random: int = 10, large_R: Sequence[float] = L15III_R, key: int = 0) -> dict:
    """Magnitude, random and large-row pruning of one trained model on ``n`` prompts of one setting.

    Masks, all evaluated on the same prompts (paired): unpruned; all small rows (:func:`small_rows`);
    magnitude pruning at each of ``mag_rates`` (fraction of all m rows); ``n_random`` uniform random
    masks at each of ``rand_rates``; for each R in ``large_R``, ``n_random`` masks removing a uniform
    random R-fraction of the large rows and one removing the largest R-fraction."""
    cfg, params = run.config, run.params
    l = cfg.data.l_test if l is None else l
    norms = row_norms(params)
    m = len(norms)
    small = small_rows(params, cfg)
    large = np.flatnonzero(~small)
    mrng = _prune_mask_rng(run.seed, key)
    keeps = [np.ones(m), (~small).astype(float)]
    k_mag = [rate_to_count(r, m) for r in mag_rates]
    keeps += [magnitude_keep(norms, k) for k in k_mag]
    k_rand = [rate_to_count(r, m) for r in rand_rates]
    keeps += [random_keep(m, k, mrng) for k in k_rand for _ in range(n_random)]
    k_large = [int(round(R * len(large))) for R in large_R]
    keeps += [random_keep(m, k, mrng, among=large) for k in k_large for _ in range(n_random)]
    keeps += [largest_keep(norms, k, among=large) for k in k_large]
    ev = evaluate_masks(params, cfg, run.data, np.array(keeps), n, prompt_rng(run.seed, 50, key), tasks=tasks,
                        l=l, alpha=alpha)
    K = len(keeps)
    i_mag = 2 + np.arange(len(k_mag))
    i_rand = (2 + len(k_mag) + np.arange(len(k_rand) * n_random)).reshape(len(k_rand), n_random)
    i_lr = (i_rand.size + 2 + len(k_mag) + np.arange(len(k_large) * n_random)).reshape(len(k_large), n_random)
    i_ll = K - len(k_large) + np.arange(len(k_large))

    def diff(idx_a, idx_b, metric):  # mean of metric over masks idx_a minus mean over idx_b, with paired SE
        c = np.zeros(K)
        c[np.atleast_1d(idx_a)] += 1.0 / np.size(idx_a)
        c[np.atleast_1d(idx_b)] -= 1.0 / np.size(idx_b)
        return mask_contrast(ev, metric, c)

    h, e = ev["hinge"], ev["error"]

    def mean_each(x, idx):  # (len, n_random) -> mean over the random masks (empty-safe)
        return x[idx].mean(axis=1) if idx.size else np.zeros(len(idx))

    d_small, d_small_se = diff(1, 0, "hinge")
    mag_of = [np.flatnonzero(np.array(k_mag) == k) for k in k_rand]  # magnitude mask of the same size
    rand_vs_mag = [diff(i_rand[j], 2 + mi[0], "hinge") if len(mi) else (np.nan, np.nan)
                   for j, mi in enumerate(mag_of)]
    large_d = [diff(i_lr[j], 0, "hinge") for j in range(len(k_large))]
    return {
        "seed": run.seed, "tasks": tasks, "alpha": alpha, "l": l, "n": n, "m": m, "n_random": n_random,
        "n_small": int(small.sum()), "n_large": int(len(large)),
        "unpruned": {"hinge": float(h[0]), "error": float(e[0])},
        "small": {"hinge": float(h[1]), "error": float(e[1]), "d_hinge": d_small,
                  "d_hinge_se": d_small_se, "d_error": float(e[1] - e[0])},
        "magnitude": {"rate": np.array(mag_rates), "k": np.array(k_mag), "hinge": h[i_mag], "error": e[i_mag]},
        "random": {"rate": np.array(rand_rates), "k": np.array(k_rand), "hinge": mean_each(h, i_rand),
                   "error": mean_each(e, i_rand), "hinge_each": h[i_rand], "error_each": e[i_rand],
                   "diff_hinge": np.array([d[0] for d in rand_vs_mag]),
                   "diff_hinge_se": np.array([d[1] for d in rand_vs_mag])},
        "large": {"R": np.array(large_R), "k": np.array(k_large),
                  "hinge_random": mean_each(h, i_lr), "error_random": mean_each(e, i_lr),
                  "hinge_largest": h[i_ll], "error_largest": e[i_ll],
                  "d_hinge_random": np.array([d[0] for d in large_d]),
                  "d_hinge_random_se": np.array([d[1] for d in large_d]),
                  "d_hinge_largest": h[i_ll] - h[0]},
    }


def measure_pruning(run: Trajectory, n: int, n_random: int = 10) -> dict:
    """Everything L15 (i)–(iv), E4 and E5 need from one trained model: row norms, the small-row
    mask, and :func:`measure_pruning_setting` for each of ``PRUNE_SETTINGS`` and for OOD prompts at
    each α' of ``E5_ALPHAS`` (α' = 0.6 is the "ood" setting itself)."""
    cfg = run.config
    out = {"seed": run.seed, "norms": row_norms(run.params), "small": small_rows(run.params, cfg),
           "init_scale": init_row_scale(cfg), "threshold": L15I_SMALL_FACTOR * init_row_scale(cfg),
           "a": np.asarray(run.params["a"]).copy(), "settings": {}, "e5": {}}
    for key, (name, (tasks, alpha)) in enumerate(PRUNE_SETTINGS.items()):
        out["settings"][name] = measure_pruning_setting(run, n, tasks=tasks, alpha=alpha, n_random=n_random, key=key)
    for j, alpha in enumerate(E5_ALPHAS):
        if PRUNE_SETTINGS["ood"] == ("ood", alpha):
            out["e5"][alpha] = out["settings"]["ood"]
        else:
            out["e5"][alpha] = measure_pruning_setting(run, n, tasks="ood", alpha=alpha, rand_rates=(),
                                                       large_R=(), n_random=0, key=10 + j)
    return out


# --------------------------------------------------------------------------------------------
# L15 (i): bimodal row norms of W_O
# --------------------------------------------------------------------------------------------
L15I_FRACTION = (0.05, 0.50)  # the fraction of small rows must lie in this interval ("a constant fraction")
L15I_RATIO = 3.0  # median large-row norm ≥ 3 × median small-row norm (two separated groups)
L15I_INIT_BAND = (0.5, 1.5)  # "near initialisation": median small-row norm within this factor of ξ√m_a
SPEC_NORMS_REF = {"small_fraction": (0.15, 0.20), "small_norm": 0.07, "large_norm": (0.25, 0.35)}  # spec L11 prototype


def check_l15i_bimodal(meas: Sequence[dict], fraction=L15I_FRACTION, ratio: float = L15I_RATIO,
                       init_band=L15I_INIT_BAND) -> Claim:
    """Spec L15 (i): after training, a constant fraction of the W_O rows is large and the rest small,
    near the initial scale. ``meas``: one :func:`measure_pruning` result per seed.

    Passes when, at every seed, the fraction of small rows (norm < 2 ξ√m_a) is in ``fraction``, the
    median large norm is ≥ ``ratio`` × the median small norm and the median small norm is within
    ``init_band`` × ξ√m_a."""
    seeds = [d["seed"] for d in meas]
    frac = np.array([d["small"].mean() for d in meas])
    med_s = np.array([np.median(d["norms"][d["small"]]) if d["small"].any() else np.nan for d in meas])
    med_l = np.array([np.median(d["norms"][~d["small"]]) if (~d["small"]).any() else np.nan for d in meas])
    scale = meas[0]["init_scale"]
    gaps, below = [], []
    for d in meas:  # the largest gap between consecutive sorted norms, and how many rows lie below it
        s = np.sort(d["norms"])
        g = np.diff(s)
        gaps.append(float(g.max()))
        below.append(int(np.argmax(g)) + 1)
    with np.errstate(invalid="ignore"):
        ok = (np.all((frac >= fraction[0]) & (frac <= fraction[1])) and np.all(med_l >= ratio * med_s)
              and np.all((med_s >= init_band[0] * scale) & (med_s <= init_band[1] * scale)))
    ref = SPEC_NORMS_REF
    return Claim(
        id="L15i",
        claim="After training, a constant fraction of the W_O rows is large and the rest stay small, "
              "near initialisation",
        spec="spec L15 (i), L11 prototype, E4 bars",
        measured=f"small rows (‖W_O,(i)‖ < {L15I_SMALL_FACTOR:g} ξ√m_a = {meas[0]['threshold']:.3f}): "
                 f"{fmt(frac, '.0%')} of m = {len(meas[0]['norms'])} (seeds {seeds}); median norm small "
                 f"{fmt(med_s, '.3f')} (ξ√m_a = {scale:.3f}), large {fmt(med_l, '.3f')}, ratio "
                 f"{fmt(med_l / med_s, '.1f')}; largest gap in the sorted norms {fmt(gaps, '.3f')} with "
                 f"{below} rows below it",
        expected=f"small fraction in [{fraction[0]:.0%}, {fraction[1]:.0%}], median large ≥ {ratio:g} × median "
                 f"small, median small in [{init_band[0]:g}, {init_band[1]:g}] × ξ√m_a, at every seed "
                 f"(spec prototype: {ref['small_fraction'][0]:.0%}–{ref['small_fraction'][1]:.0%} near "
                 f"{ref['small_norm']}, the rest {ref['large_norm'][0]}–{ref['large_norm'][1]})",
        verdict=verdict(bool(ok)),
        numbers={"seeds": seeds, "norms": [d["norms"] for d in meas], "small": [d["small"] for d in meas],
                 "small_fraction": frac, "median_small": med_s, "median_large": med_l, "init_scale": scale,
                 "threshold": meas[0]["threshold"], "largest_gap": gaps, "rows_below_gap": below,
                 "spec_ref": ref},
        paper=PAPER.L15I_VALUE,
    )


# --------------------------------------------------------------------------------------------
# L15 (ii): pruning all small rows costs O(ε)
# --------------------------------------------------------------------------------------------
L15II_REL = 0.1  # "O(ε)": removing the small rows may raise the hinge (and the error) by at most 10% of
L15II_ABS = 1e-4  # the unpruned value plus 1e-4 (2 prompts in 20 000: the resolution of the estimate)


def _l15ii_ok(d0: float, base: float, rel: float, abs_: float) -> bool:
    return bool(d0 <= rel * base + abs_)


def _prune_setting_label(s: dict) -> str:
    name = "OOD tasks T'" if s["tasks"] == "ood" else "unseen tasks T \\ T_tr"
    return f"{name}, α' = {s['alpha']:g}, l_ts = {s['l']}"


def check_l15ii_small_rows(meas: Sequence[dict], setting: str, rel: float = L15II_REL,
                           abs_: float = L15II_ABS) -> Claim:
    """Spec L15 (ii): pruning all small rows leaves the error O(ε): the hinge loss and the error
    increase by at most ``rel`` × their unpruned value + ``abs_`` (every seed)."""
    S = [d["settings"][setting] for d in meas]
    h0 = np.array([s["unpruned"]["hinge"] for s in S])
    e0 = np.array([s["unpruned"]["error"] for s in S])
    dh = np.array([s["small"]["d_hinge"] for s in S])
    dh_se = np.array([s["small"]["d_hinge_se"] for s in S])
    de = np.array([s["small"]["d_error"] for s in S])
    ns = [s["n_small"] for s in S]
    ok = all(_l15ii_ok(a, b, rel, abs_) for a, b in zip(dh, h0)) and \
        all(_l15ii_ok(a, b, rel, abs_) for a, b in zip(de, e0))
    return Claim(
        id="L15ii",
        claim=f"Pruning all small rows of W_O leaves the error O(ε) ({_prune_setting_label(S[0])})",
        spec="spec L15 (ii), L9",
        measured=f"{ns} small rows pruned (seeds {[d['seed'] for d in meas]}; n = {S[0]['n']} prompts): hinge "
                 f"{fmt(h0, '.4f')} → Δ {fmt(dh, '.1e')} (paired SE {fmt(dh_se, '.0e')}); error {fmt(e0, '.4f')} → "
                 f"Δ {fmt(de, '.1e')}",
        expected=f"Δhinge ≤ {rel:g} · hinge + {abs_:g} and Δerror ≤ {rel:g} · error + {abs_:g} at every seed "
                 f"(O(ε): a fraction of the unpruned value, plus the estimate's resolution)",
        verdict=verdict(ok),
        numbers={"setting": setting, "seeds": [d["seed"] for d in meas], "n_small": ns, "hinge_unpruned": h0,
                 "error_unpruned": e0, "d_hinge": dh, "d_hinge_se": dh_se, "d_error": de,
                 "rel": rel, "abs": abs_},
        paper=PAPER.L15II_OOD_VALUE if setting == "ood" else None,
    )


# --------------------------------------------------------------------------------------------
# L15 (ii): which of M1^{-1/2}, M2^{-1/2} the residual after pruning tracks
# --------------------------------------------------------------------------------------------
L15M_M1 = (4, 6, 8, 10)  # M1 sweep at M2 = 24 (T_tr shifts (1, 3) at M1 = 4, where (1, 2, 3) is all of T)
L15M_M2 = (12, 24, 48)  # M2 sweep at M1 = 6
L15M_SETTING = ("unseen", 0.6)  # residual measured on unseen in-domain tasks (OOD needs α' = 1 at M1 = 4)
L15M_TRACK_TOL = 0.25  # a log–log slope within ±0.25 of −1/2 counts as "tracks M^{-1/2}"


def m_sweep_config(base: Config, M1: int, M2: int) -> Config:
    """``base`` with M1 IDR and M2 IDI patterns: d_X = M1 + M2 (as in the default 6 + 24 = 30),
    T_tr shifts (1, 2, 3) ((1, 3) at M1 = 4, where (1, 2, 3) would leave no unseen task),
    M1' = min(3, M1 // 2) (α'_test = 1 when M1' = 2: config rule, not used by the measurement).
    At (M1, M2) = (6, 24) this is the default preset itself, so the trained run is shared."""
    shifts = (1, 3) if M1 == 4 else (1, 2, 3)
    mo = min(base.data.M1_ood, M1 // 2)
    data = dict(M1=M1, M2=M2, d_x=M1 + M2, train_shifts=shifts, M1_ood=mo)
    if mo == 2:
        data["alpha_test"] = 1.0
    return base.replace(data=data)


def measure_m_point(run: Trajectory, n: int, setting=L15M_SETTING) -> dict:
    """Hinge and error before/after pruning all small rows, for one run of the M sweep."""
    cfg = run.config
    small = small_rows(run.params, cfg)
    keeps = np.array([np.ones(len(small)), (~small).astype(float)])
    ev = evaluate_masks(run.params, cfg, run.data, keeps, n, prompt_rng(run.seed, 60), tasks=setting[0],
                        alpha=setting[1], l=cfg.data.l_test)
    return {"M1": cfg.data.M1, "M2": cfg.data.M2, "seed": run.seed, "n_small": int(small.sum()),
            "m": len(small), "hinge": float(ev["hinge"][0]), "hinge_pruned": float(ev["hinge"][1]),
            "error": float(ev["error"][0]), "error_pruned": float(ev["error"][1]),
            "d_hinge": float(ev["hinge"][1] - ev["hinge"][0]), "n": n, "tasks": setting[0],
            "alpha": setting[1], "l": cfg.data.l_test}


def measure_m_sweep(fit: Fit, base: Config, seeds: Sequence[int], n: int, M1s=L15M_M1, M2s=L15M_M2,
                    M1_fixed: int = 6, M2_fixed: int = 24) -> list[dict]:
    """Train at each (M1, M2_fixed) and (M1_fixed, M2) and measure :func:`measure_m_point`."""
    pts = [(M1, M2_fixed) for M1 in M1s] + [(M1_fixed, M2) for M2 in M2s if (M1_fixed, M2) not in
                                              [(M1, M2_fixed) for M1 in M1s]]
    return [measure_m_point(fit(m_sweep_config(base, M1, M2), s), n) for M1, M2 in pts for s in seeds]



def check_l15ii_which_m(points: Sequence[dict], M1_fixed: int = 6, M2_fixed: int = 24,
                        rel: float = L15II_REL, abs_: float = L15II_ABS, track_tol: float = L15M_TRACK_TOL) -> Claim:
    """Spec L15 (ii) "measure which": the log–log slope of the residual hinge after pruning the small
    rows against M1 (M2 fixed) and against M2 (M1 fixed). The residual "tracks" an M when its slope
    is within ``track_tol`` of −1/2; if both do, the closer one is named, if neither, "neither".
    Verdict "info" (the spec asks to measure which, not to test), with the O(ε) bound of
    :func:`check_l15ii_small_rows` counted over the sweep."""
    p1 = [p for p in points if p["M2"] == M2_fixed]
    p2 = [p for p in points if p["M1"] == M1_fixed]
    s1 = residual_slope([p["M1"] for p in p1], [p["hinge_pruned"] for p in p1])
    s2 = residual_slope([p["M2"] for p in p2], [p["hinge_pruned"] for p in p2])

    def per_m(ps, key):
        ms = sorted({p[key] for p in ps})
        return ms, [float(np.mean([p["hinge_pruned"] for p in ps if p[key] == mm])) for mm in ms]

    m1s, r1 = per_m(p1, "M1")
    m2s, r2 = per_m(p2, "M2")
    dist = {"M1": abs(s1 + 0.5), "M2": abs(s2 + 0.5)}  # nan (too few points) never tracks
    tracks = [k for k, v in sorted(dist.items(), key=lambda kv: kv[1]) if v <= track_tol]
    closer = tracks[0] if tracks else "neither"
    n_ok = sum(_l15ii_ok(p["d_hinge"], p["hinge"], rel, abs_) for p in points)
    max_d = max(p["d_hinge"] for p in points)
    return Claim(
        id="L15ii",
        claim="Which of M1^{-1/2}, M2^{-1/2} the error left after pruning the small rows tracks",
        spec="spec L15 (ii), §8 open choice",
        measured=f"residual hinge ({_prune_setting_label(points[0])}) "
                 f"vs M1 = {m1s} (M2 = {M2_fixed}): {fmt(r1, '.2e')}, slope {s1:+.2f}; vs M2 = {m2s} "
                 f"(M1 = {M1_fixed}): {fmt(r2, '.2e')}, slope {s2:+.2f}; tracks M^(−1/2): {closer}; "
                 f"pruning cost within the (ii) bound at {n_ok}/{len(points)} runs (max Δhinge {max_d:.1e})",
        expected=f"measured and reported (no test): an M is tracked when its slope is within ±{track_tol:g} of −1/2",
        verdict="info",
        numbers={"points": list(points), "slope_M1": s1, "slope_M2": s2, "M1": m1s, "residual_M1": r1,
                 "M2": m2s, "residual_M2": r2, "closer": closer, "n_within_bound": n_ok},
        paper=PAPER.L15II_M_VALUE,
    )


# --------------------------------------------------------------------------------------------
# L15 (iii): pruning a fraction R of the large rows raises the loss by Ω(R)
# --------------------------------------------------------------------------------------------
L15III_MIN_SLOPE = 0.01  # Ω(R) constant: Δhinge(R) ≥ 0.01 R, i.e. pruning 10% of the large rows costs ≥ 1e-3


def check_l15iii_large_rows(meas: Sequence[dict], setting: str, min_slope: float = L15III_MIN_SLOPE) -> Claim:
    """Spec L15 (iii): removing a uniformly random fraction R of the LARGE rows (mean over the random
    masks, paired prompts) raises the hinge loss by Ω(R): Δhinge(R) strictly increases along R and
    Δhinge(R)/R ≥ ``min_slope`` at every R, at every seed. Removing the largest R-fraction first is
    reported beside it."""
    S = [d["settings"][setting] for d in meas]
    R = S[0]["large"]["R"]
    d_r = np.array([s["large"]["d_hinge_random"] for s in S])  # (seeds, len R)
    d_se = np.array([s["large"]["d_hinge_random_se"] for s in S])
    d_l = np.array([s["large"]["d_hinge_largest"] for s in S])
    de = np.array([s["large"]["error_random"] - s["unpruned"]["error"] for s in S])
    slope = d_r / R[None, :]
    ok = bool(np.all(np.diff(d_r, axis=1) > 0) and np.all(slope >= min_slope))
    return Claim(
        id="L15iii",
        claim=f"Pruning a fraction R of the large rows raises the loss by Ω(R) ({_prune_setting_label(S[0])})",
        spec="spec L15 (iii), L10",
        measured=f"R = {fmt(R, '.1f')} of the {[s['n_large'] for s in S]} large rows, random (mean of "
                 f"{S[0]['n_random']} masks): Δhinge = " + "; ".join(fmt(x, '.1e') for x in d_r)
                 + f" (seeds {[d['seed'] for d in meas]}); min Δhinge/R = {fmt(slope.min(axis=1), '.3f')}; "
                 f"largest-first: " + "; ".join(fmt(x, '.1e') for x in d_l)
                 + "; Δerror (random) " + "; ".join(fmt(x, '.1e') for x in de),
        expected=f"Δhinge(R) strictly increasing in R and Δhinge(R)/R ≥ {min_slope:g} at every R and seed",
        verdict=verdict(ok),
        numbers={"setting": setting, "seeds": [d["seed"] for d in meas], "R": R, "d_hinge_random": d_r,
                 "d_hinge_random_se": d_se, "d_hinge_largest": d_l, "d_error_random": de,
                 "hinge_unpruned": np.array([s["unpruned"]["hinge"] for s in S]), "min_slope": min_slope},
    )


# --------------------------------------------------------------------------------------------
# L15 (iv): magnitude pruning beats random pruning at every rate
# --------------------------------------------------------------------------------------------
L15IV_RATES = (0.1, 0.2, 0.3, 0.4)  # pruning rates (fraction of all m rows) compared


def check_l15iv_magnitude_vs_random(meas: Sequence[dict], setting: str, rates=L15IV_RATES) -> Claim:
    """Spec L15: at every rate in ``rates``, the hinge loss after magnitude pruning is ≤ the mean
    hinge loss over the random masks of the same size (same prompts), at every seed."""
    S = [d["settings"][setting] for d in meas]
    ri = [int(np.argmin(np.abs(S[0]["random"]["rate"] - r))) for r in rates]
    mi = [int(np.argmin(np.abs(S[0]["magnitude"]["rate"] - r))) for r in rates]
    hm = np.array([s["magnitude"]["hinge"][mi] for s in S])  # (seeds, rates)
    hr = np.array([s["random"]["hinge"][ri] for s in S])
    em = np.array([s["magnitude"]["error"][mi] for s in S])
    er = np.array([s["random"]["error"][ri] for s in S])
    diff = np.array([s["random"]["diff_hinge"][ri] for s in S])
    se = np.array([s["random"]["diff_hinge_se"][ri] for s in S])
    ok = bool(np.all(hm <= hr))
    return Claim(
        id="L15iv",
        claim=f"Magnitude pruning beats random pruning at every rate ({_prune_setting_label(S[0])})",
        spec="spec L15, L9",
        measured=f"rates {fmt(rates, '.0%')}: hinge magnitude " + "; ".join(fmt(x, '.4f') for x in hm)
                 + " vs random " + "; ".join(fmt(x, '.4f') for x in hr)
                 + f" (seeds {[d['seed'] for d in meas]}, {S[0]['n_random']} random masks); paired difference / SE "
                 + "; ".join(fmt(x, '.0f') for x in diff / np.where(se > 0, se, np.inf))
                 + "; error magnitude " + "; ".join(fmt(x, '.4f') for x in em)
                 + " vs random " + "; ".join(fmt(x, '.4f') for x in er),
        expected=f"hinge(magnitude) ≤ mean hinge(random) at every rate in {fmt(rates, '.0%')} and every seed "
                 "(the classification error is reported, not tested)",
        verdict=verdict(ok),
        numbers={"setting": setting, "seeds": [d["seed"] for d in meas], "rates": np.array(rates),
                 "hinge_magnitude": hm, "hinge_random": hr, "error_magnitude": em, "error_random": er,
                 "diff_hinge": diff, "diff_hinge_se": se,
                 "curve": {"rates_magnitude": S[0]["magnitude"]["rate"],
                           "hinge_magnitude": np.array([s["magnitude"]["hinge"] for s in S]),
                           "rates_random": S[0]["random"]["rate"],
                           "hinge_random": np.array([s["random"]["hinge"] for s in S]),
                           "hinge_unpruned": np.array([s["unpruned"]["hinge"] for s in S]),
                           "small_fraction": np.array([s["n_small"] / s["m"] for s in S])}},
        paper=PAPER.L15IV_OOD_VALUE if setting == "ood" else None,
    )


# --------------------------------------------------------------------------------------------
# E4: magnitude vs random pruning, OOD α' = 0.6
# --------------------------------------------------------------------------------------------
E4_RANDOM_FROM = 0.1  # random pruning must be worse than magnitude pruning at every grid rate ≥ 10%
PAPER_E4 = PAPER.E4_CURVES  # spec L §6 E4, classification error read off the authors' plot (rate, error)


def check_e4(meas: Sequence[dict], setting: str = "ood", rel: float = L15II_REL, abs_: float = L15II_ABS,
             random_from: float = E4_RANDOM_FROM) -> Claim:
    """Spec E4: magnitude pruning stays within the unpruned loss up to the small-row fraction (hinge
    and error change by ≤ ``rel`` × unpruned + ``abs_`` at every grid rate that prunes no more rows
    than there are small rows), while random pruning has a larger hinge loss than magnitude pruning
    at every grid rate ≥ ``random_from``; at every seed."""
    S = [d["settings"][setting] for d in meas]
    rates_m = S[0]["magnitude"]["rate"]
    sel = rates_m <= max(E4_RATES) + 1e-9
    ok_flat, ok_rand, flat_upto = [], [], []
    for s in S:
        km = s["magnitude"]["k"]
        within = km <= s["n_small"]
        dh = s["magnitude"]["hinge"] - s["unpruned"]["hinge"]
        de = s["magnitude"]["error"] - s["unpruned"]["error"]
        ok_flat.append(bool(np.all(dh[within] <= rel * s["unpruned"]["hinge"] + abs_)
                            and np.all(de[within] <= rel * s["unpruned"]["error"] + abs_)))
        flat_upto.append(float(rates_m[within].max()))
        rr = s["random"]["rate"] >= random_from - 1e-9
        ok_rand.append(bool(np.all(s["random"]["diff_hinge"][rr] > 0)))
    hm = np.array([s["magnitude"]["hinge"][sel] for s in S])
    em = np.array([s["magnitude"]["error"][sel] for s in S])
    e0 = np.array([s["unpruned"]["error"] for s in S])
    i40m = int(np.argmin(np.abs(rates_m - 0.4)))
    rates_r = S[0]["random"]["rate"]
    i10, i40 = int(np.argmin(np.abs(rates_r - 0.1))), int(np.argmin(np.abs(rates_r - 0.4)))
    hr = np.array([s["random"]["hinge"] for s in S])
    er = np.array([s["random"]["error"] for s in S])
    return Claim(
        id="E4",
        claim=f"Magnitude vs random pruning of W_O ({_prune_setting_label(S[0])}): magnitude pruning is free up to "
              f"the small-row fraction, random pruning costs at once",
        spec="spec E4, L15",
        measured=f"seeds {[d['seed'] for d in meas]}, n = {S[0]['n']}: unpruned error {fmt(e0, '.4f')}, hinge "
                 f"{fmt([s['unpruned']['hinge'] for s in S], '.4f')}; magnitude flat (within bound) up to "
                 f"{fmt(flat_upto, '.0%')} (small rows {fmt([s['n_small'] / s['m'] for s in S], '.0%')}): "
                 f"{ok_flat}; random − magnitude hinge > 0 at every rate ≥ {random_from:.0%}: {ok_rand}. "
                 f"At 40%: hinge magnitude {fmt(hm[:, i40m], '.4f')}, random {fmt(hr[:, i40], '.4f')}; error "
                 f"magnitude {fmt(em[:, i40m], '.4f')}, random at 10% {fmt(er[:, i10], '.4f')}, at 40% "
                 f"{fmt(er[:, i40], '.4f')} (paper: unpruned 7e-3, magnitude 3e-2 and random 1.1e-2 / 4.5e-2 "
                 f"at 10% / 40%)",
        expected=f"magnitude pruning: Δhinge, Δerror ≤ {rel:g} · unpruned + {abs_:g} at every rate ≤ the small-row "
                 f"fraction; random: mean hinge > magnitude hinge at every rate ≥ {random_from:.0%} (same prompts); "
                 f"every seed",
        verdict=verdict(all(ok_flat) and all(ok_rand)),
        numbers={"setting": setting, "seeds": [d["seed"] for d in meas], "n": S[0]["n"],
                 "rates_magnitude": rates_m[sel], "hinge_magnitude": hm, "error_magnitude": em,
                 "rates_random": rates_r, "hinge_random": hr, "error_random": er,
                 "hinge_unpruned": np.array([s["unpruned"]["hinge"] for s in S]), "error_unpruned": e0,
                 "diff_hinge": np.array([s["random"]["diff_hinge"] for s in S]),
                 "diff_hinge_se": np.array([s["random"]["diff_hinge_se"] for s in S]),
                 "small_fraction": np.array([s["n_small"] / s["m"] for s in S]),
                 "norms": [d["norms"] for d in meas], "threshold": meas[0]["threshold"],
                 "flat_ok": ok_flat, "random_ok": ok_rand, "paper": PAPER_E4},
        paper=PAPER.E4_VALUE if setting == "ood" else None,
    )


# --------------------------------------------------------------------------------------------
# E5: magnitude pruning at α' ∈ {0.6, 0.8, 1.0}
# --------------------------------------------------------------------------------------------
E5_TOL = 1e-4  # slack on the Δhinge ordering (the resolution of the estimate: 2 prompts in 20 000)


def _e5_first_exceed(rates, values, level) -> float:
    """The first rate at which ``values`` exceeds ``level`` (inf when it never does)."""
    over = np.flatnonzero(np.asarray(values) > level)
    return float(rates[over[0]]) if len(over) else float("inf")


def check_e5(meas: Sequence[dict], tol: float = E5_TOL) -> Claim:
    """Spec E5: larger α' tolerates more magnitude pruning (OOD prompts). "Tolerates more" is read in
    absolute terms: at every pruning rate the hinge loss and its increase over the unpruned model are
    non-increasing in α' (the increase up to ``tol``), so for any fixed loss budget the largest
    admissible pruning rate is non-decreasing in α'. The relative view (the rate at which the hinge
    reaches 2× its own unpruned value) is reported beside it."""
    alphas = sorted(meas[0]["e5"])
    rates = meas[0]["e5"][alphas[0]]["magnitude"]["rate"]
    H = np.array([[d["e5"][a]["magnitude"]["hinge"] for a in alphas] for d in meas])  # (seeds, α', rates)
    E = np.array([[d["e5"][a]["magnitude"]["error"] for a in alphas] for d in meas])
    H0 = np.array([[d["e5"][a]["unpruned"]["hinge"] for a in alphas] for d in meas])  # (seeds, α')
    D = H - H0[:, :, None]
    ok = bool(np.all(np.diff(H, axis=1) <= 0) and np.all(np.diff(D, axis=1) <= tol))
    r2x = np.array([[_e5_first_exceed(rates, H[i, j], 2 * H0[i, j]) for j in range(len(alphas))]
                    for i in range(len(meas))])
    i40 = int(np.argmin(np.abs(rates - 0.4)))
    imax = len(rates) - 1
    return Claim(
        id="E5",
        claim="Magnitude pruning at α' ∈ {" + ", ".join(f"{a:g}" for a in alphas) + "} (OOD): larger α' tolerates "
              "more pruning",
        spec="spec E5, L15",
        measured=f"seeds {[d['seed'] for d in meas]}: unpruned hinge per α' " + "; ".join(fmt(x, '.4f') for x in H0)
                 + "; Δhinge at 40% " + "; ".join(fmt(x, '.4f') for x in D[:, :, i40])
                 + f", at {rates[imax]:.0%} " + "; ".join(fmt(x, '.4f') for x in D[:, :, imax])
                 + "; relative view, first rate with hinge > 2× unpruned: "
                 + "; ".join(fmt(x, '.0%') for x in r2x),
        expected=f"at every rate 0–{rates[imax]:.0%} and seed: hinge and Δhinge (up to {tol:g}) non-increasing in α'",
        verdict=verdict(ok),
        numbers={"seeds": [d["seed"] for d in meas], "alphas": alphas, "rates": rates, "hinge": H, "error": E,
                 "hinge_unpruned": H0, "d_hinge": D, "rate_2x": r2x, "small_fraction":
                 np.array([d["small"].mean() for d in meas])},
    )
