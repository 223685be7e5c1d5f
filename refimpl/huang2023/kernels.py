"""Numba kernels for spec H: the same math as model.py / population.py in fused loops.

``loss_and_grads_numba``: the prompts in blocks of ``BLOCK`` (their tokens, 256 kB at the
benchmark size, stay in L2): for each prompt of a block Q x_q, the scores and their maximum (pass
1); the exponentials of the whole block's scores in one flat vectorised loop (the ``exp`` of
:mod:`refimpl.core.vmath`); for each prompt the softmax, either loss (spec H5 sample loss or spec
H6 E_w loss), its softmax backward and Σ_j ds_j key_j (pass 2); then ∇_Q = Σ_b (Σ_j ds_j key_j)
x_qᵀ over the prompts. X is read from memory once. ``run_gd_numba``: GD on C with the reduced
gradient of spec H7 over a population of count vectors; it stops at the first non-finite C, loss
or gradient and reports the step. Tests prove both equal the NumPy path (float64 to ~1e−12;
float32, computed in float32 throughout, to float32 rounding), and that NaN propagates as in NumPy
(the maxima of the stable softmax take a NaN like ``np.max``).

**Summation order, fixed.** Sums over the tokens j (softmax normaliser, ŷ, the softmax
backward's Σ attn c) use eight partial sums (:func:`refimpl.core.kernels.vec_sum`; the sample
loss takes Σ e and Σ e y in one pass with the same partial sums); sums over the d features run in
order (each entry of Q x_q and each score; eight tokens' scores per pass, eight independent chains);
Σ_j ds_j x_j and Σ_j attn_j x_j add four tokens at a time as a pair of pairs, (c_j x_j +
c_{j+1} x_{j+1}) + (c_{j+2} x_{j+2} + c_{j+3} x_{j+3}), to the running sum, in token order, the d
features in SIMD lanes. Every prompt's results go to its own rows (attention, Σ_j ds_j x_j, the
loss term); the prompts' loss terms are summed in prompt order and each row of ∇_Q adds four
prompts at a time (a pair of pairs) in prompt order at the end: the result does not depend on how
the prompts are split.

**Threads** (``parallel=True``, ``loss_and_grads(..., backend="numba_parallel")``): the prompts
are split into one contiguous chunk per Numba thread (``prange``), each chunk with its own
scratch; ∇_Q's d rows are then split the same way (each row summed over the prompts as above).
No BLAS call runs inside either kernel. Because of the fixed orders above, the parallel kernel
returns the same bits as the serial one, for any number of threads.

Cost: 2 B N d multiply-adds for the scores and Σ_j ds_j x_j (4 B N d for the E_w loss), B d²
for Q x_q and B d² for ∇_Q, B J exps. At the benchmark size (d = 10) the two d-long contractions
per token bound the time (~⅓ and ~¼ of a step, the exponentials ~⅛ in float64): a score is a sum
over d = 10 contiguous features (too short for SIMD without a transposed copy of X, which costs
more than it saves, and Numba without ``fastmath`` vectorises no floating-point reduction), so the
scores run as independent scalar chains, eight tokens at a time — at the same speed in float32
and float64; float32 gains in the exponentials, the softmax and memory traffic only. ``_loss_grad_C`` per query
column k and count vector: K exps' worth of work, ~6 K multiply-adds.

Every wrapper checks the shapes it indexes (O(1), no value scan) before calling a kernel, also
on the unchecked path of ``loss_and_grads(..., check=False)``: a wrong-shaped array raises
``ValueError`` instead of being read out of bounds.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from refimpl.core.arrays import check_shape
from refimpl.core.jit import njit
from refimpl.core.kernels import _max_nan, row_dots, vec_dot, vec_sum
from refimpl.core.vmath import exp


@njit
def _score_rows(M, v, out, n_rows, n_cols):
    """out[r] = Σ_{c < n_cols} M[r, c] v[c] for r < n_rows (each sum in order over c, as
    :func:`refimpl.core.kernels.row_dots`, eight rows per pass over v: eight independent chains);
    returns max_r out[r] (a NaN wins, as in np.max). n_rows, n_cols ≥ 1."""
    v0 = v[0]
    mx = v0  # a placeholder of the right dtype: the first row's score replaces it
    first = True
    r = 0
    while r + 8 <= n_rows:
        a0 = M[r, 0] * v0
        a1 = M[r + 1, 0] * v0
        a2 = M[r + 2, 0] * v0
        a3 = M[r + 3, 0] * v0
        a4 = M[r + 4, 0] * v0
        a5 = M[r + 5, 0] * v0
        a6 = M[r + 6, 0] * v0
        a7 = M[r + 7, 0] * v0
        for c in range(1, n_cols):
            vc = v[c]
            a0 += M[r, c] * vc
            a1 += M[r + 1, c] * vc
            a2 += M[r + 2, c] * vc
            a3 += M[r + 3, c] * vc
            a4 += M[r + 4, c] * vc
            a5 += M[r + 5, c] * vc
            a6 += M[r + 6, c] * vc
            a7 += M[r + 7, c] * vc
        out[r] = a0
        out[r + 1] = a1
        out[r + 2] = a2
        out[r + 3] = a3
        out[r + 4] = a4
        out[r + 5] = a5
        out[r + 6] = a6
        out[r + 7] = a7
        if first:
            mx = a0
            first = False
        mx = _max_nan(_max_nan(_max_nan(mx, a0), _max_nan(a1, a2)), _max_nan(_max_nan(a3, a4), _max_nan(a5, _max_nan(a6, a7))))
        r += 8
    if r + 4 <= n_rows:  # four of the remaining rows together (a single row is one long dependency chain)
        a0 = M[r, 0] * v0
        a1 = M[r + 1, 0] * v0
        a2 = M[r + 2, 0] * v0
        a3 = M[r + 3, 0] * v0
        for c in range(1, n_cols):
            vc = v[c]
            a0 += M[r, c] * vc
            a1 += M[r + 1, c] * vc
            a2 += M[r + 2, c] * vc
            a3 += M[r + 3, c] * vc
        out[r] = a0
        out[r + 1] = a1
        out[r + 2] = a2
        out[r + 3] = a3
        if first:
            mx = a0
            first = False
        mx = _max_nan(_max_nan(mx, a0), _max_nan(a1, _max_nan(a2, a3)))
        r += 4
    while r < n_rows:
        acc = M[r, 0] * v0
        for c in range(1, n_cols):
            acc += M[r, c] * v[c]
        out[r] = acc
        if first:
            mx = acc
            first = False
        mx = _max_nan(mx, acc)
        r += 1
    return mx


@njit(inline="always")
def _sum_and_dot(x, y, n):
    """(Σ_{j<n} x_j, Σ_{j<n} x_j y_j) in one pass, each in the fixed order of
    :func:`refimpl.core.kernels.vec_sum` / :func:`~refimpl.core.kernels.vec_dot` (the same bits)."""
    if n < 8:
        return vec_sum(x, n), vec_dot(x, y, n)
    s0, s1, s2, s3, s4, s5, s6, s7 = x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]
    p0, p1, p2, p3 = x[0] * y[0], x[1] * y[1], x[2] * y[2], x[3] * y[3]
    p4, p5, p6, p7 = x[4] * y[4], x[5] * y[5], x[6] * y[6], x[7] * y[7]
    j = 8
    while j + 8 <= n:
        x0, x1, x2, x3, x4, x5, x6, x7 = x[j], x[j + 1], x[j + 2], x[j + 3], x[j + 4], x[j + 5], x[j + 6], x[j + 7]
        s0 += x0
        s1 += x1
        s2 += x2
        s3 += x3
        s4 += x4
        s5 += x5
        s6 += x6
        s7 += x7
        p0 += x0 * y[j]
        p1 += x1 * y[j + 1]
        p2 += x2 * y[j + 2]
        p3 += x3 * y[j + 3]
        p4 += x4 * y[j + 4]
        p5 += x5 * y[j + 5]
        p6 += x6 * y[j + 6]
        p7 += x7 * y[j + 7]
        j += 8
    while j < n:
        s0 += x[j]
        p0 += x[j] * y[j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)), ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))


@njit
def _key_sum(v, X, b, c, N):
    """v += Σ_{j<N} c_j X[b, j]: four rows per pass over v, summed as a pair of pairs before they
    are added (one add per pass on v's dependency chain instead of four); the passes in order over j."""
    d = X.shape[2]
    j = 0
    while j + 4 <= N:
        c0, c1, c2, c3 = c[j], c[j + 1], c[j + 2], c[j + 3]
        for a in range(d):
            v[a] += (c0 * X[b, j, a] + c1 * X[b, j + 1, a]) + (c2 * X[b, j + 2, a] + c3 * X[b, j + 3, a])
        j += 4
    while j < N:
        cj = c[j]
        for a in range(d):
            v[a] += cj * X[b, j, a]
        j += 1


@njit
def _scores(b, X, xq, attn, qx):
    """Pass 1 of prompt b: attn[b] ← s − max_j s, s_j = key_jᵀ Q x_q (spec H4, lines (f1)–(f2));
    ``qx`` (d,): Q x_q."""
    N, d = X.shape[1], X.shape[2]
    J = attn.shape[1]
    xqb = xq[b]
    s = attn[b]  # (J,)
    mx = _score_rows(X[b], qx, s, N, d)  # (f2) spec H4: s_j = x_jᵀ Q x_q; their maximum (a NaN wins)
    if J > N:  # the query's own score (attend_to_query)
        acc = xqb[0] * qx[0]
        for a in range(1, d):
            acc += xqb[a] * qx[a]
        s[N] = acc
        mx = _max_nan(mx, acc)
    for j in range(J):
        s[j] -= mx


@njit
def _exp_rows(attn, b0, b1):
    """attn[b] ← exp(attn[b]) for b0 ≤ b < b1: one flat loop over the contiguous rows (a loop from
    0: LLVM does not vectorise Numba's ``range(lo, hi)`` loops)."""
    J = attn.shape[1]
    flat = attn.reshape(-1)[b0 * J:b1 * J]
    for i in range(flat.size):
        flat[i] = exp(flat[i])


@njit
def _rest(b, X, xq, y, yq, wts, ew, attn, extra, KD, losses, du, c, one, half):
    """Pass 2 of prompt b, from e = exp(s − max) in attn[b]: the attention (in place), ŷ or u
    into extra[b], the weighted loss term into losses[b], Σ_j ds_j key_j into KD[b] (spec H4–H6).
    ``du`` (d,) and ``c`` (J,) scratch; ``one``, ``half``: 1 and ½ in the arrays' dtype (so that a
    float32 kernel never widens to float64)."""
    N, d = X.shape[1], X.shape[2]
    J = attn.shape[1]
    xqb = xq[b]
    s = attn[b]  # (J,)  e_j, then the attention
    if ew or J > N:
        r = one / vec_sum(s, J)  # 1/Σ e
        ey = vec_dot(s, y[b], N) if not ew else one
    else:
        se, ey = _sum_and_dot(s, y[b], N)  # Σ e, Σ e_i y_i
        r = one / se
    wb = wts[b]
    if ew:
        for j in range(J):
            s[j] *= r  # (f3) spec H4: softmax (≤ 1 ulp from e / Σ e)
        u = extra[b]  # (d,)
        u[:] = 0
        _key_sum(u, X, b, s, N)  # Σ_{i≤N} attn_i x_i
        for a in range(d):
            u[a] -= xqb[a]  # (f4') spec H6: u = Σ attn_j x_j − x_q
        lb = u[0] * u[0]
        for a in range(1, d):
            lb += u[a] * u[a]
        losses[b] = wb * (lb * half)  # spec H6: ½‖u‖²
        for a in range(d):
            du[a] = wb * u[a]
        row_dots(X[b], du, c, N, d)  # ∂/∂attn_j = w_b ⟨u, x_j⟩ (the query column carries no value)
        for j in range(N, J):
            c[j] = 0
        cs = vec_dot(s, c, J)
        for j in range(J):  # softmax backward: ds_j = attn_j (c_j − Σ attn c)
            c[j] = s[j] * (c[j] - cs)
    else:
        yb = y[b]
        yh = r * ey  # (f4) spec H4: ŷ = Σ_{i≤N} attn_i y_i = (Σ e_i y_i) / Σ e
        extra[b, 0] = yh
        diff = yh - yq[b]
        losses[b] = wb * (half * diff * diff)  # spec H5: ½(ŷ − y_q)²
        g = wb * diff  # ∂/∂ŷ;  ∂/∂attn_j = g y_j (0 for the query column), Σ_j attn_j g y_j = g ŷ
        cs = g * yh
        for j in range(N):  # (f3) the softmax, and its backward ds_j = attn_j (g y_j − g ŷ)
            a = s[j] * r
            s[j] = a
            c[j] = a * (g * yb[j] - cs)
        for j in range(N, J):
            a = s[j] * r
            s[j] = a
            c[j] = a * (-cs)
    kd = KD[b]  # (d,)
    kd[:] = 0
    _key_sum(kd, X, b, c, N)  # Σ_j ds_j key_j
    if J > N:
        for a in range(d):
            kd[a] += c[N] * xqb[a]


BLOCK = 32  # prompts per block: their tokens (BLOCK·N·d values, 256 kB at the benchmark size) stay in L2


@njit
def _block(b0, b1, Q, X, xq, y, yq, wts, ew, attn, extra, KD, losses, QX, du, c, one, half):
    """Prompts b0 ≤ b < b1: Q x_q of each into the rows of ``QX`` (BLOCK, d) scratch, pass 1 for
    each, the exponentials of all their scores in one flat (vectorised) loop, pass 2 for each."""
    d = Q.shape[0]
    for a in range(d):  # (f1) (Q x_q)_a = Σ_c Q[a, c] x_q[c] in order over c, the prompts as independent rows
        row_dots(xq[b0:b1], Q[a], QX[:, a], b1 - b0, d)
    for b in range(b0, b1):
        _scores(b, X, xq, attn, QX[b - b0])
    _exp_rows(attn, b0, b1)
    for b in range(b0, b1):
        _rest(b, X, xq, y, yq, wts, ew, attn, extra, KD, losses, du, c, one, half)


@njit
def _grad_rows(KD, xq, dQ, a0, a1):
    """dQ[a] = Σ_b KD[b, a] x_q[b] for a0 ≤ a < a1 (spec H6: ∇_Q = Σ_b kd_b x_qᵀ): prompt 0, then
    four prompts at a time as a pair of pairs, in prompt order."""
    B, d = xq.shape
    for a in range(a0, a1):
        row = dQ[a]
        k0 = KD[0, a]
        for cc in range(d):
            row[cc] = k0 * xq[0, cc]
        b = 1
        while b + 4 <= B:
            k0, k1, k2, k3 = KD[b, a], KD[b + 1, a], KD[b + 2, a], KD[b + 3, a]
            for cc in range(d):
                row[cc] += (k0 * xq[b, cc] + k1 * xq[b + 1, cc]) + (k2 * xq[b + 2, cc] + k3 * xq[b + 3, cc])
            b += 4
        while b < B:
            kb = KD[b, a]
            for cc in range(d):
                row[cc] += kb * xq[b, cc]
            b += 1


@njit
def _outputs(B, N, d, J, ew, dt):
    """attn (B, J), u (B, d) or ŷ (B, 1), Σ_j ds_j key_j (B, d), the loss terms (B,), ∇_Q (d, d)."""
    return (np.empty((B, J), dt), np.empty((B, d) if ew else (B, 1), dt), np.empty((B, d), dt), np.empty(B, dt),
            np.empty((d, d), dt))


@njit
def _run(Q, X, xq, y, yq, wts, ew, J):
    """All prompts in order, then ∇_Q; returns (the loss Σ_b losses[b] in prompt order, ∇_Q, attn,
    u or ŷ)."""
    B, N, d = X.shape
    attn, extra, KD, losses, dQ = _outputs(B, N, d, J, ew, X.dtype)
    QX, du, c = np.empty((BLOCK, d), X.dtype), np.empty(d, X.dtype), np.empty(J, X.dtype)
    one, half = np.ones(1, X.dtype)[0], np.full(1, 0.5, X.dtype)[0]
    for b0 in range(0, B, BLOCK):
        _block(b0, min(b0 + BLOCK, B), Q, X, xq, y, yq, wts, ew, attn, extra, KD, losses, QX, du, c, one, half)
    _grad_rows(KD, xq, dQ, 0, d)
    total = losses[0]
    for b in range(1, B):
        total += losses[b]
    return total, dQ, attn, extra


@njit(parallel=True)
def _run_parallel(Q, X, xq, y, yq, wts, ew, J, n_threads):
    """:func:`_run` with the prompts (then the rows of ∇_Q) split over the Numba threads; the
    same bits as :func:`_run` for any number of threads (``n_threads``: Numba's thread count)."""
    B, N, d = X.shape
    attn, extra, KD, losses, dQ = _outputs(B, N, d, J, ew, X.dtype)
    nt = max(1, min(B, n_threads))
    one, half = np.ones(1, X.dtype)[0], np.full(1, 0.5, X.dtype)[0]
    for t in prange(nt):  # one contiguous chunk of prompts per thread, with its own scratch
        QX, du, c = np.empty((BLOCK, d), X.dtype), np.empty(d, X.dtype), np.empty(J, X.dtype)
        lo, hi = t * B // nt, (t + 1) * B // nt
        for b0 in range(lo, hi, BLOCK):
            _block(b0, min(b0 + BLOCK, hi), Q, X, xq, y, yq, wts, ew, attn, extra, KD, losses, QX, du, c, one, half)
    nr = min(d, nt)
    for t in prange(nr):
        _grad_rows(KD, xq, dQ, t * d // nr, (t + 1) * d // nr)
    total = losses[0]
    for b in range(1, B):
        total += losses[b]
    return total, dQ, attn, extra


def loss_and_grads_numba(Q, X, xq, y, yq, wts, ew: bool, attend_to_query: bool, parallel: bool = False):
    """(loss, ∇_Q, attn (B, J), u (B, d) or ŷ (B,)) — the Numba twin of model.loss_and_grads,
    computed in Q's dtype (float32 stays float32). ``parallel``: split the prompts over the Numba
    threads (same bits)."""
    Q = np.asarray(Q)
    dt = Q.dtype if Q.dtype in _DTYPES else np.dtype(np.float64)
    f = lambda a: np.ascontiguousarray(a, dtype=dt)  # noqa: E731
    Q, X, xq, y, yq, wts = f(Q), f(X), f(xq), f(y), f(yq), f(wts)
    sx = X.shape
    if not (len(sx) == 3 and Q.shape == (sx[2], sx[2]) and xq.shape == (sx[0], sx[2]) and y.shape == sx[:2]
            and yq.shape == sx[:1] and wts.shape == sx[:1] and min(sx) >= 1):  # one O(1) test; names the entry:
        _check_shapes(Q, X, xq, y, yq, wts)
    args = (Q, X, xq, y, yq, wts, bool(ew), sx[1] + 1 if attend_to_query else sx[1])
    total, dQ, attn, extra = _run_parallel(*args, numba.get_num_threads()) if parallel else _run(*args)
    return total, dQ, attn, (extra if ew else extra[:, 0])


_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_shapes(Q, X, xq, y, yq, wts):
    """Raise ``ValueError`` naming the first entry whose shape does not fit (the kernels do not
    bounds-check)."""
    check_shape("params['Q']", Q, (None, None))
    d = Q.shape[0]
    check_shape("params['Q']", Q, (d, d))
    check_shape("batch['X']", X, (None, None, d))
    B, N, _ = X.shape
    if B < 1 or N < 1 or d < 1:
        raise ValueError(f"batch['X'] must have B ≥ 1 prompts, N ≥ 1 tokens and d ≥ 1 features, got shape {X.shape}")
    check_shape("batch['xq']", xq, (B, d))
    check_shape("batch['y']", y, (B, N))
    check_shape("batch['yq']", yq, (B,))
    check_shape("weights", wts, (B,))


@njit
def _loss_grad_C(C, p, counts, weights, attend_to_query, G, Lk, Ea, cols):
    """L (returned), L_k into ``Lk`` (K,), ∇_C L into ``G`` (K, K) and E_n[α_{k→m}] into ``Ea``
    [k, m] for the query columns ``cols`` (spec H7; :func:`refimpl.huang2023.population.loss_and_grad_C`).
    Per query column k and count vector: one division (1/den) and ~6 K multiply-adds; the K
    exponentials per column are scalar (K² per call, not a vector loop)."""
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
            rden = 1.0 / den  # one division per count vector (α ≤ 1 ulp from n e / den)
            S2 = 0.0
            for m in range(K):
                a = counts[c, m] * e[m] * rden  # spec H7: α_{k→m}
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
                gq -= wc * (e[k] * rden) * t
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
    C0, p, counts, weights = f(C0), f(p), f(counts), f(weights)
    check_shape("C0", C0, (None, None))
    K = C0.shape[0]
    check_shape("C0", C0, (K, K))
    check_shape("p", p, (K,))
    check_shape("counts", counts, (None, K))
    check_shape("weights", weights, (counts.shape[0],))
    cols = np.arange(K, dtype=np.int64) if cols is None else np.ascontiguousarray(cols, dtype=np.int64).reshape(-1)
    if cols.size and (cols.min() < 0 or cols.max() >= K):
        raise ValueError(f"columns must be query features in [0, {K}), got {cols.tolist()}")
    rec = np.ascontiguousarray(rec, dtype=np.int64).reshape(-1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # NUMBA_DISABLE_JIT: checked in the loop
        return _run_gd(C0, p, counts, weights, float(eta), int(steps), rec, bool(attend_to_query), cols)
