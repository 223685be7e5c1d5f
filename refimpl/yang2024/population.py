"""Closed-form population loss of spec Y7 and the ridge predictors of Y12–Y13.

Z̄² = ZᵀZ + mτ I_N (N, N);  A = (Z̄²)⁻¹ (Zᵀ Z̃ + mτ [I_N, 0]) (N, K), a_k = e_k for k ≤ N;
L(θ) = (1/2K) Σ_k ‖Z̄(â_k − a_k)‖² + L*,  L* = (1/2K)[Σ_{k≤N} c_k + Σ_{k>N} c'_k]   (spec Y7).

Derivation [D] (checked by Monte Carlo in tests): with E λλᵀ = I and ε_k ~ N(0, τ I),
E(ŷ_k − y_k)² = ‖Zâ_k − z_k‖² + mτ‖â_k − e_k‖² (k ≤ N) or + mτ(‖â_k‖² + 1) (k > N), a quadratic
in â_k with Hessian 2Z̄², minimiser a_k and minimum c_k / c'_k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refimpl.core.arrays import check_array


@dataclass(frozen=True)
class Population:
    """The constants of spec Y7 for one dictionary."""

    Zbar2: np.ndarray  # (N, N)  ZᵀZ + mτ I_N
    A: np.ndarray  # (N, K)  optimal Â
    c: np.ndarray  # (K,)    c_k (k ≤ N, all 0 up to round-off) and c'_k (k > N)
    L_star: float  # (1/2K) Σ c
    K: int
    N: int


def population(Z_all, N: int, tau: float) -> Population:
    """Spec Y7 constants for representations ``Z_all`` (m, K), prompt length N, noise τ."""
    Z_all = check_array("Z_all", Z_all, ndim=2)
    m, K = Z_all.shape
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or not 1 <= N <= K:
        raise ValueError(f"N must be an int with 1 ≤ N ≤ K = {K}, got {N!r}")
    N = int(N)
    if not (np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite number > 0, got {tau!r}")
    Z = Z_all[:, :N]  # (m, N)
    eye = np.eye(N, dtype=Z_all.dtype)  # (N, N) in Z_all's dtype: float32 stays float32
    Zbar2 = Z.T @ Z + m * tau * eye  # (N, N)  spec Y7
    rhs = Z.T @ Z_all  # (N, K)  Zᵀ Z̃
    rhs[:, :N] += m * tau * eye  # spec Y7: + mτ [I_N, 0]
    A = np.linalg.solve(Zbar2, rhs)  # (N, K)  spec Y7
    A[:, :N] = eye  # exact: Z̄² e_k = Zᵀz_k + mτ e_k for k ≤ N
    # c_k = ‖z_k‖² + mτ − rhs_kᵀ (Z̄²)⁻¹ rhs_k   (spec Y7; the +mτ also in c'_k)
    c = np.sum(Z_all * Z_all, axis=0) + m * tau - np.sum(rhs * A, axis=0)  # (K,)
    c[:N] = 0.0  # exactly 0 for the prompt tokens (see above)
    return Population(Zbar2=Zbar2, A=A, c=c, L_star=float(np.sum(c) / (2 * K)), K=K, N=N)


def excess_and_grad(A_hat, pop: Population):
    """(1/2K) Σ_k ‖Z̄(â_k − a_k)‖² and its gradient R = Z̄²(Â − A)/K (N, K) (spec Y7, Y8)."""
    D = A_hat - pop.A.astype(A_hat.dtype, copy=False)  # (N, K)  in Â's dtype (float32 stays float32)
    GD = pop.Zbar2.astype(A_hat.dtype, copy=False) @ D  # (N, K)
    return float(np.sum(D * GD) / (2 * pop.K)), GD / pop.K


def ridge_lambda(Z, y, reg: float) -> np.ndarray:
    """λ̂ = (ZZᵀ + reg I_m)⁻¹ Z y; ``y`` (N,) or (B, N) → (m,) or (B, m) (spec Y12, Y13)."""
    Z = check_array("Z", Z, ndim=2)
    m = Z.shape[0]
    G = Z @ Z.T + reg * np.eye(m)  # (m, m)
    return np.linalg.solve(G, Z @ np.atleast_2d(y).T).T.reshape(np.shape(y)[:-1] + (m,))


def ridge_predict(Z_all, N: int, y, reg: float) -> np.ndarray:
    """ŷ_ridge = (y, Z_Qᵀ λ̂) (K,) or (B, K): copy the N labels, ridge for the rest (spec Y12)."""
    Z_all = check_array("Z_all", Z_all, ndim=2)
    y = np.asarray(y, dtype=np.float64)
    lam_hat = ridge_lambda(Z_all[:, :N], y, reg)  # (…, m)
    return np.concatenate([y, lam_hat @ Z_all[:, N:]], axis=-1)  # (…, K)
