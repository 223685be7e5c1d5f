"""Numba kernels for spec L: the same math as ``model.py``, fused per prompt.

One call computes the forward pass, the hinge loss and all gradients for a batch:

- the weight products shared by all prompts are batched into matrix products
  (U = P_q W_Qᵀ, W_Kᵀu for all prompts, V = C̄ W_Vᵀ, H = V W_Oᵀ and, backward, ΔV = ΔH W_O,
  ΔC̄ = ΔV W_V), and every weight gradient is one matrix product over the batch
  (∇W_O = ΔHᵀ V, ∇W_V = ΔVᵀ C̄, ∇W_K = Uᵀ (CΓ), ∇W_Q = W_K ((CΓ)ᵀ P_q));
- the per-prompt work that touches the l columns (scores, softmax, C σ, the softmax Jacobian,
  C γ) runs in one fused loop per prompt, without temporaries.

Prompts with z F ≥ 1 have zero hinge gradient (spec L12: g = −z 𝟙[zF < 1]) and skip the backward
loop. ``tests/test_li2024_model.py`` proves this path equal to the NumPy path to ~1e−12.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.jit import njit


@njit
def _fused(W_Q, W_K, W_V, W_O, a_eff, P, z, J, relu_at_zero):
    """Forward + hinge + backward for a batch. Shapes as in model.py; J = l or l + 1."""
    B, d, L1 = P.shape
    l = L1 - 1
    m = W_O.shape[0]
    dt = W_Q.dtype
    Pt = np.empty((B, L1, d), dt)  # (B, l+1, d) columns contiguous
    for b in range(B):
        for j in range(L1):
            for k in range(d):
                Pt[b, j, k] = P[b, k, j]
    Pq = np.ascontiguousarray(Pt[:, l, :])  # (B, d)
    U = Pq @ W_Q.T  # (B, m_b)  spec L7: u = W_Q p_q
    KU = U @ W_K  # (B, d)    W_Kᵀ u

    sigma = np.empty((B, J), dt)  # (B, J)   attention
    cbar = np.zeros((B, d), dt)  # (B, d)   c̄ = C σ
    for b in range(B):
        # s_i = p_iᵀ (W_Kᵀ u), softmax with the max subtracted (spec L7)
        smax = -np.inf
        for j in range(J):
            acc = 0.0
            for k in range(d):
                acc += Pt[b, j, k] * KU[b, k]
            sigma[b, j] = acc
            if acc > smax:
                smax = acc
        tot = 0.0
        for j in range(J):
            e = np.exp(sigma[b, j] - smax)
            sigma[b, j] = e
            tot += e
        for j in range(J):
            sigma[b, j] /= tot
        for i in range(l):  # value sum over the context columns only
            w = sigma[b, i]
            for k in range(d):
                cbar[b, k] += w * Pt[b, i, k]

    V = cbar @ W_V.T  # (B, m_a)  v = W_V c̄
    H = V @ W_O.T  # (B, m)    h = W_O v
    F = np.empty(B, dt)
    DH = np.zeros((B, m), dt)  # (B, m)    δh (zero rows for inactive prompts)
    R = np.empty((B, m), dt)
    G = np.zeros(B, dt)  # (B,)  g / B
    loss = 0.0
    for b in range(B):
        f = 0.0
        for i in range(m):
            hv = H[b, i]
            r = hv if hv > 0 else 0.0
            R[b, i] = r
            f += a_eff[i] * r
        F[b] = f
        margin = z[b] * f
        if margin < 1.0:  # spec L10/L12: g = −z 𝟙[zF < 1], mean over the batch
            loss += 1.0 - margin
            g = -z[b] / B
            G[b] = g
            for i in range(m):
                hv = H[b, i]
                if hv > 0:
                    DH[b, i] = g * a_eff[i]
                elif hv == 0:
                    DH[b, i] = g * a_eff[i] * relu_at_zero
    loss /= B

    DV = DH @ W_O  # (B, m_a)  δv = W_Oᵀ δh          spec L12
    DC = DV @ W_V  # (B, d)    W_Vᵀ δv
    CG = np.zeros((B, d), dt)  # (B, d) C γ
    c = np.zeros(J, dt)
    for b in range(B):
        if G[b] == 0.0:
            continue
        # c_i = δvᵀ W_V p_i (context columns; the query column carries no value)
        cs = 0.0
        for i in range(l):
            acc = 0.0
            for k in range(d):
                acc += Pt[b, i, k] * DC[b, k]
            c[i] = acc
            cs += sigma[b, i] * acc
        for j in range(l, J):
            c[j] = 0.0
        # γ_i = σ_i (c_i − Σ_j σ_j c_j); C γ = Σ_i γ_i p_i                   spec L12
        for j in range(J):
            gj = sigma[b, j] * (c[j] - cs)
            for k in range(d):
                CG[b, k] += gj * Pt[b, j, k]

    dW_O = DH.T @ V  # (m, m_a)   ∇W_O = Σ_b δh vᵀ      spec L12
    dW_V = DV.T @ cbar  # (m_a, d)  ∇W_V = Σ_b δv c̄ᵀ     spec L12
    dW_K = U.T @ CG  # (m_b, d)    ∇W_K = Σ_b u (Cγ)ᵀ     spec L12
    dW_Q = W_K @ (CG.T @ Pq)  # (m_b, d)  ∇W_Q = W_K Σ_b (Cγ) p_qᵀ   spec L12
    da = G @ R  # (m,)  ∇a = Σ_b g r
    return loss, dW_Q, dW_K, dW_V, dW_O, da, F, sigma


def loss_and_grads_numba(params, P, z, *, attend_to_query=False, train_a=False, relu_at_zero=0.0, keep=None):
    """Numba path of ``model.loss_and_grads``; returns ``(loss, grads, F, attn)``."""
    W_Q, W_K, W_V, W_O, a = (np.ascontiguousarray(params[k]) for k in ("W_Q", "W_K", "W_V", "W_O", "a"))
    dt = W_Q.dtype
    a_eff = a if keep is None else a * keep
    P = np.ascontiguousarray(P, dtype=dt)
    z = np.ascontiguousarray(z, dtype=dt)
    J = P.shape[2] if attend_to_query else P.shape[2] - 1
    loss, dW_Q, dW_K, dW_V, dW_O, da, F, sigma = _fused(
        W_Q, W_K, W_V, W_O, np.ascontiguousarray(a_eff), P, z, J, dt.type(relu_at_zero)
    )
    grads = {"W_Q": dW_Q, "W_K": dW_K, "W_V": dW_V, "W_O": dW_O}
    if train_a:
        grads["a"] = da if keep is None else da * keep
    return float(loss), grads, F, sigma
