"""Pruning of spec L9: row norms of W_O, keep masks and their evaluation on shared prompts.

Removing a set S of rows ("neurons") of the trained W_O gives
F(Ψ_S; P) = Σ_{i∉S} a_i Relu(W_{O,(i)} v) (``forward(..., keep=k)`` with keep_i = 0 for i ∈ S).
Magnitude pruning removes the rows of smallest ℓ2 norm [C: row norm], random pruning a uniform
random set of the same size. :func:`evaluate_masks` evaluates many masks on the same test prompts
(paired comparisons: :func:`mask_contrast`). The claims built on these (spec L15, E4, E5) are in
``refimpl.li2024.checks.pruning``.
"""

from __future__ import annotations

import numpy as np

from refimpl.core import stats
from refimpl.li2024.config import Config
from refimpl.li2024.data import Instance, sample_batch
from refimpl.li2024.metrics import margins
from refimpl.li2024.model import forward


def row_norms(params) -> np.ndarray:
    """‖W_{O,(i)}‖₂ for every row i of W_O (spec L9 [C]: the magnitude used for pruning). (m,)"""
    return np.linalg.norm(np.asarray(params["W_O"]), axis=1)


def init_row_scale(cfg: Config) -> float:
    """ξ √m_a: the typical row norm of W_O⁰ ~ N(0, ξ²) of shape (m, m_a) (spec L8)."""
    return float(cfg.model.xi * np.sqrt(cfg.m_a))


def rate_to_count(rate: float, m: int) -> int:
    """Number of rows pruned at ``rate`` of m rows (rounded to the nearest row)."""
    if not 0 <= rate <= 1:
        raise ValueError(f"pruning rate must be in [0, 1], got {rate!r}")
    return int(round(rate * m))


def magnitude_keep(norms: np.ndarray, k: int, among=None) -> np.ndarray:
    """Keep mask (m,) of 0/1 that removes the ``k`` rows of smallest norm (spec L9); ties broken by
    row index. With ``among`` (row indices), the k smallest of those rows are removed."""
    norms = np.asarray(norms)
    rows = np.arange(len(norms)) if among is None else np.asarray(among)
    if not 0 <= k <= len(rows):
        raise ValueError(f"k must be in [0, {len(rows)}], got {k!r}")
    keep = np.ones(len(norms))
    keep[rows[np.argsort(norms[rows], kind="stable")[:k]]] = 0.0
    return keep


def largest_keep(norms: np.ndarray, k: int, among=None) -> np.ndarray:
    """Keep mask (m,) that removes the ``k`` rows of LARGEST norm (of ``among``, when given)."""
    norms = np.asarray(norms)
    rows = np.arange(len(norms)) if among is None else np.asarray(among)
    if not 0 <= k <= len(rows):
        raise ValueError(f"k must be in [0, {len(rows)}], got {k!r}")
    keep = np.ones(len(norms))
    keep[rows[np.argsort(-norms[rows], kind="stable")[:k]]] = 0.0
    return keep


def random_keep(m: int, k: int, rng: np.random.Generator, among=None) -> np.ndarray:
    """Keep mask (m,) that removes ``k`` rows drawn uniformly without replacement (spec L9), from
    ``among`` (row indices) when given."""
    rows = np.arange(m) if among is None else np.asarray(among)
    if not 0 <= k <= len(rows):
        raise ValueError(f"k must be in [0, {len(rows)}], got {k!r}")
    keep = np.ones(m)
    keep[rng.choice(rows, size=k, replace=False)] = 0.0
    return keep


L15_N_BATCHES = 20  # test prompts are drawn in this many equal batches; paired standard errors use batch means


def evaluate_masks(params, cfg: Config, inst: Instance, keeps, n: int, rng, *, tasks="unseen", l=None, alpha=None,
                   n_batches: int = L15_N_BATCHES) -> dict:
    """Hinge loss and classification error of the model pruned by each keep mask, all on the same
    ``n`` fresh prompts (spec L9, L10), options from ``cfg.model``.

    ``keeps``: (K, m) of 0/1. The attention output v and r = Relu(W_O v) do not depend on the mask,
    so one unpruned forward pass per batch gives every pruned output:
    F_S = Σ_i keep_i a_i r_i (spec L9) — the same numbers as ``measure(..., keep=k)`` on the same
    prompts (same generator and batch sizes), for K masks at the cost of one pass. Returns the means
    ``hinge``, ``error`` (K,) and the per-batch means ``hinge_batches``, ``error_batches``
    (n_batches, K) with the batch ``weights`` (for paired standard errors: :func:`mask_contrast`)."""
    keeps = np.atleast_2d(np.asarray(keeps, dtype=np.float64))  # (K, m)
    m = params["W_O"].shape[0]
    if keeps.shape[1] != m or not np.all((keeps == 0) | (keeps == 1)):
        raise ValueError(f"keeps must be an array (K, m = {m}) of 0/1, got shape {keeps.shape}")
    if not (isinstance(n, (int, np.integer)) and n >= 2):
        raise ValueError(f"n must be an int ≥ 2, got {n!r}")
    n_batches = max(2, min(n_batches, n))
    A = (keeps * params["a"][None, :]).T  # (m, K): a_i keep_i per mask
    sizes = np.full(n_batches, n // n_batches)
    sizes[: n % n_batches] += 1
    hinge_b = np.zeros((n_batches, len(keeps)))
    error_b = np.zeros((n_batches, len(keeps)))
    for j, b in enumerate(sizes):
        batch = sample_batch(inst, int(b), rng, tasks=tasks, l=l, alpha=alpha)
        _, cache = forward(params, batch, cfg)  # unpruned pass: r = Relu(W_O v)  (b, m)
        zF = margins(cache["r"] @ A, batch["z"][:, None])  # (b, K)  spec L9: z Σ_{i∉S} a_i Relu(W_O,(i) v)
        hinge_b[j] = np.mean(np.maximum(0.0, 1.0 - zF), axis=0)  # spec L10 hinge
        error_b[j] = np.mean(zF <= 0, axis=0)  # classification error
    w = sizes / n
    return {"n": int(n), "hinge": w @ hinge_b, "error": w @ error_b, "hinge_batches": hinge_b,
            "error_batches": error_b, "weights": w}


def mask_contrast(ev: dict, metric: str, c) -> tuple[float, float]:
    """Mean and standard error of the linear combination Σ_k c_k metric_k of an
    :func:`evaluate_masks` result (paired: the masks share the prompts), from the batch means
    (:func:`refimpl.core.stats.paired_contrast`)."""
    return stats.paired_contrast(ev[f"{metric}_batches"], ev["weights"], c)
