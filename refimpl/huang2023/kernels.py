"""Numba kernels for spec H: the same math as model.py / population.py in fused loops.

``loss_and_grads_numba``: per-prompt forward (scores, softmax) and backward of either loss
(spec H5 sample loss or spec H6 E_w loss) accumulated into ∇_Q. ``run_gd_numba``: GD on C with
the reduced gradient of spec H7 over a population of count vectors. Tests prove both equal the
NumPy path to ~1e−12.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.jit import njit


@njit
def _fused(Q, X, xq, y, yq, wts, ew, attend_to_query):
    B, N, d = X.shape
    J = N + 1 if attend_to_query else N
    dQ = np.zeros((d, d))
    attn = np.zeros((B, J))
    extra = np.zeros((B, d)) if ew else np.zeros((B, 1))
    qx = np.zeros(d)
    s = np.zeros(J)
    c = np.zeros(J)
    m = np.zeros(d)
    kd = np.zeros(d)
    total = 0.0
    for b in range(B):
        for a in range(d):  # Q x_q
            acc = 0.0
            for e in range(d):
                acc += Q[a, e] * xq[b, e]
            qx[a] = acc
        smax = -np.inf
        for j in range(J):  # spec H4: s_j = x_jᵀ Q x_q
            acc = 0.0
            if j < N:
                for a in range(d):
                    acc += X[b, j, a] * qx[a]
            else:
                for a in range(d):
                    acc += xq[b, a] * qx[a]
            s[j] = acc
            if acc > smax:
                smax = acc
        z = 0.0
        for j in range(J):
            s[j] = np.exp(s[j] - smax)
            z += s[j]
        for j in range(J):
            attn[b, j] = s[j] / z  # spec H4: softmax
        if ew:
            for a in range(d):
                acc = 0.0
                for i in range(N):
                    acc += attn[b, i] * X[b, i, a]
                m[a] = acc
                extra[b, a] = acc - xq[b, a]  # spec H6: u
            lb = 0.0
            for a in range(d):
                lb += extra[b, a] * extra[b, a]
            total += wts[b] * 0.5 * lb  # spec H6: ½‖u‖²
            for j in range(J):  # ∂/∂attn_j = w_b ⟨u, val_j⟩
                acc = 0.0
                if j < N:
                    for a in range(d):
                        acc += extra[b, a] * X[b, j, a]
                c[j] = wts[b] * acc
        else:
            yh = 0.0
            for i in range(N):
                yh += attn[b, i] * y[b, i]
            extra[b, 0] = yh
            diff = yh - yq[b]
            total += wts[b] * 0.5 * diff * diff  # spec H5
            for j in range(J):
                c[j] = wts[b] * diff * (y[b, j] if j < N else 0.0)
        cs = 0.0
        for j in range(J):
            cs += attn[b, j] * c[j]
        for a in range(d):
            kd[a] = 0.0
        for j in range(J):  # softmax backward, then Σ_j ds_j key_j
            ds = attn[b, j] * (c[j] - cs)
            if j < N:
                for a in range(d):
                    kd[a] += ds * X[b, j, a]
            else:
                for a in range(d):
                    kd[a] += ds * xq[b, a]
        for a in range(d):  # spec H6: ∇_Q += (Σ_j ds_j key_j) x_qᵀ
            for e in range(d):
                dQ[a, e] += kd[a] * xq[b, e]
    return total, dQ, attn, extra


def loss_and_grads_numba(Q, X, xq, y, yq, wts, ew: bool, attend_to_query: bool):
    """(loss, ∇_Q, attn (B, J), u (B, d) or ŷ (B,)) — the Numba twin of model.loss_and_grads."""
    f = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    total, dQ, attn, extra = _fused(f(Q), f(X), f(xq), f(y), f(yq), f(wts), bool(ew), bool(attend_to_query))
    return total, dQ, attn, (extra if ew else extra[:, 0])


@njit
def _loss_grad_C(C, p, counts, weights, attend_to_query, G, Lk, Ea, cols):
    K = C.shape[0]
    M = counts.shape[0]
    e = np.zeros(K)
    al = np.zeros(K)
    G[:, :] = 0.0
    Lk[:] = 0.0
    Ea[:, :] = 0.0
    for k in cols:
        mx = -np.inf
        for m in range(K):
            if C[m, k] > mx:
                mx = C[m, k]
        for m in range(K):
            e[m] = np.exp(C[m, k] - mx)
            G[m, k] = 0.0
            Ea[k, m] = 0.0
        Lk[k] = 0.0
        gq = 0.0
        for c in range(M):
            den = e[k] if attend_to_query else 0.0
            for m in range(K):
                den += counts[c, m] * e[m]
            S2 = 0.0
            for m in range(K):
                al[m] = counts[c, m] * e[m] / den  # spec H7: α_{k→m}
                S2 += al[m] * al[m]
            ak = al[k]
            ell = 0.5 * (S2 - 2.0 * ak + 1.0)  # spec H7: ½[(1 − α_k)² + Σ_{m≠k} α_m²]
            wc = weights[c]
            Lk[k] += wc * ell
            for m in range(K):
                r = al[m] - (1.0 if m == k else 0.0)
                G[m, k] += wc * al[m] * (r - (S2 - ak))  # spec H7
                Ea[k, m] += wc * al[m]
            if attend_to_query:
                gq -= wc * (e[k] / den) * (S2 - ak)
        G[k, k] += gq
        for m in range(K):
            G[m, k] *= p[k]
    L = 0.0
    for k in cols:
        L += p[k] * Lk[k]
    return L


@njit
def _run_gd(C0, p, counts, weights, eta, steps, rec, attend_to_query, cols):
    K = C0.shape[0]
    R = rec.shape[0]
    Cs = np.zeros((R, K, K))
    Ls = np.zeros(R)
    Lks = np.zeros((R, K))
    Als = np.zeros((R, K, K))
    C = C0.copy()
    G = np.zeros((K, K))
    Lk = np.zeros(K)
    Ea = np.zeros((K, K))
    j = 0
    for t in range(steps + 1):
        if j >= R:
            break
        L = _loss_grad_C(C, p, counts, weights, attend_to_query, G, Lk, Ea, cols)
        if rec[j] == t:
            Cs[j] = C
            Ls[j] = L
            Lks[j] = Lk
            Als[j] = Ea
            j += 1
        for a in range(K):
            for b in range(K):
                C[a, b] -= eta * G[a, b]  # spec H5
    return Cs, Ls, Lks, Als


def run_gd_numba(C0, p, counts, weights, eta, steps, rec, attend_to_query, cols=None):
    """GD on C over a population; ``cols``: the query columns to evolve (default all; the
    columns are independent, spec H9, and the others stay at C0 with L_k = 0 recorded)."""
    f = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    K = C0.shape[0]
    cols = np.arange(K, dtype=np.int64) if cols is None else np.ascontiguousarray(cols, dtype=np.int64)
    return _run_gd(f(C0), f(p), f(counts), f(weights), float(eta), int(steps),
                   np.ascontiguousarray(rec, dtype=np.int64), bool(attend_to_query), cols)
