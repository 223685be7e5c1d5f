"""Data model of spec Y (Y1–Y4): dictionary, representations, tasks, feature-space noise, prompts.

Every prompt holds the same tokens v_1..v_N (spec Y2); only λ and ε change between prompts.
The contract's pair: :func:`make_data` (the fixed dictionary of a config) and
:func:`sample_batch` (fresh prompts over it); :func:`make_dictionary`, :func:`sample_prompts`,
:func:`sample_tasks` and :func:`embedding` are the same draws with explicit sizes.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.arrays import check_array, check_choice, is_int
from refimpl.core.rng import make_rng
from refimpl.yang2024.config import Config

TASK_KINDS = ("in", "ood", "rademacher")


def _check_pos_int(name, x, lo=1):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < lo:
        raise ValueError(f"{name} must be an int ≥ {lo}, got {x!r}")
    return int(x)


def make_dictionary(K: int, d: int, m: int, seed=0, *, normalize_tokens: bool = True):
    """Return ``(V_all (d, K), Z_all (m, K))`` (spec Y2).

    Tokens v_k and representations z_k = f(v_k) are i.i.d. standard Gaussian [P]; tokens are
    scaled to unit norm when ``normalize_tokens`` [C] (the theory assumes ‖v_k‖ = 1).
    """
    K, d, m = _check_pos_int("K", K, 2), _check_pos_int("d", d), _check_pos_int("m", m)
    rng = make_rng(seed)
    V_all = rng.standard_normal((d, K))  # (d, K)  spec Y2
    if normalize_tokens:
        V_all /= np.linalg.norm(V_all, axis=0, keepdims=True)  # spec Y2 [C]: ‖v_k‖ = 1
    Z_all = rng.standard_normal((m, K))  # (m, K)  spec Y2: z_k = f(v_k)
    return V_all, Z_all


def sample_tasks(m: int, B: int, seed=0, *, kind: str = "in") -> np.ndarray:
    """λ (B, m) (spec Y3): "in" N(0, I_m); "ood" N(1_m, 4 I_m) [P]; "rademacher" ±1 (mean 0, var 1)."""
    m, B = _check_pos_int("m", m), _check_pos_int("B", B)
    check_choice("kind", kind, TASK_KINDS)
    rng = make_rng(seed)
    if kind == "in":
        return rng.standard_normal((B, m))  # spec Y3 (training)
    if kind == "ood":
        return 1.0 + 2.0 * rng.standard_normal((B, m))  # spec Y3: N(1, 4I)
    return rng.choice(np.array([-1.0, 1.0]), size=(B, m))  # Assumption 1 holds as well


CHUNK = 1024  # prompts per noise block when ε is not kept (bounded memory for large pools)


def sample_prompts(Z_all, N: int, tau: float, B: int, seed=0, *, kind: str = "in", keep_eps: bool = True) -> dict:
    """B prompts over the fixed dictionary (spec Y1, Y4).

    Returns {"lam" (B, m), "eps" (B, m, K) (only with ``keep_eps``), "y_all" (B, K) labels of all
    K tokens, "y" (B, N) the labels of the N prompt tokens}. y_k = λᵀ(z_k + ε_k), ε_k ~ N(0, τ I_m).
    Without ``keep_eps`` the noise is drawn in blocks of ``CHUNK`` prompts from the same stream
    (the same numbers as with ``keep_eps``), so a pool of 10⁴ prompts needs no (B, m, K) array.
    """
    Z_all = check_array("Z_all", Z_all, ndim=2)
    m, K = Z_all.shape
    N = _check_pos_int("N", N)
    if N > K:
        raise ValueError(f"N must be ≤ K = {K}, got N={N}")
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite number > 0, got {tau!r}")
    rng = make_rng(seed)
    lam = sample_tasks(m, B, rng, kind=kind)  # (B, m)
    if keep_eps:
        eps = np.sqrt(tau) * rng.standard_normal((B, m, K))  # (B, m, K)  spec Y1: ε_k ~ N(0, τ I)
        y_all = np.einsum("bm,bmk->bk", lam, Z_all[None] + eps)  # (B, K)  spec Y1: y_k = λᵀ(z_k + ε_k)
        return {"lam": lam, "eps": eps, "y_all": y_all, "y": y_all[:, :N].copy()}
    y_all = lam @ Z_all  # (B, K)  λᵀ z_k
    for s in range(0, B, CHUNK):
        e = np.sqrt(tau) * rng.standard_normal((min(CHUNK, B - s), m, K))  # (b, m, K)  spec Y1
        y_all[s : s + e.shape[0]] += np.einsum("bm,bmk->bk", lam[s : s + e.shape[0]], e)
    return {"lam": lam, "y_all": y_all, "y": y_all[:, :N].copy()}


def make_data(cfg, seed) -> dict:
    """The fixed objects of spec Y (Y2): the dictionary of tokens and their representations.

    Parameters
    ----------
    cfg : refimpl.yang2024.config.Config
        Reads ``K``, ``d``, ``m``, ``N``, ``tau`` and ``normalize_tokens``.
    seed : int or numpy.random.Generator
        Draws the dictionary (:func:`make_dictionary`).

    Returns
    -------
    dict
        ``V_all`` float64 (d, K), the tokens v_1..v_K as columns (unit norm when
        ``cfg.normalize_tokens``); ``Z_all`` float64 (m, K), their representations z_k = f(v_k);
        ``N`` (int) the prompt length; ``tau`` (float) the feature-noise level. The dict is also
        the batch of the closed-form loss (``cfg.loss == "population"``, spec Y7).
    """
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a refimpl.yang2024 Config (yang2024.preset(...)), got {type(cfg).__name__}")
    V_all, Z_all = make_dictionary(cfg.K, cfg.d, cfg.m, seed, normalize_tokens=cfg.normalize_tokens)  # spec Y2
    return {"V_all": V_all, "Z_all": Z_all, "N": int(cfg.N), "tau": float(cfg.tau)}


def sample_batch(data: dict, n: int, rng, *, kind: str = "in") -> dict:
    """Draw ``n`` fresh prompts over the fixed dictionary (spec Y1, Y3, Y4).

    Each prompt draws a task λ and noise ε_k ~ N(0, τ I_m); its labels are y_k = λᵀ(z_k + ε_k).
    The same numbers as ``sample_prompts(Z_all, N, tau, n, rng, kind=kind, keep_eps=False)``.

    Parameters
    ----------
    data : dict
        The dictionary of :func:`make_data` (``V_all``, ``Z_all``, ``N``, ``tau``).
    n : int
        Number of prompts, ≥ 1.
    rng : numpy.random.Generator
        The generator every draw uses (an int seed is accepted too).
    kind : {"in", "ood", "rademacher"}
        The task distribution (:func:`sample_tasks`): λ ~ N(0, I_m) (training, spec Y3),
        N(1_m, 4 I_m) (out of distribution) or Rademacher.

    Returns
    -------
    dict
        ``data``'s entries (``V_all`` (d, K), ``Z_all`` (m, K), ``N``, ``tau``) plus ``y`` float64
        (n, N), the labels of the N prompt tokens, and ``y_all`` float64 (n, K), the labels of all
        K tokens (the targets of the sample loss).

    Raises
    ------
    TypeError, ValueError
        If ``data`` is not the dict of :func:`make_data`, or for a bad ``n`` or ``kind``.
    """
    if not hasattr(data, "keys"):
        raise TypeError(f"data must be the dict of make_data(cfg, seed), got {type(data).__name__}")
    missing = sorted({"V_all", "Z_all", "N", "tau"} - set(data))
    if missing:
        raise ValueError(f"data lacks {missing}: it must be the dict of make_data(cfg, seed)")
    if not (is_int(n) and n >= 1):
        raise ValueError(f"n must be an int ≥ 1, got {n!r}")
    rng = make_rng(rng, "rng")
    pr = sample_prompts(data["Z_all"], data["N"], data["tau"], n, rng, kind=kind, keep_eps=False)  # spec Y1
    return {"V_all": data["V_all"], "Z_all": data["Z_all"], "N": data["N"], "tau": data["tau"],
            "y": pr["y"], "y_all": pr["y_all"]}


def embedding(V_all, y) -> np.ndarray:
    """E = (E^P, E^Q) (d+1, K) for one prompt (spec Y4): E^P = [V; yᵀ], E^Q = [v_{N+1}..v_K; 0]."""
    V_all = check_array("V_all", V_all, ndim=2)
    y = check_array("y", y, ndim=1)
    d, K = V_all.shape
    E = np.zeros((d + 1, K))
    E[:d] = V_all
    E[d, : y.shape[0]] = y
    return E
