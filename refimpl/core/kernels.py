"""Numba building blocks shared by the papers' kernels."""

from __future__ import annotations

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
