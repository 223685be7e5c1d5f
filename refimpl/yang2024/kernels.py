"""Numba kernels for the H-head softmax attention of spec Y5 and its backward (spec Y8).

Same math as :mod:`refimpl.yang2024.model` (forward / backward), one fused loop per (head, column);
the tests prove the two paths agree to ~1e−12. Options come from :mod:`refimpl.core.jit`.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.jit import njit


@njit
def _forward(Q, w, V_all, N):
    H, d, _ = Q.shape
    K = V_all.shape[1]
    S = np.empty((H, N, K))  # (H, N, K)
    A_hat = np.zeros((N, K))  # (N, K)
    VtQ = np.empty((N, d))  # Vᵀ Q_h
    p = np.empty(N)
    for h in range(H):
        for n in range(N):
            for b in range(d):
                acc = 0.0
                for a in range(d):
                    acc += V_all[a, n] * Q[h, a, b]
                VtQ[n, b] = acc
        for k in range(K):
            mx = -np.inf
            for n in range(N):  # p_n = v_nᵀ Q_h v_k   spec Y5
                acc = 0.0
                for b in range(d):
                    acc += VtQ[n, b] * V_all[b, k]
                p[n] = acc
                if acc > mx:
                    mx = acc
            tot = 0.0
            for n in range(N):  # softmax over the N prompt rows   spec Y5
                p[n] = np.exp(p[n] - mx)
                tot += p[n]
            for n in range(N):
                s = p[n] / tot
                S[h, n, k] = s
                A_hat[n, k] += w[h, k] * s  # spec Y5: Â = Σ_h S_h diag(w_h)
    return A_hat, S


@njit
def _backward(dA, S, w, V_all, N):
    H, _, K = S.shape
    d = V_all.shape[0]
    dQ = np.zeros((H, d, d))
    dw = np.zeros((H, K))
    M = np.zeros((N, d))  # dP_h Ṽᵀ
    for h in range(H):
        M[:, :] = 0.0
        for k in range(K):
            g = 0.0  # ∂/∂w_{h,k} = s_kᵀ dâ_k   spec Y8
            for n in range(N):
                g += S[h, n, k] * dA[n, k]
            dw[h, k] = g
            for n in range(N):  # dP = w_{h,k} (diag(s) − s sᵀ) dâ_k   spec Y8
                dp = w[h, k] * S[h, n, k] * (dA[n, k] - g)
                if dp != 0.0:
                    for e in range(d):
                        M[n, e] += dp * V_all[e, k]
        for a in range(d):  # ∇Q_h = V (dP_h Ṽᵀ)   spec Y8
            for n in range(N):
                van = V_all[a, n]
                for e in range(d):
                    dQ[h, a, e] += van * M[n, e]
    return dQ, dw


def attention_forward(Q, w, V_all, N: int):
    """Â (N, K) and S (H, N, K) of spec Y5."""
    return _forward(np.ascontiguousarray(Q, dtype=np.float64), np.ascontiguousarray(w, dtype=np.float64),
                    np.ascontiguousarray(V_all, dtype=np.float64), int(N))


def attention_backward(dA, S, w, V_all, N: int):
    """(∇Q (H, d, d), ∇w (H, K)) of Σ dA ⊙ Â (spec Y8)."""
    return _backward(np.ascontiguousarray(dA, dtype=np.float64), np.ascontiguousarray(S),
                     np.ascontiguousarray(w, dtype=np.float64), np.ascontiguousarray(V_all, dtype=np.float64),
                     int(N))
