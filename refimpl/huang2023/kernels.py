"""Numba kernels for spec H: the same math as model.py / population.py in fused loops.

``loss_and_grads_numba``: scores for all prompts (``_shifted_scores``), NumPy's SIMD exp, then
one loop per prompt for the softmax, either loss (spec H5 sample loss or spec H6 E_w loss) and its
backward (``_rest``); ∇_Q is one dgemm (Σ_j ds_j key_j for every prompt)ᵀ x_q at the end.
``run_gd_numba``: GD on C with the reduced gradient of spec H7 over a population of count
vectors; it stops at the first non-finite C, loss or gradient and reports the step. Tests prove
both equal the NumPy path to ~1e−12, and that NaN propagates as in NumPy (the maxima of the
stable softmax take a NaN like ``np.max``).

Cost (the FLOP counts are ``benchmarks/flops.py``): the ``loss_and_grads_numba`` step reads X
(B, N, d) — 2 MB at K = d = 10, N = 100, B = 256 — twice (scores; then Σ_j ds_j key_j), so it is
bound by memory bandwidth, not flops: one SIMD pass over X (np.sum) takes ~58 µs on the target
machine. ``_loss_grad_C`` per query column k and count vector: K exps' worth of work, ~6 K
multiply-adds.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.jit import njit
from refimpl.core.kernels import row_dots


@njit
def _key_sum(v, X, b, c, N):
    """v += Σ_{j<N} c_j X[b, j] (in order over j; four rows per pass over v)."""
    d = X.shape[2]
    j = 0
    while j + 4 <= N:
        c0, c1, c2, c3 = c[j], c[j + 1], c[j + 2], c[j + 3]
        for a in range(d):
            t = v[a]
            t += c0 * X[b, j, a]
            t += c1 * X[b, j + 1, a]
            t += c2 * X[b, j + 2, a]
            t += c3 * X[b, j + 3, a]
            v[a] = t
        j += 4
    while j < N:
        cj = c[j]
        for a in range(d):
            v[a] += cj * X[b, j, a]
        j += 1


@njit
def _shifted_scores(Q, X, xq, J):
    """s_j − max_j s_j (B, J), s_j = key_jᵀ Q x_q (spec H4); keys x_1..x_N [, x_q]."""
    B, N, d = X.shape
    qx = np.dot(xq, Q.T)  # (B, d)  Q x_q for every prompt, one dgemm
    S = np.empty((B, J))  # (B, J)
    for b in range(B):
        row_dots(X[b], qx[b], S[b], N, X.shape[2])  # spec H4: s_j = x_jᵀ Q x_q
        if J > N:  # the query's own score (attend_to_query)
            acc = 0.0
            for a in range(d):
                acc += xq[b, a] * qx[b, a]
            S[b, N] = acc
    smax = S[:, 0].copy()  # (B,)  maxima over j, all prompts side by side (independent chains)
    for j in range(1, J):
        for b in range(B):
            if S[b, j] > smax[b] or S[b, j] != S[b, j]:  # a NaN wins, as in np.max
                smax[b] = S[b, j]
    for b in range(B):
        for j in range(J):
            S[b, j] -= smax[b]
    return S


@njit
def _rest(E, X, xq, y, yq, wts, ew):
    """From E = exp(s − max) (B, J): attention (in place), loss, and ∇_Q (spec H5, H6)."""
    B, N, d = X.shape
    J = E.shape[1]
    attn = E
    extra = np.zeros((B, d)) if ew else np.zeros((B, 1))
    KD = np.zeros((B, d))  # (B, d)  Σ_j ds_j key_j per prompt
    c = np.zeros(J)
    total = 0.0
    for b in range(B):
        z = 0.0
        for j in range(J):
            z += E[b, j]
        for j in range(J):
            attn[b, j] = E[b, j] / z  # spec H4: softmax
        if ew:
            u = extra[b]
            _key_sum(u, X, b, attn[b], N)  # Σ_{i≤N} attn_i x_i
            lb = 0.0
            for a in range(d):
                u[a] -= xq[b, a]  # spec H6: u = Σ attn_j x_j − x_q
                lb += u[a] * u[a]
            total += wts[b] * 0.5 * lb  # spec H6: ½‖u‖²
            j = 0
            while j + 4 <= N:  # ∂/∂attn_j = w_b ⟨u, x_j⟩ (the query column carries no value)
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                a3 = 0.0
                for a in range(d):
                    ua = u[a]
                    a0 += ua * X[b, j, a]
                    a1 += ua * X[b, j + 1, a]
                    a2 += ua * X[b, j + 2, a]
                    a3 += ua * X[b, j + 3, a]
                c[j] = wts[b] * a0
                c[j + 1] = wts[b] * a1
                c[j + 2] = wts[b] * a2
                c[j + 3] = wts[b] * a3
                j += 4
            while j < N:
                acc = 0.0
                for a in range(d):
                    acc += u[a] * X[b, j, a]
                c[j] = wts[b] * acc
                j += 1
            for j in range(N, J):
                c[j] = 0.0
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
        for j in range(J):  # softmax backward: ds_j = attn_j (c_j − Σ attn c)
            c[j] = attn[b, j] * (c[j] - cs)
        kd = KD[b]
        _key_sum(kd, X, b, c, N)  # Σ_j ds_j key_j
        if J > N:
            for a in range(d):
                kd[a] += c[N] * xq[b, a]
    dQ = np.dot(KD.T, xq)  # (d, d)  spec H6: ∇_Q = Σ_b (Σ_j ds_j key_j) x_qᵀ
    return total, dQ, attn, extra


def loss_and_grads_numba(Q, X, xq, y, yq, wts, ew: bool, attend_to_query: bool):
    """(loss, ∇_Q, attn (B, J), u (B, d) or ŷ (B,)) — the Numba twin of model.loss_and_grads."""
    f = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    X, xq = f(X), f(xq)
    J = X.shape[1] + 1 if attend_to_query else X.shape[1]
    E = _shifted_scores(f(Q), X, xq, J)  # (B, J)
    np.exp(E, out=E)  # NumPy's SIMD exp: ~6× faster than the scalar libm call a Numba loop makes
    total, dQ, attn, extra = _rest(E, X, xq, f(y), f(yq), f(wts), bool(ew))
    return total, dQ, attn, (extra if ew else extra[:, 0])


@njit
def _loss_grad_C(C, p, counts, weights, attend_to_query, G, Lk, Ea, cols):
    K = C.shape[0]
    M = counts.shape[0]
    e = np.zeros(K)
    al = np.zeros(K)
    g = np.zeros(K)  # column k of ∇_C, accumulated contiguously
    G[:, :] = 0.0
    Lk[:] = 0.0
    Ea[:, :] = 0.0
    for k in cols:
        mx = -np.inf
        for m in range(K):
            if C[m, k] > mx or C[m, k] != C[m, k]:  # a NaN wins, as in np.max
                mx = C[m, k]
        for m in range(K):
            e[m] = np.exp(C[m, k] - mx)
            g[m] = 0.0
        ea = Ea[k]  # (K,)  E_n[α_{k→m}]
        lk = 0.0
        gq = 0.0
        for c in range(M):
            den = e[k] if attend_to_query else 0.0
            for m in range(K):
                den += counts[c, m] * e[m]
            S2 = 0.0
            for m in range(K):
                a = counts[c, m] * e[m] / den  # spec H7: α_{k→m}
                al[m] = a
                S2 += a * a
            ak = al[k]
            wc = weights[c]
            lk += wc * (0.5 * (S2 - 2.0 * ak + 1.0))  # spec H7: ½[(1 − α_k)² + Σ_{m≠k} α_m²]
            t = S2 - ak
            for m in range(K):
                r = al[m] - (1.0 if m == k else 0.0)
                g[m] += wc * al[m] * (r - t)  # spec H7
                ea[m] += wc * al[m]
            if attend_to_query:
                gq -= wc * (e[k] / den) * t
        g[k] += gq
        for m in range(K):
            G[m, k] = g[m] * p[k]
        Lk[k] = lk
    L = 0.0
    for k in cols:
        L += p[k] * Lk[k]
    return L


@njit
def _first_nonfinite(A):
    """True if any entry of the 2-D array A is NaN or ±inf."""
    for a in range(A.shape[0]):
        for b in range(A.shape[1]):
            if not np.isfinite(A[a, b]):
                return True
    return False


@njit
def _run_gd(C0, p, counts, weights, eta, steps, rec, attend_to_query, cols):
    """GD on C; returns the records, the loss of every step evaluated, and (step, what) of the
    first non-finite quantity (what: 0 none, 1 C, 2 the loss, 3 the gradient)."""
    K = C0.shape[0]
    R = rec.shape[0]
    Cs = np.zeros((R, K, K))
    Ls = np.zeros(R)
    Lks = np.zeros((R, K))
    Als = np.zeros((R, K, K))
    Lh = np.zeros(steps + 1)  # the loss before each step
    C = C0.copy()
    G = np.zeros((K, K))
    Lk = np.zeros(K)
    Ea = np.zeros((K, K))
    j = 0
    for t in range(steps + 1):
        if j >= R:
            break
        if _first_nonfinite(C):
            return Cs, Ls, Lks, Als, Lh, t, 1
        L = _loss_grad_C(C, p, counts, weights, attend_to_query, G, Lk, Ea, cols)
        Lh[t] = L
        if not np.isfinite(L):
            return Cs, Ls, Lks, Als, Lh, t, 2
        if _first_nonfinite(G):
            return Cs, Ls, Lks, Als, Lh, t, 3
        if rec[j] == t:
            Cs[j] = C
            Ls[j] = L
            Lks[j] = Lk
            Als[j] = Ea
            j += 1
        for a in range(K):
            for b in range(K):
                C[a, b] -= eta * G[a, b]  # spec H5
    return Cs, Ls, Lks, Als, Lh, -1, 0


def run_gd_numba(C0, p, counts, weights, eta, steps, rec, attend_to_query, cols=None):
    """GD on C over a population; ``cols``: the query columns to evolve (default all; the
    columns are independent, spec H9, and the others stay at C0 with L_k = 0 recorded).

    Returns ``(Cs, L, Lk, alpha, L_history (steps + 1,), bad_step, bad_what)``; ``bad_step`` is −1
    when every evaluated C, loss and gradient was finite, else the first step where one was not
    (``bad_what``: 1 C, 2 the loss, 3 the gradient)."""
    f = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    K = C0.shape[0]
    cols = np.arange(K, dtype=np.int64) if cols is None else np.ascontiguousarray(cols, dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # NUMBA_DISABLE_JIT: checked in the loop
        return _run_gd(f(C0), f(p), f(counts), f(weights), float(eta), int(steps),
                       np.ascontiguousarray(rec, dtype=np.int64), bool(attend_to_query), cols)
