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
:func:`make_population` builds the level a :class:`~refimpl.huang2023.config.Config` names.

:func:`run_gd` and :func:`run_gd_full_Q` return the shared
:class:`refimpl.core.trajectory.Trajectory`: ``history`` {"step", "loss"} holds the loss before
each GD update, ``records`` {"step", "L", "Lk", "alpha", "C"} the recorded steps (``alpha`` is
E_n[α_{k→m}] (T, K, K) [t, k, m]), ``params`` the final {"C"} (or {"Q"}). A non-finite C, loss or
gradient raises :class:`refimpl.core.errors.NonFiniteError` naming the step, on both backends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from refimpl.core.arrays import check_array, check_choice
from refimpl.core.errors import NonFiniteError, check_finite
from refimpl.core.rng import make_rng
from refimpl.core.trajectory import Trajectory
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


def make_population(cfg, seed) -> Population:
    """The population of ``cfg.population`` (spec H8 (a)–(c)) for p = ``cfg.p()``, N = ``cfg.N``;
    the Monte-Carlo set (``cfg.M`` count vectors) is drawn from ``seed``."""
    check_choice("cfg.population", cfg.population, ("exact", "monte_carlo", "mean_field"))
    if cfg.population == "exact":
        return exact(cfg.p(), cfg.N, attend_to_query=cfg.attend_to_query)
    if cfg.population == "monte_carlo":
        return monte_carlo(cfg.p(), cfg.N, cfg.M, seed, attend_to_query=cfg.attend_to_query)
    return mean_field(cfg.p())


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


_WHAT = {1: "params['C']", 2: "loss", 3: "grads['C']"}


def run_gd(pop: Population, eta: float, steps: int, *, C0=None, record=None, backend: str = "numpy",
           columns=None, progress: bool | None = False) -> Trajectory:
    """GD on C (spec H5, H7): C ← C − η ∇_C L, from C⁰ = 0 (or ``C0``). Records C, L, L_k and
    E[α] at the steps in ``record`` (default every step 0..steps; values before the step).

    The run stops at the last recorded step: ``history["loss"]`` holds L at every step before it,
    ``params["C"]`` is C there. ``columns``: evolve just these query columns — exact, since the
    columns of C evolve independently (spec H9); the others stay at C0, their L_k and E[α] rows
    are 0 and L = Σ_{k in columns} p_k L_k. ``progress``: a bar over the steps (NumPy backend;
    None: only on a terminal). Raises :class:`NonFiniteError` naming the step and the tensor
    (``params['C']``, ``loss``, ``grads['C']``) at the first non-finite one."""
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
    if not (isinstance(steps, (int, np.integer)) and steps >= 0):
        raise ValueError(f"steps must be an int ≥ 0, got {steps!r}")
    check_choice("backend", backend, ("numpy", "numba"))
    K = pop.K
    C = np.zeros((K, K)) if C0 is None else check_array("C0", C0, shape=(K, K)).copy()
    rec = _record_steps(int(steps), record)
    t0 = time.perf_counter()
    if backend == "numba":
        from refimpl.huang2023.kernels import run_gd_numba

        Cs, L, Lk, Al, Lh, bad_step, bad_what = run_gd_numba(C, pop.p, pop.counts, pop.weights, float(eta),
                                                             int(steps), rec, bool(pop.attend_to_query), columns)
        if bad_step >= 0:
            raise NonFiniteError(_WHAT[int(bad_what)], int(bad_step),
                                 hint=f"GD on C (spec H7) with eta={eta!r}, backend 'numba'")
    else:
        Cs, L, Lk, Al, Lh = _run_gd_numpy(C, pop, float(eta), int(steps), rec, columns, progress)
    last = int(rec[-1]) if rec.size else 0
    return Trajectory(
        model="huang2023", config=None, seed=None, params={"C": Cs[-1].copy() if rec.size else C},
        history={"step": np.arange(last), "loss": Lh[:last].copy()},
        records={"step": rec, "L": L, "Lk": Lk, "alpha": Al, "C": Cs},
        backend=backend, wall_s=time.perf_counter() - t0,
        extra={"kind": pop.kind, "M": pop.M, "eta": eta, "columns": None if columns is None else list(columns)},
    )


