"""Population dynamics of spec H: the reduction to C = Vᵀ Q V (H7) and the expectation over
prompts at four levels (H8).

Glossary (paper symbol → code name, shape); K features, M count vectors:

=============  ================  ==========  ===============================================
symbol         code              shape       meaning
=============  ================  ==========  ===============================================
C              ``C``             (K, K)      Vᵀ Q V; row = key feature, column = query feature
A_k, B_{k,n}   ``C[k, k]``,      scalars     A_k = C_{k,k}, B_{k,n} = C_{n,k} (spec H §1)
               ``C[n, k]``
n              ``counts``        (M, K)      feature counts of a prompt, Σ_m n_m = N
P(n)           ``weights``       (M,)        probability of each count vector (sums to 1)
α_{k→m}        ``alpha[k,c,m]``  (K, M, K)   attention mass of query k on feature m, prompt c
α_q            ``alpha_q[k,c]``  (K, M)      mass on the query column (``attend_to_query``)
L_k, L         ``Lk``, ``L``     (K,), ()    per-feature / population loss (spec H5)
=============  ================  ==========  ===============================================

The levels of spec H8: :func:`exact` (a) enumerates every count vector with its multinomial
weight; :func:`monte_carlo` (b) draws a fixed set of M count vectors (common random numbers: the
same set for every query feature and every step); :func:`mean_field` (c) is the N → ∞ limit
α_{k→m} ∝ p_m e^{C_{m,k}}, a single "count vector" n = p; :func:`run_gd_full_Q` (d) materialises the
prompts of an (a) or (b) population and runs GD on the full Q with the model's own gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from refimpl.core.arrays import check_array
from refimpl.core.rng import make_rng
from refimpl.huang2023.data import check_p, prompts_from_counts


@dataclass(frozen=True)
class Population:
    """A distribution over prompts: count vectors (M, K) with weights (M,), query k ~ p."""

    p: np.ndarray
    counts: np.ndarray
    weights: np.ndarray
    kind: str
    attend_to_query: bool = False

    @property
    def K(self) -> int:
        return self.p.shape[0]

    @property
    def M(self) -> int:
        return self.counts.shape[0]


def count_vectors(N: int, K: int) -> np.ndarray:
    """All count vectors n ∈ ℕ^K with Σ n = N, (C(N+K−1, K−1), K), lexicographic."""
    if N < 0 or K < 1:
        raise ValueError(f"need N ≥ 0 and K ≥ 1, got N={N}, K={K}")
    if K == 1:
        return np.array([[N]], dtype=np.int64)
    rows = [np.concatenate([np.full((r.shape[0], 1), a), r], axis=1)
            for a in range(N, -1, -1) for r in [count_vectors(N - a, K - 1)]]
    return np.concatenate(rows, axis=0).astype(np.int64)


def multinomial_weights(counts, p) -> np.ndarray:
    """P(n) = N!/Π n_m! Π p_m^{n_m} for each row of ``counts`` (M, K); the coefficient in exact
    integer arithmetic, so the weights carry only the rounding of the powers of p."""
    counts = np.asarray(counts, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    out = np.empty(counts.shape[0])
    for i, row in enumerate(counts):
        coef = math.factorial(int(row.sum()))
        for c in row:
            coef //= math.factorial(int(c))
        out[i] = float(coef) * float(np.prod(p ** row))
    return out


def exact(p, N: int, *, attend_to_query: bool = False) -> Population:
    """Level (a): every count vector with its multinomial weight (spec H8 (a))."""
    p = check_p(p)
    n_rows = math.comb(N + p.shape[0] - 1, p.shape[0] - 1)
    if n_rows > 5_000_000:
        raise ValueError(f"exact enumeration needs {n_rows} count vectors for N={N}, K={p.shape[0]}; "
                         "use monte_carlo")
    counts = count_vectors(int(N), p.shape[0])
    return Population(p, counts.astype(float), multinomial_weights(counts, p), "exact", bool(attend_to_query))


def monte_carlo(p, N: int, M: int, seed, *, attend_to_query: bool = False) -> Population:
    """Level (b): M count vectors n ~ Mult(N, p), weight 1/M each, drawn once (spec H8 (b))."""
    p = check_p(p)
    if not (isinstance(M, (int, np.integer)) and M >= 1):
        raise ValueError(f"M must be an int ≥ 1, got {M!r}")
    rng = make_rng(seed)
    counts = rng.multinomial(int(N), p, size=int(M)).astype(float)  # (M, K)
    return Population(p, counts, np.full(int(M), 1.0 / M), "monte_carlo", bool(attend_to_query))


def mean_field(p) -> Population:
    """Level (c): N → ∞, α_{k→m} ∝ p_m e^{C_{m,k}} (spec H8 (c)); one count vector n = p."""
    p = check_p(p)
    return Population(p, p[None, :].copy(), np.ones(1), "mean_field", False)


def from_counts(p, counts, weights, *, attend_to_query: bool = False) -> Population:
    """A population from explicit count vectors and weights (e.g. a subset for tests)."""
    p = check_p(p)
    counts = check_array("counts", counts, shape=(None, p.shape[0]))
    weights = check_array("weights", weights, shape=(counts.shape[0],))
    return Population(p, counts, weights, "explicit", bool(attend_to_query))


# --------------------------------------------------------------------------------------------
# the reduced dynamics (spec H7)
# --------------------------------------------------------------------------------------------
def C_from_Q(Q, V) -> np.ndarray:
    """C = Vᵀ Q V (K, K) (spec H7)."""
    return V.T @ Q @ V


def Q_from_C(C, V) -> np.ndarray:
    """Q = V C Vᵀ (d, d): the Q inside the V block with Vᵀ Q V = C (spec H7)."""
    return V @ C @ V.T


def attention_masses(C, pop: Population):
    """α (K, M, K) with α[k, c, m] = α_{k→m} = n_m e^{C_{m,k}} / (Σ_j n_j e^{C_{j,k}} [+ e^{C_{k,k}}])
    (spec H7; the bracket with ``attend_to_query``), and α_q (K, M) the mass on the query column."""
    K = pop.K
    Ct = C.T  # (K, K)  row k = column k of C: logits of query k
    shift = Ct.max(axis=1, keepdims=True)  # (K, 1)  stable exponentials
    e = np.exp(Ct - shift)  # (K, K)  e[k, m] = e^{C_{m,k} − max}
    num = pop.counts[None, :, :] * e[:, None, :]  # (K, M, K)
    den = num.sum(axis=2)  # (K, M)
    eq = np.diag(e)[:, None] if pop.attend_to_query else np.zeros((K, 1))  # (K, 1)  query column
    den = den + eq
    return num / den[:, :, None], np.broadcast_to(eq, den.shape) / den


def loss_and_grad_C(C, pop: Population):
    """L, L_k (K,), ∇_C L (K, K) and E_n[α_{k→m}] (K, K) [k, m] (spec H5, H7).

    Per prompt with query k: E_w ℓ = ½[(1 − α_k)² + Σ_{m≠k} α_m²] and
    ∂ℓ/∂C_{m,k} = α_m[(α_m − 𝟙[m = k]) − (S₂ − α_k)], S₂ = Σ_j α_j²                       (spec H7)
    (with ``attend_to_query`` the query column adds −α_q (S₂ − α_k) to ∂ℓ/∂C_{k,k}).
    """
    K = pop.K
    alpha, alpha_q = attention_masses(C, pop)  # (K, M, K), (K, M)
    eye = np.eye(K)
    res = alpha - eye[:, None, :]  # (K, M, K)  u in feature coordinates: α_m − 𝟙[m = k]
    ell = 0.5 * np.sum(res * res, axis=2)  # (K, M)  spec H7: E_w ℓ
    S2 = np.sum(alpha * alpha, axis=2)  # (K, M)  S₂
    ak = np.einsum("kck->kc", alpha)  # (K, M)  α_k
    g = alpha * (res - (S2 - ak)[:, :, None])  # (K, M, K)  spec H7: ∂ℓ/∂C_{m,k}
    Lk = ell @ pop.weights  # (K,)  spec H5: L_k = E[ℓ | x_q = v_k]
    Gt = np.einsum("kcm,c->km", g, pop.weights)  # (K, K) [k, m]
    if pop.attend_to_query:
        Gt[np.arange(K), np.arange(K)] -= (alpha_q * (S2 - ak)) @ pop.weights
    G = (pop.p[:, None] * Gt).T  # (K, K) [m, k]  ∇_C L = p_k E_n[∂ℓ/∂C_{m,k}]
    Ealpha = np.einsum("kcm,c->km", alpha, pop.weights)  # (K, K) [k, m]
    return float(pop.p @ Lk), Lk, G, Ealpha  # spec H5: L = Σ_k p_k L_k


@dataclass
class Trajectory:
    """GD history; arrays indexed by the recorded steps ``t`` (T,)."""

    t: np.ndarray
    C: np.ndarray  # (T, K, K)
    L: np.ndarray  # (T,)
    Lk: np.ndarray  # (T, K)
    alpha: np.ndarray  # (T, K, K) E_n[α_{k→m}], [t, k, m]
    meta: dict = field(default_factory=dict)


def _record_steps(steps: int, record) -> np.ndarray:
    if record is None:
        return np.arange(steps + 1)
    r = np.unique(np.asarray(record, dtype=np.int64))
    if r.size and (r[0] < 0 or r[-1] > steps):
        raise ValueError(f"record steps must lie in [0, {steps}]")
    return r


def fast_backend() -> str:
    """"numba", or "numpy" when NUMBA_DISABLE_JIT is set (pure-Python kernels would be slow)."""
    from refimpl.core.jit import jit_disabled

    return "numpy" if jit_disabled() else "numba"


def run_gd(pop: Population, eta: float, steps: int, *, C0=None, record=None, backend: str = "numpy",
           columns=None) -> Trajectory:
    """GD on C (spec H5, H7): C ← C − η ∇_C L, from C⁰ = 0 (or ``C0``). Records C, L, L_k and
    E[α] at the steps in ``record`` (default every step 0..steps; values before the step).

    ``columns``: evolve just these query columns — exact, since the columns
    of C evolve independently (spec H9); the others stay at C0, their L_k and E[α] rows are 0 and
    L = Σ_{k in columns} p_k L_k."""
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
    if not (isinstance(steps, (int, np.integer)) and steps >= 0):
        raise ValueError(f"steps must be an int ≥ 0, got {steps!r}")
    K = pop.K
    C = np.zeros((K, K)) if C0 is None else check_array("C0", C0, shape=(K, K)).copy()
    rec = _record_steps(int(steps), record)
    if backend == "numba":
        from refimpl.huang2023.kernels import run_gd_numba

        Cs, L, Lk, Al = run_gd_numba(C, pop.p, pop.counts, pop.weights, float(eta), int(steps), rec,
                                     bool(pop.attend_to_query), columns)
        return Trajectory(rec, Cs, L, Lk, Al, dict(kind=pop.kind, M=pop.M, eta=eta))
    if backend != "numpy":
        raise ValueError(f"backend must be one of ['numpy', 'numba'], got {backend!r}")
    keep = np.zeros(K, dtype=bool)
    keep[np.arange(K) if columns is None else np.asarray(columns, dtype=np.int64)] = True
    Cs, L, Lk, Al = (np.zeros((rec.size, K, K)), np.zeros(rec.size), np.zeros((rec.size, K)),
                     np.zeros((rec.size, K, K)))
    j = 0
    for t in range(int(steps) + 1):
        if j >= rec.size:
            break
        L_t, Lk_t, G, Ea = loss_and_grad_C(C, pop)
        if columns is not None:  # only the chosen query columns move (spec H9: independent)
            G[:, ~keep] = 0.0
            Lk_t = np.where(keep, Lk_t, 0.0)
            Ea[~keep] = 0.0
            L_t = float(pop.p @ Lk_t)
        if rec[j] == t:
            Cs[j], L[j], Lk[j], Al[j] = C, L_t, Lk_t, Ea
            j += 1
        C = C - eta * G  # spec H5: GD with constant step η
    return Trajectory(rec, Cs, L, Lk, Al, dict(kind=pop.kind, M=pop.M, eta=eta))


# --------------------------------------------------------------------------------------------
# level (d): the literal model on materialised prompts
# --------------------------------------------------------------------------------------------
def materialise(V, pop: Population) -> tuple[dict, np.ndarray]:
    """Every (count vector, query) pair as a prompt: batch of M·K prompts and weights p_k P(n)."""
    if pop.kind == "mean_field":
        raise ValueError("a mean-field population has no finite prompts to materialise")
    counts = np.rint(pop.counts).astype(np.int64)
    M, K = counts.shape
    allc = np.repeat(counts, K, axis=0)  # (M·K, K)
    kq = np.tile(np.arange(K), M)  # (M·K,)
    batch = prompts_from_counts(V, allc, kq)
    wts = np.repeat(pop.weights, K) * pop.p[kq]  # (M·K,)  P(n) p_k
    return batch, wts


def run_gd_full_Q(V, pop: Population, eta: float, steps: int, *, Q0=None, backend: str = "numpy"):
    """Level (d): GD on the full Q with the model's E_w gradient (spec H6) over the materialised
    prompts of ``pop``. Returns ``(Q_final, L (steps+1,), Cs (steps+1, K, K))``."""
    from refimpl.huang2023.model import loss_and_grads

    batch, wts = materialise(V, pop)
    d = V.shape[0]
    Q = np.zeros((d, d)) if Q0 is None else np.array(Q0, dtype=float)
    L = np.zeros(steps + 1)
    Cs = np.zeros((steps + 1, pop.K, pop.K))
    for t in range(steps + 1):
        L[t], g = loss_and_grads({"Q": Q}, batch, backend, loss="Ew", weights=wts,
                                 attend_to_query=pop.attend_to_query, check=(t == 0))
        Cs[t] = C_from_Q(Q, V)
        if t < steps:
            Q = Q - eta * g["Q"]  # spec H5
    return Q, L, Cs
