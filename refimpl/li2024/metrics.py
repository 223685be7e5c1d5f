"""Test-time measurements for spec L: classification error, hinge loss and same-pattern attention
on a batch (``evaluate``), on many fresh prompts in chunks (``measure``) and against the prompt
length (``error_curve``).

A non-finite output F is never counted (z·F ≤ 0 is False for NaN, which would count it as
correct): every measurement raises :class:`refimpl.core.errors.NonFiniteError` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from refimpl.core.errors import check_finite
from refimpl.core.stats import clopper_pearson
from refimpl.li2024.config import Config
from refimpl.li2024.data import Instance, prompt_rng, sample_batch
from refimpl.li2024.model import check_batch, forward


def attention_same_pattern(attn: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Σ_{i ≤ l: pattern(x_i) = pattern(x_q)} attn_i per prompt (spec L16). attn (B, J), pattern (B, l+1)."""
    l = pattern.shape[1] - 1
    same = pattern[:, :l] == pattern[:, l:]  # (B, l)
    return np.sum(attn[:, :l] * same, axis=1)  # (B,)


def margins(F: np.ndarray, z: np.ndarray) -> np.ndarray:
    """z F (B,) (spec L10: an error is z F ≤ 0); ``NonFiniteError`` if any F is NaN or ±inf."""
    check_finite("F", F, hint="a non-finite output is neither right nor wrong; check the parameters")
    return z * F


def evaluate(params, batch: dict, cfg: Config, *, keep=None) -> dict:
    """Classification error (z F ≤ 0), mean hinge loss and mean same-pattern attention mass on a batch."""
    F, cache = forward(params, batch, cfg, keep=keep)
    _, z = check_batch(batch, cache["P"].shape[1])  # labels ±1: a NaN label would count as correct
    zF = margins(F, z)
    out = {
        "error": float(np.mean(zF <= 0)),
        "hinge": float(np.mean(np.maximum(0.0, 1.0 - zF))),
    }
    if "pattern" in batch:
        out["attn_same"] = float(np.mean(attention_same_pattern(cache["attn"], batch["pattern"])))
    return out


def measure(params, cfg: Config, inst: Instance, n: int, rng, *, tasks="unseen", l=None, alpha=None, keep=None,
            chunk: int = 2000) -> dict:
    """Classification error (z F ≤ 0), mean hinge loss and same-pattern attention on ``n`` fresh
    prompts of ``tasks`` (spec L10, L16), options from ``cfg.model``. Returns counts, rates and a
    95% Clopper–Pearson interval."""
    errors, hinge, attn, done = 0, 0.0, 0.0, 0
    while done < n:
        b = min(chunk, n - done)
        batch = sample_batch(inst, b, rng, tasks=tasks, l=l, alpha=alpha)
        F, cache = forward(params, batch, cfg, keep=keep)
        zF = margins(F, batch["z"])
        errors += int(np.sum(zF <= 0))
        hinge += float(np.sum(np.maximum(0.0, 1.0 - zF)))
        attn += float(np.sum(attention_same_pattern(cache["attn"], batch["pattern"])))
        done += b
    lo, hi = clopper_pearson(errors, n)
    return {"n": n, "errors": errors, "error": errors / n, "error_ci95": (lo, hi),
            "hinge": hinge / n, "attn_same": attn / n}


def error_curve(run, lengths: Sequence[int], n: int, *, tasks="unseen", alpha: float, instance=None,
                key: int = 0) -> dict:
    """Error and hinge loss of a trained ``run`` (a :class:`refimpl.core.trajectory.Trajectory`)
    vs prompt length l_ts on ``n`` fresh prompts per length, drawn from ``prompt_rng(seed, key, l)``
    (paired across calls with the same ``key``). Returns arrays ``error``, ``hinge``, ``error_ci95``
    (len(lengths), 2)."""
    inst = run.data if instance is None else instance
    res = [measure(run.params, run.config, inst, n, prompt_rng(run.seed, key, l), tasks=tasks, l=int(l), alpha=alpha)
           for l in lengths]
    return {"lengths": np.asarray(lengths), "error": np.array([r["error"] for r in res]),
            "hinge": np.array([r["hinge"] for r in res]), "error_ci95": np.array([r["error_ci95"] for r in res]),
            "n": n}