def _run_gd_numpy(C, pop: Population, eta: float, steps: int, rec, columns, progress):
    from tqdm.auto import tqdm

    K = pop.K
    keep = np.zeros(K, dtype=bool)
    keep[np.arange(K) if columns is None else np.asarray(columns, dtype=np.int64)] = True
    Cs, L, Lk, Al = (np.zeros((rec.size, K, K)), np.zeros(rec.size), np.zeros((rec.size, K)),
                     np.zeros((rec.size, K, K)))
    Lh = np.zeros(steps + 1)  # the loss before each step
    hint = f"GD on C (spec H7) with eta={eta!r}, backend 'numpy'"
    bar = tqdm(total=int(rec[-1]) + 1 if rec.size else 0, desc="GD on C", leave=False,
               disable=None if progress is None else not progress)
    j = 0
    with bar, np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked explicitly below
        for t in range(steps + 1):
            if j >= rec.size:
                break
            check_finite("params['C']", C, step=t, hint=hint)
            L_t, Lk_t, G, Ea = loss_and_grad_C(C, pop)
            if columns is not None:  # only the chosen query columns move (spec H9: independent)
                G[:, ~keep] = 0.0
                Lk_t = np.where(keep, Lk_t, 0.0)
                Ea[~keep] = 0.0
                L_t = float(pop.p @ Lk_t)
            Lh[t] = L_t
            check_finite("loss", L_t, step=t, hint=hint)
            check_finite("grads['C']", G, step=t, hint=hint)
            if rec[j] == t:
                Cs[j], L[j], Lk[j], Al[j] = C, L_t, Lk_t, Ea
                j += 1
            C = C - eta * G  # spec H5: GD with constant step η
            bar.update(1)
    return Cs, L, Lk, Al, Lh


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


def run_gd_full_Q(V, pop: Population, eta: float, steps: int, *, Q0=None, backend: str = "numpy") -> Trajectory:
    """Level (d): GD on the full Q with the model's E_w gradient (spec H6) over the materialised
    prompts of ``pop``. Returns a :class:`Trajectory` with ``params["Q"]`` after ``steps`` updates,
    ``history`` {"step", "loss"} (steps,) and ``records`` {"step", "L", "C"} at every step
    0..steps (C = Vᵀ Q V). Raises :class:`NonFiniteError` at the first non-finite loss or gradient."""
    from refimpl.huang2023.config import Config
    from refimpl.huang2023.model import check_batch, check_params, check_weights, loss_and_grads

    batch, wts = materialise(V, pop)
    d = V.shape[0]
    cfg = Config(K=pop.K, d=d, N=int(batch["X"].shape[1]), loss="Ew", attend_to_query=pop.attend_to_query)
    Q = np.zeros((d, d)) if Q0 is None else np.array(Q0, dtype=float)
    L = np.zeros(steps + 1)
    Cs = np.zeros((steps + 1, pop.K, pop.K))
    hint = f"GD on Q (spec H8 (d)) with eta={eta!r}, backend {backend!r}"
    # the inputs are validated once here; the loop's own checks name the step a number turns non-finite
    batch = check_batch(batch, check_params({"Q": Q})["Q"].shape[0])
    wts = check_weights(wts, batch["X"].shape[0], Q.dtype)
    t0 = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked explicitly below
        for t in range(steps + 1):
            L[t], g = loss_and_grads({"Q": Q}, batch, cfg, backend, weights=wts, check=False)
            check_finite("loss", L[t], step=t, hint=hint)
            check_finite("grads['Q']", g["Q"], step=t, hint=hint)
            Cs[t] = C_from_Q(Q, V)
            if t < steps:
                Q = Q - eta * g["Q"]  # spec H5
    return Trajectory(
        model="huang2023", config=cfg, seed=None, params={"Q": Q},
        history={"step": np.arange(steps), "loss": L[:steps].copy()},
        records={"step": np.arange(steps + 1), "L": L, "C": Cs},
        backend=backend, wall_s=time.perf_counter() - t0, extra={"kind": pop.kind, "M": pop.M, "eta": eta},
    )
