"""Checks of the deeper model (validation module ``deep``): spec L E1, E2 with the 3-layer GPT-2
of spec T (the one-layer checks relabelled) and E7 (per-layer attention on same-pattern contexts).

The measurements (training the GPT-2, its error curves and attention trajectories) live in
``refimpl.experiments.li_deep``; these functions only judge their numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from refimpl.core.claims import Claim, verdict
from refimpl.li2024.checks import paper as PAPER


# --------------------------------------------------------------------------------------------
# spec L E1 / E2 with the deep model: the one-layer checks on the deep model's curves
# --------------------------------------------------------------------------------------------
def deep_claim(claim: Claim, model: str) -> Claim:
    """A ``refimpl.li2024.checks`` claim relabelled for the deep model (id suffix "-deep", the
    model named in the claim and measured columns); the verdict and thresholds are unchanged."""
    return dataclasses.replace(claim, id=claim.id + "-deep", claim=f"[{model}] " + claim.claim,
                               measured=f"{model}: " + claim.measured)


def compare_at_length(deep: Sequence[dict], shallow: Sequence[dict], at: int = 20, seeds: Sequence[int] = ()) -> Claim:
    """Reported: the deep vs the one-layer E1 errors at l_ts = ``at`` (seed means), per S1, and the
    deep model's errors per seed (``seeds`` labels them)."""
    S1s = sorted(deep[0])
    i = list(deep[0][S1s[0]]["lengths"]).index(at)
    j = list(shallow[0][S1s[0]]["lengths"]).index(at)
    d = {s: float(np.mean([c[s]["error"][i] for c in deep])) for s in S1s}
    o = {s: float(np.mean([c[s]["error"][j] for c in shallow])) for s in S1s}
    per_seed = [[float(c[s]["error"][i]) for s in S1s] for c in deep]
    labels = list(seeds) if len(seeds) == len(deep) else list(range(len(deep)))
    return Claim(
        "E1-compare", f"3-layer GPT-2 vs one-layer model: OOD error at l_ts = {at}", "spec L §6 E1",
        "seed means: " + ", ".join(f"S1={s:g}: deep {d[s]:.2e} / one-layer {o[s]:.2e}" for s in S1s)
        + "; deep per seed (S1 = " + ", ".join(f"{s:g}" for s in S1s) + "): "
        + "; ".join(f"seed {k}: " + ", ".join(f"{v:.1e}" for v in row) for k, row in zip(labels, per_seed)),
        "reported; paper (GPT-2) at l = 20: 2e-3, 3.5e-3, 1.3e-2, 2–2.5e-2, 3–4.5e-2 for S1 = 1.3 … 0.5", "info",
        numbers={"S1": S1s, "deep": [d[s] for s in S1s], "one_layer": [o[s] for s in S1s], "deep_per_seed": per_seed},
        paper=PAPER.E1_VALUE)


# --------------------------------------------------------------------------------------------
# spec L E7: per-layer attention mass from the query on same-pattern contexts rises
# --------------------------------------------------------------------------------------------
E7_RISE = 0.2  # every layer: final − initial head-mean mass ≥ 0.2 (paper: 0.43–0.52 → 0.77–0.88, a rise ≥ 0.25)
E7_FINAL = 0.77  # the most concentrated layer ends ≥ 0.77 (the low end of the paper's 0.77–0.88)
E7_FINAL_WINDOW = 0.2  # "final" = mean over the snapshots in the last 20% of training ("initial" = step 0)


def _e7_summary(trajs: Sequence[dict], window: float = E7_FINAL_WINDOW) -> dict:
    start, end, half_step = [], [], []
    for t in trajs:
        steps = np.asarray(t["step"], dtype=float)
        same = np.asarray(t["same"], dtype=float).mean(axis=2)  # (S, L) head mean
        late = steps >= steps[-1] - window * (steps[-1] - steps[0])
        s0, s1 = same[0], same[late].mean(axis=0)  # (L,)
        start.append(s0)
        end.append(s1)
        hs = []
        for k in range(same.shape[1]):  # first snapshot past half of the rise ("abrupt": early, steep)
            mid = s0[k] + 0.5 * (s1[k] - s0[k])
            idx = np.nonzero(same[:, k] >= mid)[0] if s1[k] > s0[k] else []
            hs.append(float(steps[idx[0]]) if len(idx) else float("nan"))
        half_step.append(hs)
    return {"start": np.array(start), "end": np.array(end), "half_step": np.array(half_step)}  # (seeds, L)


def check_e7_every_layer(trajs: Sequence[dict], rise: float = E7_RISE) -> Claim:
    """``trajs``: per seed, ``li_attention_trajectory`` results. Every layer's head-mean same-pattern
    mass must rise by ≥ ``rise`` from step 0 to the end of training, at every seed."""
    s = _e7_summary(trajs)
    L = s["start"].shape[1]
    d = s["end"] - s["start"]
    heads = np.asarray(trajs[0]["same"])
    late = heads[-1]  # (L, H) last snapshot, first seed
    return Claim(
        "E7", "3-layer GPT-2: in every layer the attention from the query to same-pattern contexts rises over training",
        "spec L §6 E7, L16",
        "head-mean mass per layer, start → end (mean over seeds): "
        + ", ".join(f"layer {k}: {s['start'][:, k].mean():.2f} → {s['end'][:, k].mean():.2f}" for k in range(L))
        + f"; uniform causal attention {trajs[0]['uniform_same']:.2f}; per head at the last snapshot (seed "
        f"{trajs[0]['seed']}): " + "; ".join(f"layer {k}: " + ", ".join(f"{v:.2f}" for v in late[k]) for k in range(L))
        + "; step at half of the rise: "
        + ", ".join(f"layer {k}: {np.nanmean(s['half_step'][:, k]):.0f}" if np.any(np.isfinite(s['half_step'][:, k]))
                    else f"layer {k}: –" for k in range(L)),
        f"every layer, every seed: end − start ≥ {rise:g} (paper: 0.43–0.52 → 0.77–0.88 in each layer)",
        verdict(bool(np.all(d >= rise))),
        numbers={"start": s["start"], "end": s["end"], "rise": d, "half_step": s["half_step"]},
        paper=PAPER.E7_VALUE)


def check_e7_peak(trajs: Sequence[dict], final: float = E7_FINAL) -> Claim:
    """The most concentrated layer (head mean) ends at ≥ ``final`` at every seed."""
    s = _e7_summary(trajs)
    peak = s["end"].max(axis=1)  # (seeds,)
    layer = s["end"].argmax(axis=1)
    return Claim(
        "E7-peak", "3-layer GPT-2: some layer concentrates its query attention on same-pattern contexts",
        "spec L §6 E7, L16",
        "highest end-of-training head-mean mass: " + ", ".join(f"seed {t['seed']}: {p:.2f} (layer {k})"
                                                              for t, p, k in zip(trajs, peak, layer)),
        f"≥ {final:g} at every seed (paper: 0.77–0.88)", verdict(bool(np.all(peak >= final))),
        numbers={"peak": peak, "layer": layer}, paper=PAPER.E7_PEAK_VALUE)
