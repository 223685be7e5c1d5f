"""Checks of the mechanism of the one-layer model (validation module ``mechanism``): spec L16
(Proposition 1), L17 (Proposition 2) and figure E6.

Measurements over training read the parameter snapshots of a run trained with
``snapshot_every=k`` (``Trajectory.snapshots``, {step: Ψ}); every snapshot is measured on the same
fixed prompts, so the curves are not blurred by resampling. Prompt streams: ``prompt_rng(seed, 160,
0)`` unseen-task prompts and ``prompt_rng(seed, 160, 1)`` OOD prompts for the trajectories,
``prompt_rng(seed, 170)`` for the L17 ablations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from refimpl.core.claims import Claim, verdict
from refimpl.core.stats import paired_difference
from refimpl.core.trajectory import Trajectory
from refimpl.li2024.checks import paper as PAPER
from refimpl.li2024.checks._common import fmt
from refimpl.li2024.checks.training import L16_FINAL_ATTN
from refimpl.li2024.data import Instance, prompt_rng, sample_batch
from refimpl.li2024.metrics import margins
from refimpl.li2024.model import forward


# --------------------------------------------------------------------------------------------
# shared measurements: attention split, W_Q/W_K pattern components, W_O W_V row geometry
# --------------------------------------------------------------------------------------------
def attention_split(attn: np.ndarray, pattern: np.ndarray, task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt, the attention mass on "same" and on "other" context columns (spec L16).

    "same": the column's relevant pattern is the query's. "other": the column's pattern is neither
    of the task's two patterns (so neither the query's pattern nor the task's other pattern); these
    columns carry coin-flip labels. attn (B, J ≥ l), pattern (B, l+1), task (B, 2) → two (B,) arrays.
    Under uniform attention their expected values are α'/2 and 1 − α'."""
    l = pattern.shape[1] - 1
    ctx = pattern[:, :l]  # (B, l)
    same = ctx == pattern[:, l:]  # (B, l)
    other = (ctx != task[:, :1]) & (ctx != task[:, 1:])  # (B, l)
    return np.sum(attn[:, :l] * same, axis=1), np.sum(attn[:, :l] * other, axis=1)


def qk_pattern_components(params: dict, batch: dict, mu: np.ndarray) -> dict:
    """‖W_Q p_q‖, ‖W_K p_i‖ and their components along the relevant pattern (spec L16), means over
    the prompts of ``batch`` (and over the l context columns for the keys).

    Definition of the pattern component: W_Q and W_K map R^d into R^{m_b}; their identity-like
    initialisation W⁰ = δ[I_{d_X} 0; 0 0] (spec L8) identifies the first d_X output coordinates with
    the feature coordinates of the input. The component of u = W_Q p_q along the query's pattern
    µ_j is ⟨u_{1:d_X}, µ_j⟩ / ‖µ_j‖ (the scalar projection of the feature block of u onto µ_j / β);
    for a key W_K p_i it is taken along the pattern of column i. At initialisation it equals δβ.
    ``mu`` (M, d_x) holds the patterns indexed by ``batch["pattern"]`` (IDR, or ODR for OOD prompts).
    Needs m_b ≥ d_X."""
    W_Q, W_K = params["W_Q"], params["W_K"]
    d_x = mu.shape[1]
    if W_Q.shape[0] < d_x:
        raise ValueError(f"the pattern component needs m_b ≥ d_x = {d_x} (output coordinates 1..d_x), "
                         f"got m_b = {W_Q.shape[0]}")
    P, pat = batch["P"], batch["pattern"]
    l = P.shape[2] - 1
    e = mu / np.linalg.norm(mu, axis=1, keepdims=True)  # (M, d_x) unit pattern directions
    u = P[:, :, l] @ W_Q.T  # (B, m_b)     spec L7: u = W_Q p_q
    k = W_K @ P[:, :, :l]  # (B, m_b, l)  W_K p_i for every context column
    u_pat = np.sum(u[:, :d_x] * e[pat[:, l]], axis=1)  # (B,)   ⟨u_{1:d_X}, µ_j/β⟩
    k_pat = np.sum(k[:, :d_x, :] * e[pat[:, :l]].transpose(0, 2, 1), axis=1)  # (B, l)
    return {"q_norm": float(np.mean(np.linalg.norm(u, axis=1))), "q_pattern": float(np.mean(u_pat)),
            "k_norm": float(np.mean(np.linalg.norm(k, axis=1))), "k_pattern": float(np.mean(k_pat))}


