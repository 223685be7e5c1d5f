"""Data model of spec H (H1–H3): orthonormal features, feature probabilities, linear tasks.

Glossary: V (d, K) orthonormal features v_k as columns; p (K,); a prompt has N tokens x_i and a
query x_q, each one of the features drawn i.i.d. from p (spec H1); a fresh task w ~ N(0, I_d) per
prompt, labels y_i = ⟨w, x_i⟩, y_q = ⟨w, x_q⟩, no noise (spec H2). Batches are dicts

    X (B, N, d)   xq (B, d)   w (B, d)   y (B, N)   yq (B,)   idx (B, N) int   kq (B,) int

(``idx``/``kq``: which feature each token / the query is). The embedding E (spec H3) is built only
by :func:`embedding` for the full-matrix form of the model.

The contract's pair: :func:`make_data` (the fixed objects: features V, probabilities p, prompt
length N, as a frozen :class:`Data`) and :func:`sample_batch` (fresh prompts from an explicit
Generator). :func:`sample_prompts` is the same draw from (V, p, N) directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refimpl.core.arrays import check_array, is_int
from refimpl.core.rng import make_rng, spawn
from refimpl.huang2023.config import Config


@dataclass(frozen=True)
class Data:
    """The fixed objects of the data model (spec H1): V (d, K) orthonormal features, p (K,), N."""

    V: np.ndarray
    p: np.ndarray
    N: int

    @property
    def d(self) -> int:
        return int(self.V.shape[0])

    @property
    def K(self) -> int:
        return int(self.V.shape[1])


def streams(seed) -> list[np.random.Generator]:
    """The two independent streams of a run from ``seed``: features (``make_data``) and the
    Monte-Carlo count vectors of ``train`` (spec H8 (b))."""
    return spawn(make_rng(seed), 2)


def data_from_rng(cfg, rng: np.random.Generator) -> Data:
    """:class:`Data` of ``cfg`` with the features drawn from ``rng``."""
    V = make_features(cfg.dim, cfg.K, rng)  # (d, K)  spec H1
    return Data(V=V, p=cfg.p(), N=int(cfg.N))


def make_data(cfg, seed) -> Data:
    """The fixed objects of the data model (spec H1): features, their probabilities, the prompt length.

    Parameters
    ----------
    cfg : refimpl.huang2023.config.Config
        Reads ``K``, ``d`` (None: d = K), ``N``, ``p_kind`` and ``p1``.
    seed : int or numpy.random.Generator
        The run's seed; the features are drawn from the first of :func:`streams`, i.e. they are
        the features ``refimpl.huang2023.train(cfg, seed)`` uses.

    Returns
    -------
    Data
        ``V`` float64 (d, K), orthonormal features v_k as columns (sign-fixed QR of a Gaussian);
        ``p`` float64 (K,), the feature probabilities; ``N`` (int), the prompt length.
    """
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a huang2023 Config, got {type(cfg).__name__}")
    return data_from_rng(cfg, streams(seed)[0])


def sample_batch(data: Data, n: int, rng) -> dict:
    """Draw ``n`` fresh prompts (spec H1–H2): N tokens and a query, each a feature drawn i.i.d. from
    p, and a fresh task w ~ N(0, I_d) per prompt; labels y_i = ⟨w, x_i⟩, no noise.

    Parameters
    ----------
    data : Data
        The fixed objects of :func:`make_data`.
    n : int
        Number of prompts, ≥ 1.
    rng : numpy.random.Generator
        The generator every draw uses.

    Returns
    -------
    dict
        float64 ``X`` (n, N, d) the prompt tokens, ``xq`` (n, d) the query, ``w`` (n, d) the
        tasks, ``y`` (n, N) the token labels, ``yq`` (n,) the query label; int64 ``idx`` (n, N)
        and ``kq`` (n,), which feature each token and the query is.

    Raises
    ------
    TypeError
        If ``data`` is not a :class:`Data` record or ``rng`` not a Generator.
    """
    if not isinstance(data, Data):
        raise TypeError(f"data must be a huang2023 Data record (make_data), got {type(data).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    if not (is_int(n) and n >= 1):
        raise ValueError(f"n must be an int ≥ 1, got {n!r}")
    return sample_prompts(data.V, data.p, data.N, n, rng)


def make_features(d: int, K: int, seed, basis: str = "random") -> np.ndarray:
    """V (d, K) with orthonormal columns (spec H1): QR of a Gaussian ("random") or e_1..e_K ("standard")."""
    if not (isinstance(K, (int, np.integer)) and K >= 1):
        raise ValueError(f"K must be an int ≥ 1, got {K!r}")
    if not (isinstance(d, (int, np.integer)) and d >= K):
        raise ValueError(f"d must be an int ≥ K = {K}, got {d!r}")
    if basis == "standard":
        return np.eye(d, K)
    if basis != "random":
        raise ValueError(f"basis must be 'random' or 'standard', got {basis!r}")
    rng = make_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, K)))  # (d, K)
    return q * np.sign(np.diag(r))[None, :]  # sign-fixed: a deterministic function of the draw


def check_p(p, K: int | None = None) -> np.ndarray:
    """Validate probabilities p (K,): non-negative, summing to 1."""
    p = check_array("p", p, ndim=1)
    if K is not None and p.shape[0] != K:
        raise ValueError(f"p must have shape ({K},), got {p.shape}")
    if np.any(p < 0) or abs(p.sum() - 1.0) > 1e-12:
        raise ValueError(f"p must be non-negative and sum to 1, got {p} (sum {p.sum()!r})")
    return p


def sample_prompts(V, p, N: int, B: int, seed) -> dict:
    """B materialised prompts of length N (spec H1–H2): tokens and query i.i.d. from p, w ~ N(0, I_d)."""
    V = check_array("V", V, ndim=2)
    d, K = V.shape
    p = check_p(p, K)
    if not (isinstance(N, (int, np.integer)) and N >= 1):
        raise ValueError(f"N must be an int ≥ 1, got {N!r}")
    if not (isinstance(B, (int, np.integer)) and B >= 1):
        raise ValueError(f"B must be an int ≥ 1, got {B!r}")
    rng = make_rng(seed)
    idx = rng.choice(K, size=(B, N), p=p)  # (B, N)   spec H1: x_i ~ p i.i.d.
    kq = rng.choice(K, size=B, p=p)  # (B,)      spec H1: x_q ~ p
    w = rng.standard_normal((B, d))  # (B, d)    spec H2 [C]: w ~ N(0, I_d)
    X = V.T[idx]  # (B, N, d)
    xq = V.T[kq]  # (B, d)
    y = np.einsum("bnd,bd->bn", X, w)  # (B, N)    spec H2: y_i = ⟨w, x_i⟩
    yq = np.einsum("bd,bd->b", xq, w)  # (B,)      y_q = ⟨w, x_q⟩
    return {"X": X, "xq": xq, "w": w, "y": y, "yq": yq, "idx": idx, "kq": kq}


def prompts_from_counts(V, counts, kq, w=None) -> dict:
    """Materialise prompts from count vectors (spec H7/H8 (d)): prompt b holds counts[b, m] copies
    of v_m (in feature order) and the query v_{kq[b]}. ``counts`` (B, K) ints with equal row sums
    N. Labels use ``w`` (B, d) if given, else w = 0 (the E_w loss does not need labels)."""
    V = check_array("V", V, ndim=2)
    d, K = V.shape
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != K or np.any(counts < 0):
        raise ValueError(f"counts must be non-negative ints of shape (B, {K}), got shape {counts.shape}")
    N = int(counts[0].sum())
    if N < 1 or np.any(counts.sum(axis=1) != N):
        raise ValueError("counts must have equal row sums N ≥ 1")
    kq = np.asarray(kq)
    if kq.shape != (counts.shape[0],) or np.any((kq < 0) | (kq >= K)):
        raise ValueError(f"kq must be ints in [0, {K}) of shape ({counts.shape[0]},)")
    B = counts.shape[0]
    idx = np.stack([np.repeat(np.arange(K), c) for c in counts])  # (B, N)
    X = V.T[idx]  # (B, N, d)
    xq = V.T[kq]  # (B, d)
    w = np.zeros((B, d)) if w is None else check_array("w", w, shape=(B, d))
    y = np.einsum("bnd,bd->bn", X, w)  # (B, N)
    yq = np.einsum("bd,bd->b", xq, w)  # (B,)
    return {"X": X, "xq": xq, "w": w, "y": y, "yq": yq, "idx": idx, "kq": kq}


def embedding(X, xq, y) -> np.ndarray:
    """E (B, d+1, N+1) = [x_1 … x_N x_q; y_1 … y_N 0] (spec H3)."""
    B, N, d = X.shape
    E = np.zeros((B, d + 1, N + 1))
    E[:, :d, :N] = np.transpose(X, (0, 2, 1))
    E[:, :d, N] = xq
    E[:, d, :N] = y
    return E
