"""Numba kernels for the H-head softmax attention of spec Y5 and its backward (spec Y8).

Same math as :func:`refimpl.yang2024.model.attention_forward` / ``attention_backward``; the tests
prove the two paths agree (float64 to ~1e−12, float32 to ~1e−6 of each tensor's scale). Options
come from :mod:`refimpl.core.jit`. NaN and ±inf propagate as on the NumPy path (a non-finite
score makes its whole softmax column NaN on both).

**One dtype throughout.** The kernels are compiled for the parameters' dtype: float32
parameters are computed in float32 (sgemm, float32 exponentials and sums), float64 in float64;
nothing is cast.

**One head at a time.** Each head's four products are BLAS calls (``np.dot`` into reused
buffers) and everything between them is one fused pass over that head's (N, K) block while it
is still in cache: the column maxima, the exponentials (the vectorisable ``exp`` of
:mod:`refimpl.core.vmath`), the column sums, the normalisation and the head's share of Â in the
forward; ∇w, the softmax Jacobian and dP in the backward. Only S (H, N, K) is kept between the
two (the backward and ``aux["attn"]`` need it). Products ordered for the fewest flops with
N < d < K (Fig. 2: N = 30, d = 100, K = 200, H = 64):

====================================  =================================  =====================
product                               as                                 multiply-adds
====================================  =================================  =====================
T_h = Vᵀ Q_h              (N, d)      (N, d) @ (d, d) per head           H N d²
P_h = T_h Ṽ               (N, K)      (N, d) @ (d, K) per head           H N d K
M_h = dP_h Ṽᵀ             (N, d)      (N, K) @ (K, d) per head           H N K d
∇Q_h = V M_h              (d, d)      (d, N) @ (N, d) per head           H d N d
softmax, Â, ∇w, dP                    fused loops                        ~6 H N K (+ H N K exp)
====================================  =================================  =====================

Total 2 H N d (d + K) multiply-adds in BLAS — 1.152e8 (2.30e8 flops) at Fig. 2 — plus
O(H N K) = 3.8e5 exps and ~2.3e6 multiply-adds of elementwise work. (The other orders, e.g.
Vᵀ(Q_h Ṽ) or (V dP_h) Ṽᵀ, cost H d K (d + N) = 2.6e8 multiply-adds: 2.3× more.) Stacking the
heads into larger products (e.g. (H·N, d) @ (d, K)) was measured and is no faster with OpenBLAS
at these shapes (each per-head product already runs at 75–90% of the single-core dgemm rate), and
stacking Vᵀ Q_h or V M_h would need a transposed copy of Q or ∇Q. The FLOP count of a whole
training step is ``benchmarks/flops.py``; measured times are ``refimpl bench``.

**Threads** (``parallel=True``, ``loss_and_grads(..., backend="numba_parallel")``): the heads are
split into one contiguous chunk per Numba thread, each running the same per-head code with
single-threaded BLAS; each chunk's share of Â is kept apart and the shares are added in chunk
order (deterministic for a given thread count); S, ∇Q and ∇w are per head, so their bits do not
depend on the split (∇ depends on Â through the loss, so it inherits Â's rounding).

Every wrapper checks the shapes it indexes (O(1), no value scan) before calling a kernel, also
on the unchecked path of ``loss_and_grads(..., check=False)``: a wrong-shaped array raises
``ValueError`` instead of being read out of bounds.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from refimpl.core.arrays import check_shape
from refimpl.core.jit import blas_single_threaded, njit
from refimpl.core.vmath import exp


@njit
def _forward_heads(h0, h1, Q, w, V_all, Vt, S, A_hat):
    """Heads h0 ≤ h < h1: S_h ← softmax over n of Vᵀ Q_h Ṽ (spec Y5) and A_hat += S_h diag(w_h), in
    head order; ``Vt`` = Vᵀ (N, d) contiguous; every array of one dtype."""
    d = Q.shape[1]
    K = V_all.shape[1]
    N = Vt.shape[0]
    T = np.empty((N, d), Q.dtype)  # (N, d)  Vᵀ Q_h
    mx = np.empty(K, Q.dtype)
    tot = np.empty(K, Q.dtype)
    one = np.ones(1, Q.dtype)[0]  # 1 in the kernel's dtype (a float32 kernel never widens to float64)
    for h in range(h0, h1):
        Sh = S[h]  # (N, K)
        np.dot(Vt, Q[h], T)  # (N, d)  Vᵀ Q_h
        np.dot(T, V_all, Sh)  # (N, K)  spec Y5: P_h = Vᵀ Q_h Ṽ
        # softmax over the N rows of each column (spec Y5), max subtracted; k innermost (SIMD)
        for k in range(K):
            mx[k] = Sh[0, k]
        for n in range(1, N):
            for k in range(K):
                v = Sh[n, k]
                if v > mx[k] or v != v:  # a NaN wins, as in np.max
                    mx[k] = v
        tot[:] = 0
        for n in range(N):  # column sums in row order (one exp call site: Numba inlines it)
            for k in range(K):
                e = exp(Sh[n, k] - mx[k])
                Sh[n, k] = e
                tot[k] += e
        for k in range(K):
            tot[k] = one / tot[k]  # K divisions instead of N K (≤ 1 ulp from e / Σ e)
        wh = w[h]
        for n in range(N):
            for k in range(K):
                s = Sh[n, k] * tot[k]  # spec Y5: softmax
                Sh[n, k] = s
                A_hat[n, k] += s * wh[k]  # spec Y5: Â = Σ_h S_h diag(w_h)


@njit
def _forward(Q, w, V_all, Vt, S, A_hat):
    """S (H, N, K) and Â (N, K) of spec Y5, the heads in order."""
    A_hat[:, :] = 0
    _forward_heads(0, Q.shape[0], Q, w, V_all, Vt, S, A_hat)


@njit(parallel=True)
def _forward_parallel(Q, w, V_all, Vt, S, A_hat, n_threads):
    """:func:`_forward` with the heads split into one contiguous chunk per Numba thread, each
    chunk's share of Â kept apart and the shares added in chunk order (deterministic for a given
    thread count); S is the same as :func:`_forward`'s."""
    H = Q.shape[0]
    nc = max(1, min(H, n_threads))
    parts = np.zeros((nc, A_hat.shape[0], A_hat.shape[1]), A_hat.dtype)
    for t in prange(nc):
        _forward_heads(t * H // nc, (t + 1) * H // nc, Q, w, V_all, Vt, S, parts[t])
    A_hat[:, :] = parts[0]
    for t in range(1, nc):
        A_hat += parts[t]


@njit
def _backward_heads(h0, h1, dA, S, w, V, V_allT, dQ, dw):
    """∇Q_h and ∇w_h of Σ dA ⊙ Â (spec Y8) for heads h0 ≤ h < h1, written into ``dQ`` and ``dw``;
    ``V`` (d, N) and ``V_allT`` = Ṽᵀ (K, d) contiguous."""
    _, N, K = S.shape
    d = V.shape[0]
    dP = np.empty((N, K), S.dtype)  # (N, K)  ∂/∂P_h
    M = np.empty((N, d), S.dtype)  # (N, d)  dP_h Ṽᵀ
    sd = np.empty(K, S.dtype)  # Σ_n S_h dS_h per column
    for h in range(h0, h1):
        Sh = S[h]
        wh = w[h]
        g = dw[h]  # ∂/∂w_{h,k} = s_kᵀ dâ_k   spec Y8
        for k in range(K):
            s = Sh[0, k]
            g[k] = s * dA[0, k]
            sd[k] = s * (dA[0, k] * wh[k])
        for n in range(1, N):  # column sums in row order
            for k in range(K):
                s = Sh[n, k]
                g[k] += s * dA[n, k]
                sd[k] += s * (dA[n, k] * wh[k])
        for n in range(N):  # dS = dÂ diag(w_h);  dP = S ⊙ (dS − Σ_n S dS)   spec Y8
            for k in range(K):
                dP[n, k] = Sh[n, k] * (dA[n, k] * wh[k] - sd[k])
        np.dot(dP, V_allT, M)  # (N, d)  dP_h Ṽᵀ
        np.dot(V, M, dQ[h])  # (d, d)  spec Y8: ∇Q_h = V (dP_h Ṽᵀ)


@njit
def _backward(dA, S, w, V, V_allT, dQ, dw):
    """∇Q (H, d, d) and ∇w (H, K) of spec Y8, the heads in order."""
    _backward_heads(0, S.shape[0], dA, S, w, V, V_allT, dQ, dw)


@njit(parallel=True)
def _backward_parallel(dA, S, w, V, V_allT, dQ, dw, n_threads):
    """:func:`_backward` with the heads split over the Numba threads (each head's gradients are its
    own: the same bits as :func:`_backward` for any thread count)."""
    H = S.shape[0]
    nc = max(1, min(H, n_threads))
    for t in prange(nc):
        _backward_heads(t * H // nc, (t + 1) * H // nc, dA, S, w, V, V_allT, dQ, dw)


def _check_attention(Q, w, V_all, N: int) -> tuple[int, int, int]:
    """O(1) shape guard of the kernels' inputs; returns (H, d, K)."""
    check_shape("params['Q']", Q, (None, None, None))
    H, d, _ = Q.shape
    check_shape("params['Q']", Q, (H, d, d))
    check_shape("batch['V_all']", V_all, (d, None))
    K = V_all.shape[1]
    check_shape("params['w']", w, (H, K))
    if not 1 <= N <= K:
        raise ValueError(f"batch['N'] must be an int with 1 ≤ N ≤ K = {K}, got {N!r}")
    return H, d, K


def attention_forward(Q, w, V_all, N: int, parallel: bool = False):
    """Â (N, K) and S (H, N, K) of spec Y5, in Q's dtype (w and V_all are converted to it).
    ``parallel``: the heads split over Numba's threads (BLAS single-threaded inside)."""
    N = int(N)
    dt = np.asarray(Q).dtype if np.asarray(Q).dtype in (np.float32, np.float64) else np.dtype(np.float64)
    f = lambda a: np.ascontiguousarray(a, dtype=dt)  # noqa: E731
    Q, w, V_all = f(Q), f(w), f(V_all)
    H, d, K = _check_attention(Q, w, V_all, N)
    S = np.empty((H, N, K), dt)
    A_hat = np.empty((N, K), dt)
    Vt = np.ascontiguousarray(V_all[:, :N].T)
    if parallel:
        with blas_single_threaded():
            _forward_parallel(Q, w, V_all, Vt, S, A_hat, numba.get_num_threads())
    else:
        _forward(Q, w, V_all, Vt, S, A_hat)
    return A_hat, S


def attention_backward(dA, S, w, V_all, N: int, parallel: bool = False):
    """(∇Q (H, d, d), ∇w (H, K)) of Σ dA ⊙ Â (spec Y8), in S's dtype. ``parallel``: the heads
    split over Numba's threads (the same bits)."""
    N = int(N)
    dt = np.asarray(S).dtype if np.asarray(S).dtype in (np.float32, np.float64) else np.dtype(np.float64)
    f = lambda a: np.ascontiguousarray(a, dtype=dt)  # noqa: E731
    dA, S, w, V_all = f(dA), f(S), f(w), f(V_all)
    check_shape("batch['V_all']", V_all, (None, None))
    d, K = V_all.shape
    check_shape("params['w']", w, (None, K))
    H = w.shape[0]
    if not 1 <= N <= K:
        raise ValueError(f"batch['N'] must be an int with 1 ≤ N ≤ K = {K}, got {N!r}")
    check_shape("attn", S, (H, N, K))
    check_shape("dA_hat", dA, (N, K))
    dQ = np.empty((H, d, d), dt)
    dw = np.empty((H, K), dt)
    args = (dA, S, w, np.ascontiguousarray(V_all[:, :N]), np.ascontiguousarray(V_all.T), dQ, dw)
    if parallel:
        with blas_single_threaded():
            _backward_parallel(*args, numba.get_num_threads())
    else:
        _backward(*args)
    return dQ, dw