def _mech_angle(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle (rad, in [0, π]) between each row of X and v; π/2 for a zero row (no direction)."""
    nx = np.linalg.norm(X, axis=1) * np.linalg.norm(v)  # (n,)
    dots = X @ v  # (n,)
    cos = np.divide(dots, nx, out=np.zeros_like(dots), where=nx > 0)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def wowv_row_geometry(params: dict, inst: Instance) -> dict:
    """Per neuron i, the geometry of row i of W_O W_V (m, d) (spec L17): ``feature_angle`` between its
    feature block (first d_X entries) and µ̄ = mean_j µ_j, ``label_angle`` between its label block
    (last d_Y entries) and q, ``feature_norm``, ``label_norm``, and ``wo_norm`` = ‖W_O,(i)‖ (the
    pruning magnitude of spec L9). All (m,) arrays."""
    d_x = inst.cfg.d_x
    R = params["W_O"] @ params["W_V"]  # (m, d)  rows of W_O W_V
    mu_bar = inst.mu.mean(axis=0)  # (d_x,)
    return {
        "feature_angle": _mech_angle(R[:, :d_x], mu_bar), "label_angle": _mech_angle(R[:, d_x:], inst.q),
        "feature_norm": np.linalg.norm(R[:, :d_x], axis=1), "label_norm": np.linalg.norm(R[:, d_x:], axis=1),
        "wo_norm": np.linalg.norm(params["W_O"], axis=1),
    }


L17_LARGE_FACTOR = 2.5  # a row of W_O is "large" when ‖W_O,(i)‖ > 2.5 ξ √m_a; ξ √m_a ≈ its norm at
#                         initialisation (spec L8). Default preset: threshold 0.158; trained rows are
#                         bimodal, ≈0.05–0.08 (near init) and 0.22–0.35, with a few in between.


def l17_large_rows(params: dict, cfg, factor: float = L17_LARGE_FACTOR) -> np.ndarray:
    """Boolean (m,) mask of the large rows of W_O: ‖W_O,(i)‖ > ``factor`` · ξ √m_a (spec L15, L17)."""
    return np.linalg.norm(params["W_O"], axis=1) > factor * cfg.model.xi * np.sqrt(cfg.m_a)


def _median(x: np.ndarray) -> float:
    """Median, nan for an empty group (no warning)."""
    return float(np.median(x)) if len(x) else float("nan")


# --------------------------------------------------------------------------------------------
# trajectories over training (figure E6, checks L16)
# --------------------------------------------------------------------------------------------
L16_N_PROMPTS = 2000  # fixed prompts per set (unseen tasks, OOD) on which every snapshot is measured


def mechanism_trajectory(run: Trajectory, n_prompts: int = L16_N_PROMPTS) -> dict:
    """Figure E6's quantities at every snapshot of ``run`` (spec L16, L17).

    On ``n_prompts`` fixed prompts of the unseen tasks T \\ T_tr ("unseen") and of the OOD tasks T'
    ("ood"), both at (α', l_ts): ``<set>/attn_same``, ``<set>/attn_other`` (see
    :func:`attention_split`), ``<set>/error``, and ``<set>/q_norm``, ``q_pattern``, ``k_norm``,
    ``k_pattern`` (see :func:`qk_pattern_components`). For the rows of W_O W_V, grouped by the
    *final* parameters (large rows by :func:`l17_large_rows`, split by the sign of a_i; the rest
    "small"), the median over the group of ``rows/<group>/feature_angle``, ``label_angle``,
    ``feature_norm``, ``label_norm``: each neuron is followed through training by its fate.
    All series are arrays over ``step`` (the snapshot steps, sorted)."""
    if not run.snapshots:
        raise ValueError("mechanism_trajectory needs parameter snapshots: train with snapshot_every=k")
    cfg, inst = run.config, run.data
    d = cfg.data
    steps = sorted(run.snapshots)
    sets = {"unseen": (inst.tasks_unseen, inst.mu), "ood": (inst.tasks_ood, inst.mu_ood)}
    batches = {
        name: sample_batch(inst, n_prompts, prompt_rng(run.seed, 160, k), tasks=name, l=d.l_test, alpha=d.alpha_test)
        for k, (name, (tasks, _)) in enumerate(sets.items()) if len(tasks)
    }
    final = run.snapshots[steps[-1]]
    large = l17_large_rows(final, cfg)
    groups = {"pos": large & (final["a"] > 0), "neg": large & (final["a"] < 0), "small": ~large}
    out: dict = {"step": np.array(steps), "seed": run.seed, "n_prompts": n_prompts,
                 "group_size": {g: int(np.sum(mask)) for g, mask in groups.items()}}
    series: dict[str, list] = {}

    def put(key, value):
        series.setdefault(key, []).append(value)

    for step in steps:
        params = run.snapshots[step]
        for name, batch in batches.items():
            F, cache = forward(params, batch, cfg)
            same, other = attention_split(cache["attn"], batch["pattern"], batch["task"])
            put(f"{name}/attn_same", float(np.mean(same)))
            put(f"{name}/attn_other", float(np.mean(other)))
            put(f"{name}/error", float(np.mean(margins(F, batch["z"]) <= 0)))
            for key, value in qk_pattern_components(params, batch, sets[name][1]).items():
                put(f"{name}/{key}", value)
        geo = wowv_row_geometry(params, inst)
        for g, mask in groups.items():
            for key in ("feature_angle", "label_angle", "feature_norm", "label_norm"):
                put(f"rows/{g}/{key}", _median(geo[key][mask]))
    out.update({k: np.array(v) for k, v in series.items()})
    return out


# --------------------------------------------------------------------------------------------
# L16: attention on same-pattern and on "other" contexts
# --------------------------------------------------------------------------------------------
L16_OTHER_MAX = 0.05  # final attention mass on "other" contexts (pattern outside the task pair) on
#                       unseen-task prompts; uniform attention puts 1 − α' = 0.2 there (measured ≈0.025)


def check_l16_attention_split(trajs: Sequence[dict], final: float = L16_FINAL_ATTN,
                              other_max: float = L16_OTHER_MAX) -> Claim:
    """Spec L16 (Proposition 1), E6 (b): at the last snapshot the attention mass on contexts sharing
    the query's pattern is ≥ ``final`` and the mass on "other" contexts (pattern neither of the
    task's two) is ≤ ``other_max``, on unseen-task prompts at every seed. The OOD masses are
    reported, not tested: the spec asks "approaches 1" in-domain only, and with S1 = 1 the ODR
    pattern µ'_j = (µ_{2j−1} + µ_{2j})/2 has norm β/√2, so its scores are weaker."""
    same0 = np.array([t["unseen/attn_same"][0] for t in trajs])
    same1 = np.array([t["unseen/attn_same"][-1] for t in trajs])
    other0 = np.array([t["unseen/attn_other"][0] for t in trajs])
    other1 = np.array([t["unseen/attn_other"][-1] for t in trajs])
    has_ood = all("ood/attn_same" in t for t in trajs)
    ood_same = np.array([t["ood/attn_same"][-1] for t in trajs]) if has_ood else np.array([])
    ood_other = np.array([t["ood/attn_other"][-1] for t in trajs]) if has_ood else np.array([])
    steps = int(trajs[0]["step"][-1])
    ok = bool(np.all(same1 >= final) and np.all(other1 <= other_max))
    ood_txt = (f"; OOD (T', reported): same {fmt(ood_same, '.3f')}, other {fmt(ood_other, '.3f')}" if has_ood else "")
    return Claim(
        id="L16",
        claim="Attention moves onto the contexts sharing the query's pattern and off the task-irrelevant ones",
        spec="spec L16 (Proposition 1), E6(b)",
        measured=f"unseen-task prompts, step 0 → {steps}: same-pattern mass {fmt(same0, '.3f')} → "
                 f"{fmt(same1, '.3f')}, 'other' mass {fmt(other0, '.3f')} → {fmt(other1, '.3f')}{ood_txt} "
                 f"(seeds {[t['seed'] for t in trajs]}, {trajs[0]['n_prompts']} prompts per set)",
        expected=f"at the last snapshot, unseen tasks, every seed: same-pattern mass ≥ {final}, 'other' mass "
                 f"≤ {other_max} (uniform attention: α'/2 and 1 − α'); paper E6(b): ≈0.42 → ≈1.0, other → 0; "
                 f"OOD reported without a threshold",
        verdict=verdict(ok),
        numbers={"seeds": [t["seed"] for t in trajs], "attn_same_start": same0, "attn_same_end": same1,
                 "attn_other_start": other0, "attn_other_end": other1, "ood_attn_same_end": ood_same,
                 "ood_attn_other_end": ood_other, "final": final, "other_max": other_max},
        paper=PAPER.E6B_VALUE,
    )


L16_QK_GROWTH = 2.0  # ‖W_Q p_q‖, ‖W_K p_i‖ and their pattern components end ≥ 2× their initial value
#                      (default preset: ≈7.5×)
L16_QK_PLATEAU = 0.05  # "plateau": over the last 20% of training each changes by ≤ 5% of its final
#                        value (default preset, 2000 steps: ≈1.5%; the growth is slow, log-like)
L16_LATE_FRACTION = 0.2  # the "last 20% of training" above
L16_QK_SHARE = 0.8  # "mainly along the pattern": pattern component / norm ≥ 0.8 at the end, for the
#                     query and the keys (default preset: ≈0.92; 0.96 at initialisation)


def _late_change(steps: np.ndarray, x: np.ndarray, late: float) -> float:
    """|x(T) − x(t₀)| / |x(T)| with t₀ the first snapshot at or after (1 − late)·T; 0 for one snapshot."""
    t0 = (1 - late) * steps[-1]
    i0 = int(np.argmax(steps >= t0))
    return float(abs(x[-1] - x[i0]) / abs(x[-1])) if x[-1] != 0 else float("inf")


def check_l16_qk_norms(trajs: Sequence[dict], growth: float = L16_QK_GROWTH, plateau: float = L16_QK_PLATEAU,
                       share: float = L16_QK_SHARE, late: float = L16_LATE_FRACTION) -> Claim:
    """Spec L16 (Proposition 1), E6 (a): on unseen-task prompts ‖W_Q p_q‖, ‖W_K p_i‖ and their
    components along the query's / key's relevant pattern (see :func:`qk_pattern_components`)
    grow by ≥ ``growth``× from initialisation, change by ≤ ``plateau`` (relative) over the last
    ``late`` fraction of training, and the pattern component is ≥ ``share`` of the norm at the end,
    for every seed."""
    keys = ("q_norm", "q_pattern", "k_norm", "k_pattern")
    g = {k: np.array([t[f"unseen/{k}"][-1] / t[f"unseen/{k}"][0] for t in trajs]) for k in keys}
    ch = {k: np.array([_late_change(t["step"], t[f"unseen/{k}"], late) for t in trajs]) for k in keys}
    sh = {w: np.array([t[f"unseen/{w}_pattern"][-1] / t[f"unseen/{w}_norm"][-1] for t in trajs]) for w in ("q", "k")}
    end = {k: np.array([t[f"unseen/{k}"][-1] for t in trajs]) for k in keys}
    start = {k: np.array([t[f"unseen/{k}"][0] for t in trajs]) for k in keys}
    ok = bool(all(np.all(g[k] >= growth) and np.all(ch[k] <= plateau) for k in keys)
              and all(np.all(sh[w] >= share) for w in sh))
    steps = int(trajs[0]["step"][-1])
    return Claim(
        id="L16",
        claim="W_Q p_q and W_K p_i grow along the relevant pattern and plateau",
        spec="spec L16 (Proposition 1), E6(a)",
        measured=f"unseen-task prompts, step 0 → {steps}: ‖W_Q p_q‖ {fmt(start['q_norm'], '.3f')} → {fmt(end['q_norm'], '.3f')} "
                 f"(pattern comp. {fmt(start['q_pattern'], '.3f')} → {fmt(end['q_pattern'], '.3f')}), ‖W_K p_i‖ "
                 f"{fmt(start['k_norm'], '.3f')} → {fmt(end['k_norm'], '.3f')} (pattern comp. {fmt(start['k_pattern'], '.3f')} → "
                 f"{fmt(end['k_pattern'], '.3f')}); smallest growth {fmt([min(np.min(g[k]) for k in keys)], '.2f')}×, "
                 f"largest late change {fmt([max(np.max(ch[k]) for k in keys)], '.3f')}; pattern share at the end "
                 f"Q {fmt(sh['q'], '.3f')}, K {fmt(sh['k'], '.3f')}",
        expected=f"every seed, each of the four: end/start ≥ {growth:g} and relative change over the last "
                 f"{late:.0%} of training ≤ {plateau:g}; pattern component ≥ {share:g} × norm at the end; "
                 f"paper E6(a): grow and plateau",
        verdict=verdict(ok),
        numbers={"seeds": [t["seed"] for t in trajs], "growth": g, "late_change": ch, "pattern_share": sh,
                 "start": start, "end": end, "growth_min": growth, "plateau_max": plateau, "share_min": share},
    )


# --------------------------------------------------------------------------------------------
# L17: three kinds of rows of W_O W_V
# --------------------------------------------------------------------------------------------
L17_MIN_LARGE_FRAC = 0.5  # "a constant fraction is large": ≥ half of the neurons of each sign of a_i
#                           are large rows (default preset: ≈0.8–0.9)
L17_FEATURE_ANGLE = np.pi / 4  # median angle of the large rows' feature block to µ̄ < π/4 for each
#                                sign (π/2 at init; paper E6(c) ≈0.35–0.4 rad; ours ≈0.23)
L17_LABEL_ANGLE = 0.3  # median label-block angle to q < 0.3 rad for a_i > 0 and > π − 0.3 for a_i < 0
#                        (π/2 at init; ours ≈0.05 and ≈3.09)
L17_SMALL_NORM = 1.5  # small rows stay at the initial scale: their median ‖W_O,(i)‖ ≤ 1.5 ξ √m_a (the
#                       "large" cut is 2.5 ξ √m_a, so this asks for a gap, not just the cut; ours ≈1.05).
#                       Their direction does move (relative drift ‖W_O − W_O⁰‖/‖W_O⁰‖ ≈0.2–0.9, reported):
#                       they turn away from µ̄ (feature angle ≈2.1 rad) and go silent.


def l17_row_kinds(run: Trajectory) -> dict:
    """The final rows of W_O W_V of one run by kind (spec L17): group sizes, the medians of the
    angles and block norms per group, and the relative drift ‖W_O,(i) − W_O,(i)⁰‖ / ‖W_O,(i)⁰‖ of each
    W_O row from initialisation (nan unless the run kept the step-0 snapshot, ``snapshot_every``)."""
    params, cfg, a = run.params, run.config, run.params["a"]
    geo = wowv_row_geometry(params, run.data)
    large = l17_large_rows(params, cfg)
    groups = {"pos": large & (a > 0), "neg": large & (a < 0), "small": ~large}
    if 0 in run.snapshots:
        W0 = run.snapshots[0]["W_O"]
        n0 = np.linalg.norm(W0, axis=1)  # (m,)
        drift = np.divide(np.linalg.norm(params["W_O"] - W0, axis=1), n0, out=np.full_like(n0, np.inf), where=n0 > 0)
    else:
        drift = np.full(len(a), np.nan)
    scale = cfg.model.xi * np.sqrt(cfg.m_a)  # ≈ ‖W_O,(i)⁰‖ (spec L8)
    out = {"seed": run.seed, "init_scale": scale, "threshold": L17_LARGE_FACTOR * scale,
           "n_pos_neurons": int(np.sum(a > 0)), "n_neg_neurons": int(np.sum(a < 0))}
    for g, mask in groups.items():
        out[f"{g}/count"] = int(np.sum(mask))
        for key in ("feature_angle", "label_angle", "feature_norm", "label_norm", "wo_norm"):
            out[f"{g}/{key}"] = _median(geo[key][mask])
        out[f"{g}/drift"] = _median(drift[mask])
    out["geometry"] = geo
    out["a"] = a.copy()
    return out


def check_l17_row_kinds(runs: Sequence[Trajectory], min_large_frac: float = L17_MIN_LARGE_FRAC,
                        feature_angle: float = L17_FEATURE_ANGLE, label_angle: float = L17_LABEL_ANGLE,
                        small_norm: float = L17_SMALL_NORM) -> Claim:
    """Spec L17 (Proposition 2), E6 (c, d): after training the rows of W_O W_V are of three kinds.

    Large rows (:func:`l17_large_rows`) with a_i > 0 ≈ scaled (µ̄; q): median feature-block angle
    to µ̄ < ``feature_angle`` and median label-block angle to q < ``label_angle``; large rows with
    a_i < 0 ≈ scaled (µ̄; −q): feature angle < ``feature_angle``, label angle > π − ``label_angle``;
    at least ``min_large_frac`` of the neurons of each sign are large; the other rows stay at the
    initial scale (their median ‖W_O,(i)‖ ≤ ``small_norm`` · ξ √m_a; vacuous if there are none).
    Every seed must pass."""
    kinds = [l17_row_kinds(r) for r in runs]
    seeds = [k["seed"] for k in kinds]

    def col(key):
        return np.array([k[key] for k in kinds], dtype=float)

    frac_pos = col("pos/count") / np.maximum(col("n_pos_neurons"), 1)
    frac_neg = col("neg/count") / np.maximum(col("n_neg_neurons"), 1)
    drift = col("small/drift")
    small_ratio = col("small/wo_norm") / col("init_scale")  # median small-row norm / initial row norm
    ok = bool(
        np.all(frac_pos >= min_large_frac) and np.all(frac_neg >= min_large_frac)
        and np.all(col("pos/feature_angle") < feature_angle) and np.all(col("neg/feature_angle") < feature_angle)
        and np.all(col("pos/label_angle") < label_angle) and np.all(col("neg/label_angle") > np.pi - label_angle)
        and np.all((col("small/count") == 0) | (small_ratio <= small_norm))
    )
    return Claim(
        id="L17",
        claim="Rows of W_O W_V: ≈ (µ̄; q) for a_i > 0, ≈ (µ̄; −q) for a_i < 0, the rest small near initialisation",
        spec="spec L17 (Proposition 2), E6(c, d)",
        measured=f"seeds {seeds}; large rows (‖W_O,(i)‖ > {kinds[0]['threshold']:.3f}): a_i > 0: "
                 f"{fmt(col('pos/count'), '.0f')} rows, median feature angle {fmt(col('pos/feature_angle'), '.2f')} rad, "
                 f"label angle {fmt(col('pos/label_angle'), '.2f')}; a_i < 0: {fmt(col('neg/count'), '.0f')} rows, "
                 f"feature angle {fmt(col('neg/feature_angle'), '.2f')}, label angle {fmt(col('neg/label_angle'), '.2f')}; "
                 f"small: {fmt(col('small/count'), '.0f')} rows, ‖W_O,(i)‖ median {fmt(col('small/wo_norm'), '.3f')} "
                 f"= {fmt(small_ratio, '.2f')} × the initial scale ξ√m_a "
                 f"(large {fmt(np.r_[col('pos/wo_norm'), col('neg/wo_norm')], '.3f')}), drift from init "
                 f"{fmt(drift, '.2f')}, feature angle {fmt(col('small/feature_angle'), '.2f')}, label angle "
                 f"{fmt(col('small/label_angle'), '.2f')}",
        expected=f"every seed: ≥ {min_large_frac:.0%} of each sign's neurons large; median feature angle to µ̄ < "
                 f"{feature_angle:.3f} (π/4) for both signs; median label angle to q < {label_angle} for a_i > 0 and "
                 f"> π − {label_angle} for a_i < 0; small rows' median ‖W_O,(i)‖ ≤ {small_norm:g} ξ√m_a; "
                 f"paper E6(c): feature angle π/2 → ≈0.35–0.4 rad",
        verdict=verdict(ok),
        numbers={"seeds": seeds, "large_frac_pos": frac_pos, "large_frac_neg": frac_neg,
                 **{key: col(key) for key in kinds[0] if "/" in key},
                 "threshold": kinds[0]["threshold"], "feature_angle_max": feature_angle,
                 "label_angle_tol": label_angle, "small_norm_ratio": small_ratio, "small_norm_max": small_norm},
        paper=PAPER.E6CD_VALUE,
    )


# --------------------------------------------------------------------------------------------
# L17 ablations: context labels carry the decision, IDI noise does not matter
# --------------------------------------------------------------------------------------------
def ablate_labels(P: np.ndarray, d_x: int) -> np.ndarray:
    """A copy of the prompts P (B, d, l+1) with the label blocks of the context columns set to 0."""
    P = P.copy()
    P[:, d_x:, :-1] = 0.0  # rows d_x: of the l context columns (the query's label block is 0 already)
    return P


def ablate_noise(batch: dict, mu: np.ndarray) -> np.ndarray:
    """The same prompts with κ = 0: every feature block rebuilt as µ_{pattern} (spec L2 without the
    IDI term κ ν_k); labels and patterns unchanged. ``mu`` (M, d_x) as indexed by ``batch["pattern"]``."""
    P = batch["P"].copy()
    P[:, : mu.shape[1], :] = mu[batch["pattern"]].transpose(0, 2, 1)  # (B, d_x, l+1)
    return P


def measure_l17_ablations(runs: Sequence[Trajectory], n_test: int, chunk: int = 5000) -> list[dict]:
    """Per run, on ``n_test`` fresh unseen-task prompts at (α', l_ts) (``prompt_rng(seed, 170)``):
    error and hinge loss of the intact prompts ("base"), with the context label blocks zeroed
    ("labels0"), and with the IDI noise removed ("noise0", the same prompts with κ = 0); and the
    paired difference error(noise0) − error(base) with its standard error."""
    out = []
    for r in runs:
        d, inst = r.config.data, r.data
        rng = prompt_rng(r.seed, 170)
        err = {"base": 0, "labels0": 0, "noise0": 0}
        hinge = {"base": 0.0, "labels0": 0.0, "noise0": 0.0}
        diff, diff2, done = 0, 0, 0
        while done < n_test:
            b = min(chunk, n_test - done)
            batch = sample_batch(inst, b, rng, tasks="unseen", l=d.l_test, alpha=d.alpha_test)
            e = {}
            for name, P in (("base", batch["P"]), ("labels0", ablate_labels(batch["P"], d.d_x)),
                            ("noise0", ablate_noise(batch, inst.mu))):
                zF = margins(forward(r.params, {"P": P}, r.config)[0], batch["z"])  # (b,)
                e[name] = (zF <= 0).astype(np.int64)
                err[name] += int(np.sum(e[name]))
                hinge[name] += float(np.sum(np.maximum(0.0, 1.0 - zF)))
            dd = e["noise0"] - e["base"]  # (b,) in {−1, 0, 1}
            diff += int(np.sum(dd))
            diff2 += int(np.sum(dd * dd))
            done += b
        n = n_test
        delta, delta_se = paired_difference(diff, diff2, n)  # d = 𝟙[error, κ = 0] − 𝟙[error] per prompt
        res = {"seed": r.seed, "n": n, "noise_delta": delta, "noise_delta_se": delta_se, "noise_discordant": diff2}
        for name in err:
            res[f"{name}/error"] = err[name] / n
            res[f"{name}/hinge"] = hinge[name] / n
        out.append(res)
    return out


L17_BASE_ERROR = 0.05  # the intact model must classify first: unseen-task error ≤ 0.05 (chance 0.5)
L17_CHANCE_TOL = 0.03  # zeroed context labels: |error − 0.5| ≤ 0.03 (≈8.5 standard errors at n = 20 000;
#                        a model using only features errs 0.5 on average over T \ T_tr, where every
#                        pattern is the + and the − pattern equally often)


def check_l17_label_ablation(ablations: Sequence[dict], base_max: float = L17_BASE_ERROR,
                             chance_tol: float = L17_CHANCE_TOL) -> Claim:
    """Spec L17 (Proposition 2) ablation: the decision rides on the context labels. Passes when, at
    every seed, the intact model's unseen-task error is ≤ ``base_max`` and zeroing the context label
    blocks moves it to chance, |error − 0.5| ≤ ``chance_tol``."""
    e0 = np.array([a["base/error"] for a in ablations])
    e1 = np.array([a["labels0/error"] for a in ablations])
    h1 = np.array([a["labels0/hinge"] for a in ablations])
    ok = bool(np.all(e0 <= base_max) and np.all(np.abs(e1 - 0.5) <= chance_tol))
    return Claim(
        id="L17",
        claim="Zeroing the context label blocks sends the error to chance",
        spec="spec L17 (Proposition 2), ablation",
        measured=f"unseen-task error {fmt(e0)} intact → {fmt(e1, '.4f')} with context labels zeroed (hinge "
                 f"{fmt(h1, '.3f')}; n = {ablations[0]['n']} per seed, seeds {[a['seed'] for a in ablations]})",
        expected=f"intact error ≤ {base_max:g} and |error − 0.5| ≤ {chance_tol:g} with the labels zeroed, every seed",
        verdict=verdict(ok),
        numbers={"seeds": [a["seed"] for a in ablations], "n": ablations[0]["n"], "error_base": e0,
                 "error_labels0": e1, "hinge_labels0": h1, "base_max": base_max, "chance_tol": chance_tol},
    )


L17_NOISE_TOL = 0.005  # zeroing the IDI noise: |Δerror| ≤ 0.005 + 3 paired standard errors
L17_NOISE_NSE = 3.0


def check_l17_noise_ablation(ablations: Sequence[dict], tol: float = L17_NOISE_TOL,
                             n_se: float = L17_NOISE_NSE) -> Claim:
    """Spec L17 (Proposition 2) ablation: the IDI noise does not matter. Passes when, at every seed,
    the paired change of the unseen-task error on removing the noise (κ = 0 on the same prompts)
    is |Δ| ≤ ``tol`` + ``n_se`` standard errors."""
    e0 = np.array([a["base/error"] for a in ablations])
    e1 = np.array([a["noise0/error"] for a in ablations])
    dl = np.array([a["noise_delta"] for a in ablations])
    se = np.array([a["noise_delta_se"] for a in ablations])
    disc = [a["noise_discordant"] for a in ablations]
    ok = bool(np.all(np.abs(dl) <= tol + n_se * se))
    return Claim(
        id="L17",
        claim="Removing the IDI noise leaves the error unchanged",
        spec="spec L17 (Proposition 2), ablation",
        measured=f"unseen-task error {fmt(e0)} with noise → {fmt(e1)} with κ = 0 on the same prompts "
                 f"(Δ = {fmt(dl)}, paired s.e. {fmt(se)}, prompts that change outcome {disc}; n = "
                 f"{ablations[0]['n']} per seed)",
        expected=f"|Δerror| ≤ {tol:g} + {n_se:g} s.e. at every seed",
        verdict=verdict(ok),
        numbers={"seeds": [a["seed"] for a in ablations], "n": ablations[0]["n"], "error_base": e0,
                 "error_noise0": e1, "delta": dl, "delta_se": se, "discordant": disc, "tol": tol, "n_se": n_se},
    )
