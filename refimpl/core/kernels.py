"""Numba building blocks shared by the papers' kernels."""

from __future__ import annotations

import numpy as np

from refimpl.core.jit import njit


@njit
def row_dots(M, v, out, n_rows, n_cols):
    """out[r] = Σ_{c < n_cols} M[r, c] v[c] for r < n_rows, each sum in order over c, four rows
    per pass over v (M is a 2-D view, e.g. one prompt P[b]; no copy is made)."""
    r = 0
    while r + 4 <= n_rows:
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for c in range(n_cols):
            vc = v[c]
            a0 += M[r, c] * vc
            a1 += M[r + 1, c] * vc
            a2 += M[r + 2, c] * vc
            a3 += M[r + 3, c] * vc
        out[r] = a0
        out[r + 1] = a1
        out[r + 2] = a2
        out[r + 3] = a3
        r += 4
    while r < n_rows:
        acc = 0.0
        for c in range(n_cols):
            acc += M[r, c] * v[c]
        out[r] = acc
        r += 1


@njit
def adam_step(p, g, m, v, one_m_b1, b2, one_m_b2, neg_step, bc2_sqrt, eps, wd):
    """One torch-exact Adam step in place over flat arrays (:class:`refimpl.core.optim.Adam`):

        g ← g + wd·p (wd > 0);  m ← m + (1 − β1)(g − m);  v ← β2·v + ((1 − β2)·g)·g;
        p ← p + neg_step · (m / (√v / √(1 − β2ᵗ) + ε)),   neg_step = −lr / (1 − β1ᵗ)

    The scalars arrive in the arrays' dtype, so float32 parameters are updated in float32 with
    the same operations, in the same order, as the NumPy path (bit for bit)."""
    for i in range(p.size):
        gi = g[i]
        if wd != 0:
            gi = gi + wd * p[i]
        mi = m[i] + one_m_b1 * (gi - m[i])
        vi = v[i] * b2 + (one_m_b2 * gi) * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] + neg_step * (mi / (np.sqrt(vi) / bc2_sqrt + eps))
