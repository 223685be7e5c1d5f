"""Trackers and phase-event detectors for spec H11–H12 on a GD trajectory of C
(:func:`population.run_gd`: a :class:`refimpl.core.trajectory.Trajectory` whose ``records`` hold
``step``, ``C``, ``alpha`` and ``Lk``).

Glossary: for a query feature k (0-based; the dominant feature of the imbalanced model is index 0,
the paper's "feature 1"):

==============  ================  =========================================================
symbol          code              meaning
==============  ================  =========================================================
A_k             ``A``             C_{k,k}: query k's logit on its own feature
B_{k,1}         ``B1``            C_{1,k}: query k's logit on the dominant feature (index 0)
B_{k,oth}       ``Both``          mean of C_{n,k} over the other features n ∉ {1, k}
α_{k→k}         ``a_kk``          E_n[attention mass on the query's own feature]
α_{k→1}         ``a_k1``          E_n[attention mass on the dominant feature]
L_k             ``Lk``            per-feature loss
==============  ================  =========================================================

Events are *detected and reported* in the order they happen — never assumed (spec H12: the
order flips with K and p_1). Steps are the recorded steps of the trajectory (every step when
it was run with the default ``record``).
"""

from __future__ import annotations

import numpy as np

EVENT_NAMES = ("B_oth_peak", "A_over_B1", "akk_over_ak1", "akk_half", "ak1_below_1/K", "Lk_below_eps")


def _records(traj):
    r = traj.records
    return r["step"], r["C"], r["alpha"], r["Lk"]


def track(traj, k: int) -> dict:
    """Time series (T,) of A_k, B_{k,1}, B_{k,oth}, α_{k→k}, α_{k→1}, L_k for query feature k."""
    t, C, alpha, Lk = _records(traj)
    K = C.shape[1]
    if not (0 <= k < K):
        raise ValueError(f"k must be in [0, {K}), got {k}")
    others = [n for n in range(K) if n not in (0, k)]
    return {
        "t": t,
        "A": C[:, k, k],  # spec H §1: A_k = C_{k,k}
        "B1": C[:, 0, k],  # B_{k,1} = C_{1,k}
        "Both": C[:, others, k].mean(axis=1) if others else np.full(C.shape[0], np.nan),
        "a_kk": alpha[:, k, k],
        "a_k1": alpha[:, k, 0],
        "Lk": Lk[:, k],
        "colsum": C[:, :, k].sum(axis=1),  # spec H9: A_k + Σ_n B_{k,n} = 0
    }


def _first(t, mask):
    i = np.flatnonzero(mask)
    return int(t[i[0]]) if i.size else None


def first_step(traj, k: int, what: str, level: float) -> int | None:
    """First recorded step with α_{k→k} ≥ level (``what="akk"``) or L_k < level (``"Lk"``)."""
    t, _, alpha, Lk = _records(traj)
    if what == "akk":
        return _first(t, alpha[:, k, k] >= level)
    if what == "Lk":
        return _first(t, Lk[:, k] < level)
    raise ValueError(f"what must be 'akk' or 'Lk', got {what!r}")


def detect_events(traj, k: int, eps: float = 1e-2) -> dict:
    """Phase events of spec H12 for an under-represented k, each the first step it holds (None if
    never), plus ``growth_overtake``: the first step where A_k's growth exceeds B_{k,1}'s fall."""
    tr = track(traj, k)
    t, K = tr["t"], traj.records["C"].shape[1]
    Both = tr["Both"]
    ev = {
        "B_oth_peak": int(t[int(np.nanargmax(Both))]) if np.any(np.isfinite(Both)) else None,
        "A_over_B1": _first(t, tr["A"] > np.abs(tr["B1"])),
        "akk_over_ak1": _first(t, tr["a_kk"] > tr["a_k1"]),
        "akk_half": _first(t, tr["a_kk"] > 0.5),
        "ak1_below_1/K": _first(t, tr["a_k1"] < 1.0 / K),
        "Lk_below_eps": _first(t, tr["Lk"] < eps),
    }
    if ev["B_oth_peak"] == int(t[-1]) or ev["B_oth_peak"] == int(t[0]):
        ev["B_oth_peak"] = None  # a peak at an end of the record is no peak
    dA, dB1 = np.diff(tr["A"]), np.diff(tr["B1"])
    ev["growth_overtake"] = _first(t[:-1], dA > -dB1)
    return ev


def event_order(events: dict) -> list[str]:
    """Event names sorted by their step (missing events last)."""
    return sorted((n for n in EVENT_NAMES if n in events),
                  key=lambda n: (events[n] is None, events[n] if events[n] is not None else 0))

