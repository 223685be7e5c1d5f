"""Numba building blocks shared by the papers' kernels."""

from __future__ import annotations

import numpy as np

from refimpl.core.jit import njit


@njit
def row_dots(M, v, out, n_rows, n_cols):
    """out[r] = Σ_{c < n_cols} M[r, c] v[c] for r < n_rows, each sum in order over c, four rows
    per pass over v (M is a 2-D view, e.g. one prompt P[b]; no copy is made). The sums are kept
    in the arrays' dtype (a float32 call never widens to float64)."""
    if n_cols < 1:
        for r in range(n_rows):
            out[r] = 0
        return
    v0 = v[0]
    r = 0
    while r + 4 <= n_rows:
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
        r += 4
    while r < n_rows:
        acc = M[r, 0] * v0
        for c in range(1, n_cols):
            acc += M[r, c] * v[c]
        out[r] = acc
        r += 1


@njit(inline="always")
def vec_sum(x, n):
    """Σ_{j<n} x[j] in a fixed order: eight partial sums (lanes j mod 8), combined pairwise; short
    dependency chains that the compiler can keep in one SIMD register. In x's dtype; n ≥ 1."""
    if n < 8:
        s = x[0]
        for j in range(1, n):
            s += x[j]
        return s
    s0, s1, s2, s3 = x[0], x[1], x[2], x[3]
    s4, s5, s6, s7 = x[4], x[5], x[6], x[7]
    j = 8
    while j + 8 <= n:
        s0 += x[j]
        s1 += x[j + 1]
        s2 += x[j + 2]
        s3 += x[j + 3]
        s4 += x[j + 4]
        s5 += x[j + 5]
        s6 += x[j + 6]
        s7 += x[j + 7]
        j += 8
    while j < n:
        s0 += x[j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(inline="always")
def vec_dot(x, y, n):
    """Σ_{j<n} x[j] y[j] in the fixed order of :func:`vec_sum`. In the arrays' dtype; n ≥ 1."""
    if n < 8:
        s = x[0] * y[0]
        for j in range(1, n):
            s += x[j] * y[j]
        return s
    s0, s1, s2, s3 = x[0] * y[0], x[1] * y[1], x[2] * y[2], x[3] * y[3]
    s4, s5, s6, s7 = x[4] * y[4], x[5] * y[5], x[6] * y[6], x[7] * y[7]
    j = 8
    while j + 8 <= n:
        s0 += x[j] * y[j]
        s1 += x[j + 1] * y[j + 1]
        s2 += x[j + 2] * y[j + 2]
        s3 += x[j + 3] * y[j + 3]
        s4 += x[j + 4] * y[j + 4]
        s5 += x[j + 5] * y[j + 5]
        s6 += x[j + 6] * y[j + 6]
        s7 += x[j + 7] * y[j + 7]
        j += 8
    while j < n:
        s0 += x[j] * y[j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(inline="always")
def _max_nan(m, v):
    """max(m, v) where a NaN wins (as in ``np.max``)."""
    return v if (v > m or v != v) else m


@njit
def vec_max(x, n):
    """max_{j<n} x[j], a NaN anywhere giving NaN (as ``np.max``); eight partial maxima (the result
    does not depend on the order: max is exact). n ≥ 1."""
    if n < 8:
        m = x[0]
        for j in range(1, n):
            m = _max_nan(m, x[j])
        return m
    m0, m1, m2, m3 = x[0], x[1], x[2], x[3]
    m4, m5, m6, m7 = x[4], x[5], x[6], x[7]
    j = 8
    while j + 8 <= n:
        m0 = _max_nan(m0, x[j])
        m1 = _max_nan(m1, x[j + 1])
        m2 = _max_nan(m2, x[j + 2])
        m3 = _max_nan(m3, x[j + 3])
        m4 = _max_nan(m4, x[j + 4])
        m5 = _max_nan(m5, x[j + 5])
        m6 = _max_nan(m6, x[j + 6])
        m7 = _max_nan(m7, x[j + 7])
        j += 8
    while j < n:
        m0 = _max_nan(m0, x[j])
        j += 1
    return _max_nan(_max_nan(_max_nan(m0, m1), _max_nan(m2, m3)), _max_nan(_max_nan(m4, m5), _max_nan(m6, m7)))


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
