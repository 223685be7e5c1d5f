"""Numba kernels for the H-head softmax attention of spec Y5 and its backward (spec Y8).

Same math as :mod:`refimpl.yang2024.model` (forward / backward); the tests prove the two paths
agree to ~1e−12. Options come from :mod:`refimpl.core.jit`.

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
Vᵀ(Q_h Ṽ) or (V dP_h) Ṽᵀ, cost H d K (d + N) = 2.6e8 multiply-adds: 2.3× more.)
"""

from __future__ import annotations

import numpy as np

from refimpl.core.jit import njit


# multiply-adds per call, for the benchmark's FLOP count (see the table above)
def flops(H: int, N: int, d: int, K: int) -> dict:
    """Floating-point operations (2 per multiply-add) of one forward and one backward call."""
    gemm = 2 * H * N * d * (d + K)  # T = VᵀQ_h and P = T Ṽ (forward); M = dP Ṽᵀ and V M_h (backward)
    return {"forward": gemm + 4 * H * N * K, "backward": gemm + 6 * H * N * K}


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


@njit
def _adam(p, g, m, v, lr, b1, b2, eps, c1, c2):
    pf, gf, mf, vf = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    for i in range(pf.size):
        mi = b1 * mf[i] + (1 - b1) * gf[i]
        vi = b2 * vf[i] + (1 - b2) * gf[i] ** 2
        mf[i] = mi
        vf[i] = vi
        pf[i] -= lr * (mi / c1) / (np.sqrt(vi / c2) + eps)


def adam_update(p, g, m, v, t: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
    """One Adam step (Kingma & Ba, bias-corrected; spec Y9 [P]) in place on C-contiguous float64
    ``p``, moments ``m``, ``v``, with gradient ``g`` at step ``t`` ≥ 1 — the update of
    :func:`refimpl.yang2024.train.run_adam` in one pass over memory instead of ~10 NumPy
    temporaries (m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − lr m̂ / (√v̂ + ε))."""
    for name, a in (("p", p), ("m", m), ("v", v)):
        if not (isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.c_contiguous and a.flags.writeable):
            raise ValueError(f"{name} must be a writeable C-contiguous float64 array (updated in place)")
        if a.shape != p.shape:
            raise ValueError(f"{name} must have the shape of p {p.shape}, got {a.shape}")
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
        raise ValueError(f"t must be an int ≥ 1, got {t!r}")
    b1, b2 = float(betas[0]), float(betas[1])
    g = np.ascontiguousarray(g, dtype=np.float64)
    if g.shape != p.shape:
        raise ValueError(f"g must have the shape of p {p.shape}, got {g.shape}")
    _adam(p, g, m, v, float(lr), b1, b2, float(eps), 1 - b1 ** t, 1 - b2 ** t)
