"""Numba kernels for the H-head softmax attention of spec Y5 and its backward (spec Y8).

Same math as :func:`refimpl.yang2024.model.attention_forward` / ``attention_backward``; the tests
prove the two paths agree to ~1e−12. Options come from :mod:`refimpl.core.jit`. NaN and ±inf
propagate as on the NumPy path (a non-finite score makes its whole softmax column NaN on both).

Every product with a weight is a 2-D BLAS dgemm (``np.dot`` on contiguous arrays), ordered for
the fewest flops with N < d < K (Fig. 2: N = 30, d = 100, K = 200, H = 64); the softmax and its
Jacobian run over (n, k) with k, the contiguous axis, innermost:

====================================  =================================  =====================
product                               as                                 multiply-adds
====================================  =================================  =====================
T_h = Vᵀ Q_h              (N, d)      H dgemms (N, d) @ (d, d)           H N d²
P = T Ṽ                   (H·N, K)    one dgemm, heads stacked           H N d K
M = dP Ṽᵀ                 (H·N, d)    one dgemm, heads stacked           H N K d
∇Q_h = V M_h              (d, d)      H dgemms (d, N) @ (N, d)           H d N d
softmax, Â, ∇w, dP                    fused loops                        ~4 H N K (+ H N K exp)
====================================  =================================  =====================

Total 2 H N d (d + K) multiply-adds in dgemm — 1.152e8 (2.30e8 flops) at Fig. 2 — plus
O(H N K) = 3.8e5 exps and ~1.5e6 multiply-adds of elementwise work. (The other orders, e.g.
Vᵀ(Q_h Ṽ) or (V dP_h) Ṽᵀ, cost H d K (d + N) = 2.6e8 multiply-adds: 2.3× more.) The FLOP count
of a whole training step is ``benchmarks/flops.py``; measured times are ``refimpl bench``.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.jit import njit


@njit
def _scores(Q, V_all, Vt):
    """P_h − max_n P_h (H, N, K), column maxima subtracted; ``Vt`` = Vᵀ (N, d) contiguous."""
    H, d, _ = Q.shape
    K = V_all.shape[1]
    N = Vt.shape[0]
    T = np.empty((H, N, d))  # (H, N, d)  Vᵀ Q_h
    for h in range(H):
        np.dot(Vt, Q[h], T[h])  # (N, d)  Vᵀ Q_h
    P = np.dot(T.reshape(H * N, d), V_all).reshape(H, N, K)  # (H, N, K)  spec Y5: P_h = Vᵀ Q_h Ṽ
    mx = np.empty(K)
    for h in range(H):  # softmax over the N rows of each column, max subtracted   spec Y5
        Ph = P[h]  # (N, K)
        mx[:] = Ph[0]
        for n in range(1, N):
            for k in range(K):
                if Ph[n, k] > mx[k]:
                    mx[k] = Ph[n, k]
        for n in range(N):
            for k in range(K):
                Ph[n, k] -= mx[k]
    return P


@njit
def _normalise(E, w):
    """S = E / Σ_n E in place (E = exp(P − max)) and Â = Σ_h S_h diag(w_h) (N, K)."""
    H, N, K = E.shape
    A_hat = np.zeros((N, K))  # (N, K)
    tot = np.empty(K)
    for h in range(H):
        Sh = E[h]  # (N, K)
        tot[:] = Sh[0]
        for n in range(1, N):
            for k in range(K):
                tot[k] += Sh[n, k]
        for n in range(N):
            for k in range(K):
                s = Sh[n, k] / tot[k]  # spec Y5: softmax
                Sh[n, k] = s
                A_hat[n, k] += s * w[h, k]  # spec Y5: Â = Σ_h S_h diag(w_h)
    return A_hat


@njit
def _backward(dA, S, w, V, V_allT):
    """(∇Q (H, d, d), ∇w (H, K)); ``V`` (d, N) and ``V_allT`` = Ṽᵀ (K, d) contiguous."""
    H, N, K = S.shape
    d = V.shape[0]
    dw = np.empty((H, K))  # (H, K)
    dP = np.empty((H, N, K))  # (H, N, K)
    for h in range(H):
        Sh = S[h]
        g = dw[h]  # ∂/∂w_{h,k} = s_kᵀ dâ_k   spec Y8
        g[:] = 0.0
        for n in range(N):
            for k in range(K):
                g[k] += Sh[n, k] * dA[n, k]
        for n in range(N):  # dP = w_{h,k} (diag(s) − s sᵀ) dâ_k   spec Y8
            for k in range(K):
                dP[h, n, k] = Sh[n, k] * (dA[n, k] * w[h, k] - g[k] * w[h, k])
    M = np.dot(dP.reshape(H * N, K), V_allT).reshape(H, N, d)  # (H, N, d)  dP_h Ṽᵀ
    dQ = np.empty((H, d, d))  # (H, d, d)
    for h in range(H):
        np.dot(V, M[h], dQ[h])  # spec Y8: ∇Q_h = V (dP_h Ṽᵀ)
    return dQ, dw


def attention_forward(Q, w, V_all, N: int):
    """Â (N, K) and S (H, N, K) of spec Y5."""
    V_all = np.ascontiguousarray(V_all, dtype=np.float64)
    S = _scores(np.ascontiguousarray(Q, dtype=np.float64), V_all, np.ascontiguousarray(V_all[:, : int(N)].T))
    np.exp(S, out=S)  # NumPy's SIMD exp: ~6× faster than the scalar libm call a Numba loop makes
    return _normalise(S, np.ascontiguousarray(w, dtype=np.float64)), S


def attention_backward(dA, S, w, V_all, N: int):
    """(∇Q (H, d, d), ∇w (H, K)) of Σ dA ⊙ Â (spec Y8)."""
    V_all = np.asarray(V_all, dtype=np.float64)
    return _backward(np.ascontiguousarray(dA, dtype=np.float64), np.ascontiguousarray(S),
                     np.ascontiguousarray(w, dtype=np.float64), np.ascontiguousarray(V_all[:, : int(N)]),
                     np.ascontiguousarray(V_all.T))
