"""Numba kernels for spec L: the same math as ``model.py``, fused over the batch.

One call computes the forward pass, the hinge loss and all gradients for a batch:

- the weight products shared by all prompts are batched into matrix products
  (U = P_q W_Qᵀ, W_Kᵀu for all prompts, V = C̄ W_Vᵀ, H = V W_Oᵀ and, backward, ΔV = ΔH W_O,
  ΔC̄ = ΔV W_V), and every weight gradient is one matrix product over the batch
  (∇W_O = ΔHᵀ V, ∇W_V = ΔVᵀ C̄, ∇W_K = Uᵀ (CΓ), ∇W_Q = W_K ((CΓ)ᵀ P_q));
- the attention uses the algebra the spec points out: s = Cᵀ(W_Kᵀ u) and v = W_V (C σ), so a
  prompt costs O(d·m_b + l·d), not O(l·d·m_b);
- the per-prompt work that touches the l columns (scores, softmax, C σ; backward the softmax
  Jacobian and C γ) runs in one loop per prompt straight on P (B, d, l+1), with no transposed
  copy: the score and c sums run over k with j innermost (SIMD over the contiguous columns), C σ
  and C γ as four row sums at a time (independent chains, each summed in order), and P[b]
  (d × (l+1), 6.7 kB at the default preset) stays in L1 for the second sum of each loop.

Prompts with z F ≥ 1 have zero hinge gradient (spec L12: g = −z 𝟙[zF < 1]); their δh is exactly
0 and so is everything downstream. ``tests/test_contract.py`` and ``tests/test_li2024_model.py``
prove this path equal to the NumPy path to ~1e−12.

Non-finite numbers propagate as in the NumPy path (``refimpl.core.ops``): a NaN score makes the
prompt's whole softmax row NaN (max subtraction), Relu(NaN) = NaN (``np.maximum``), a NaN margin
adds NaN to the loss (max{0, 1 − zF}) with no hinge gradient (𝟙[NaN < 1] = 0), and a prompt with
zero hinge gradient is skipped in the attention backward only when its σ is finite (NumPy's
σ (c − Σσc) is NaN otherwise). ``loss_and_grads`` and ``train`` then raise on the non-finite loss.

FLOP count of one call (multiply-adds; J = l or l + 1 attended columns):

=====================  ================================  ==========================
part                   products                          multiply-adds
=====================  ================================  ==========================
forward weights        W_Q p_q, W_Kᵀ u, W_V c̄, W_O v      B (2 d m_b + d m_a + m_a m)
forward attention      s = Cᵀ(W_Kᵀu), c̄ = C σ            B d (J + l)
backward weights       W_Oᵀ δh, W_Vᵀ δv                   B (m m_a + m_a d)
backward attention     c = Cᵀ(W_Vᵀ δv), C γ               B d (l + J)
weight gradients       ∇W_O, ∇W_V, ∇W_K, Σ (Cγ) p_qᵀ      B (m m_a + m_a d + m_b d + d²)
                       W_K (Σ (Cγ) p_qᵀ)                  m_b d²
=====================  ================================  ==========================

Default preset (B = 64, l = J = 20, d = m_a = m_b = 40, m = 100): 1.75e6 multiply-adds,
3.5e6 flops (plus O(B J) exps and O(B m) ReLU / hinge work).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from refimpl.core.arrays import check_shape
from refimpl.core.jit import blas_single_threaded, njit
from refimpl.core.kernels import row_dots


def flops(B: int, l: int, J: int, d: int, m: int, m_a: int, m_b: int) -> int:
    """Floating-point operations (2 per multiply-add) of one ``_fused`` call (table above)."""
    macs = (B * (2 * d * m_b + d * m_a + m_a * m) + B * d * (J + l) + B * (m * m_a + m_a * d)
            + B * d * (l + J) + B * (m * m_a + m_a * d + m_b * d + d * d) + m_b * d * d)
    return 2 * macs


@njit
def _add_columns(P, b, coef, out, n):
    """out[j] += Σ_k coef[k] P[b, k, j] for j < n: SIMD over the contiguous j; the sum over k in
    order, four rows of P[b] per pass over ``out``."""
    d = P.shape[1]
    k = 0
    while k + 4 <= d:
        c0, c1, c2, c3 = coef[k], coef[k + 1], coef[k + 2], coef[k + 3]
        for j in range(n):
            t = out[j]
            t += P[b, k, j] * c0
            t += P[b, k + 1, j] * c1
            t += P[b, k + 2, j] * c2
            t += P[b, k + 3, j] * c3
            out[j] = t
        k += 4
    while k < d:
        ck = coef[k]
        for j in range(n):
            out[j] += P[b, k, j] * ck
        k += 1


@njit
def _fused(W_Q, W_K, W_V, W_O, a_eff, P, z, J, relu_at_zero, B_total, lo, hi):
    """Forward + hinge + backward for the prompts lo ≤ b < hi of a batch. Shapes as in model.py;
    J = l or l + 1. The loss and the hinge gradient are divided by ``B_total`` (the whole batch's
    size, in W_Q's dtype); every scalar is in W_Q's dtype. Returned arrays have hi − lo rows."""
    _, d, L1 = P.shape
    B = hi - lo
    l = L1 - 1
    m = W_O.shape[0]
    dt = W_Q.dtype
    zero = np.zeros(1, dt)[0]  # 0 and 1 in the dtype: a float32 call never widens to float64
    one = np.ones(1, dt)[0]
    Pq = np.empty((B, d), dt)  # (B, d)  query columns
    for b in range(B):
        for k in range(d):
            Pq[b, k] = P[lo + b, k, l]
    U = np.dot(Pq, W_Q.T)  # (B, m_b)  spec L7: u = W_Q p_q
    KU = np.dot(U, W_K)  # (B, d)    W_Kᵀ u

    sigma = np.zeros((B, J), dt)  # (B, J)  scores, then attention σ
    cbar = np.empty((B, d), dt)  # (B, d)  c̄ = C σ
    for b in range(B):  # one prompt at a time: its P (d × (l+1)) stays in L1 for both passes
        s = sigma[b]
        _add_columns(P, lo + b, KU[b], s, J)  # s_j = p_jᵀ (W_Kᵀ u)   spec L7
        smax = s[0]
        for j in range(1, J):
            if s[j] > smax:
                smax = s[j]
        tot = zero
        for j in range(J):  # softmax with the max subtracted (spec L7); a NaN score makes tot NaN
            e = np.exp(s[j] - smax)
            s[j] = e
            tot += e
        for j in range(J):
            s[j] /= tot
        row_dots(P[lo + b], s, cbar[b], d, l)  # c̄ = C σ: value sum over the context columns only

    V = np.dot(cbar, W_V.T)  # (B, m_a)  v = W_V c̄
    H = np.dot(V, W_O.T)  # (B, m)    h = W_O v
    F = np.empty(B, dt)
    DH = np.zeros((B, m), dt)  # (B, m)    δh (zero rows for inactive prompts)
    R = np.empty((B, m), dt)
    G = np.zeros(B, dt)  # (B,)  g / B
    loss = zero
    for b in range(B):
        f = zero
        for i in range(m):
            hv = H[b, i]
            r = hv if (hv > zero or hv != hv) else zero  # Relu = np.maximum(h, 0): NaN stays NaN
            R[b, i] = r
            f += a_eff[i] * r
        F[b] = f
        margin = z[lo + b] * f
        if margin < one:  # spec L10/L12: g = −z 𝟙[zF < 1], mean over the batch
            loss += one - margin
            g = -z[lo + b] / B_total
            G[b] = g
            for i in range(m):
                hv = H[b, i]
                if hv > zero:
                    DH[b, i] = g * a_eff[i]
                elif hv == zero:
                    DH[b, i] = g * a_eff[i] * relu_at_zero
        elif margin != margin:  # NaN: max{0, 1 − zF} is NaN (as in NumPy); 𝟙[zF < 1] = 0, no gradient
            loss += one - margin
    loss /= B_total

    DV = np.dot(DH, W_O)  # (B, m_a)  δv = W_Oᵀ δh          spec L12
    DC = np.dot(DV, W_V)  # (B, d)    W_Vᵀ δv
    CG = np.zeros((B, d), dt)  # (B, d) C γ
    c = np.zeros(J, dt)
    for b in range(B):
        if G[b] == zero and sigma[b, 0] == sigma[b, 0]:  # no hinge gradient and σ finite (a row is all
            continue  # NaN or all finite): γ = σ (0 − 0) = 0, C γ = 0
        # c_i = δvᵀ W_V p_i (context columns; the query column carries no value): SIMD over i
        c[:] = 0
        _add_columns(P, lo + b, DC[b], c, l)
        cs = zero
        for i in range(l):
            cs += sigma[b, i] * c[i]
        # γ_i = σ_i (c_i − Σ_j σ_j c_j); C γ = Σ_j γ_j p_j                   spec L12
        for j in range(J):
            c[j] = sigma[b, j] * (c[j] - cs)
        row_dots(P[lo + b], c, CG[b], d, J)

    dW_O = np.dot(DH.T, V)  # (m, m_a)   ∇W_O = Σ_b δh vᵀ      spec L12
    dW_V = np.dot(DV.T, cbar)  # (m_a, d)  ∇W_V = Σ_b δv c̄ᵀ     spec L12
    dW_K = np.dot(U.T, CG)  # (m_b, d)    ∇W_K = Σ_b u (Cγ)ᵀ     spec L12
    dW_Q = np.dot(W_K, np.dot(CG.T, Pq))  # (m_b, d)  ∇W_Q = W_K Σ_b (Cγ) p_qᵀ   spec L12
    da = np.dot(G, R)  # (m,)  ∇a = Σ_b g r
    return loss, dW_Q, dW_K, dW_V, dW_O, da, F, sigma, H


@njit(parallel=True)
def _fused_parallel(W_Q, W_K, W_V, W_O, a_eff, P, z, J, relu_at_zero, n_chunks):
    """:func:`_fused` on ``n_chunks`` contiguous chunks of the prompts, one per Numba thread
    (``prange``), each with its own buffers and single-threaded BLAS products; the chunks' losses
    and gradients are then added in chunk order. Deterministic for a given ``n_chunks``."""
    B, d, _ = P.shape
    m_b, m_a, m = W_Q.shape[0], W_V.shape[0], W_O.shape[0]
    dt = W_Q.dtype
    nc = max(1, min(n_chunks, B))
    B_total = np.full(1, B, dt)[0]
    losses = np.empty(nc, dt)
    gQ, gK = np.empty((nc, m_b, d), dt), np.empty((nc, m_b, d), dt)
    gV, gO, ga = np.empty((nc, m_a, d), dt), np.empty((nc, m, m_a), dt), np.empty((nc, m), dt)
    F, sigma, H = np.empty(B, dt), np.empty((B, J), dt), np.empty((B, m), dt)
    for t in prange(nc):
        lo, hi = t * B // nc, (t + 1) * B // nc
        loss, dW_Q, dW_K, dW_V, dW_O, da, Ft, st, Ht = _fused(W_Q, W_K, W_V, W_O, a_eff, P, z, J, relu_at_zero,
                                                              B_total, lo, hi)
        losses[t] = loss
        gQ[t], gK[t], gV[t], gO[t], ga[t] = dW_Q, dW_K, dW_V, dW_O, da
        F[lo:hi], sigma[lo:hi], H[lo:hi] = Ft, st, Ht
    loss = losses[0]
    dW_Q, dW_K, dW_V, dW_O, da = gQ[0].copy(), gK[0].copy(), gV[0].copy(), gO[0].copy(), ga[0].copy()
    for t in range(1, nc):  # the chunks in order
        loss += losses[t]
        dW_Q += gQ[t]
        dW_K += gK[t]
        dW_V += gV[t]
        dW_O += gO[t]
        da += ga[t]
    return loss, dW_Q, dW_K, dW_V, dW_O, da, F, sigma, H


def loss_and_grads_numba(params, P, z, *, attend_to_query=False, train_a=False, relu_at_zero=0.0, keep=None,
                         parallel=False):
    """Numba path of ``model.loss_and_grads``; returns ``(loss, grads, F, attn, h)``. Computed in
    W_Q's dtype. ``parallel``: the prompts split over Numba's threads (:func:`_fused_parallel`).

    The shapes the kernels index are checked first (O(1)); a wrong-shaped array raises
    ``ValueError`` naming it, also when the caller skipped validation (``check=False``)."""
    dt = np.asarray(params["W_Q"]).dtype
    dt = dt if dt in (np.float32, np.float64) else np.dtype(np.float64)
    W_Q, W_K, W_V, W_O, a = (np.ascontiguousarray(params[k], dtype=dt) for k in ("W_Q", "W_K", "W_V", "W_O", "a"))
    check_shape("params['W_Q']", W_Q, (None, None))
    m_b, d = W_Q.shape
    check_shape("params['W_K']", W_K, (m_b, d))
    check_shape("params['W_V']", W_V, (None, d))
    check_shape("params['W_O']", W_O, (None, W_V.shape[0]))
    check_shape("params['a']", a, (W_O.shape[0],))
    a_eff = a if keep is None else a * keep
    check_shape("keep", a_eff, (W_O.shape[0],))
    P = np.ascontiguousarray(P, dtype=dt)
    check_shape("batch['P']", P, (None, d, None))
    if P.shape[0] < 1 or P.shape[2] < 2:
        raise ValueError(f"batch['P'] must have B ≥ 1 prompts and l + 1 ≥ 2 columns, got shape {P.shape}")
    z = np.ascontiguousarray(z, dtype=dt)
    check_shape("batch['z']", z, (P.shape[0],))
    J = P.shape[2] if attend_to_query else P.shape[2] - 1
    args = (W_Q, W_K, W_V, W_O, np.ascontiguousarray(a_eff, dtype=dt), P, z, J, dt.type(relu_at_zero))
    if parallel:
        with blas_single_threaded():  # each thread's products run on that thread alone
            loss, dW_Q, dW_K, dW_V, dW_O, da, F, sigma, H = _fused_parallel(*args, numba.get_num_threads())
    else:
        loss, dW_Q, dW_K, dW_V, dW_O, da, F, sigma, H = _fused(*args, dt.type(P.shape[0]), 0, P.shape[0])
    grads = {"W_Q": dW_Q, "W_K": dW_K, "W_V": dW_V, "W_O": dW_O}
    if train_a:
        grads["a"] = da if keep is None else da * keep
    return float(loss), grads, F, sigma, H
