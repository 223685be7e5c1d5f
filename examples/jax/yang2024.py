"""Yang et al. 2024 (spec Y5, Y7) in JAX: Â = Σ_h softmax_over_i(v_iᵀ Q_h v_k) diag(w_h),
ŷ = Âᵀ y, loss = (1/2K) mean_b Σ_k (ŷ_k − y_k)².

``params``: ``Q`` (H, d, d), ``w`` (H, K); ``batch``: ``V_all`` (d, K) (the prompt's N tokens
first), ``y`` (B, N), ``y_all`` (B, K).

``loss="population"``: the closed form of spec Y7 instead; ``batch``: ``V_all``, ``Z_all``
(m, K), ``tau`` (); the prompt length ``N`` is a keyword (static: it sets shapes).
Z̄² = ZᵀZ + mτ I_N, A = [I_N, (Z̄²)⁻¹ Zᵀ Z̃_{>N}], L = (1/2K) Σ_k ‖Z̄(â_k − a_k)‖² + L*,
L* = (1/2K) Σ_{k>N} (‖z_k‖² + mτ − (Zᵀz_k)ᵀ a_k).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LOSSES = ("sample", "population")


def attention(params, V_all, N):
    """Â (N, K) and the attention S (H, N, K)."""
    V = V_all[:, :N]  # (d, N) the prompt tokens
    S = jax.nn.softmax(V.T @ params["Q"] @ V_all, axis=1)  # (H, N, K) softmax over the N tokens
    return jnp.sum(S * params["w"][:, None, :], axis=0), S  # (N, K)


def loss(params, batch, *, loss="sample", N=None):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got loss={loss!r}")
    if loss == "population":
        return population_loss(params, batch, N=N)
    V_all, y, y_all = batch["V_all"], batch["y"], batch["y_all"]
    K = V_all.shape[1]
    A_hat, S = attention(params, V_all, y.shape[1])
    y_hat = y @ A_hat  # (B, K)
    return jnp.sum((y_hat - y_all) ** 2) / (2 * K * y.shape[0]), {"A_hat": A_hat, "S": S}


def population_loss(params, batch, *, N):
    """Spec Y7; the outputs add the optimal A (N, K) and L* (constants of the dictionary)."""
    Z_all, tau = batch["Z_all"], batch["tau"]
    m, K = Z_all.shape
    A_hat, S = attention(params, batch["V_all"], N)
    Z = Z_all[:, :N]  # (m, N)
    Zbar2 = Z.T @ Z + m * tau * jnp.eye(N, dtype=Z.dtype)  # (N, N)
    rhs = Z.T @ Z_all[:, N:]  # (N, K − N)  Zᵀ z_k for k > N
    A_rest = jnp.linalg.solve(Zbar2, rhs)  # (N, K − N)
    A = jnp.concatenate([jnp.eye(N, dtype=Z.dtype), A_rest], axis=1)  # (N, K)
    L_star = jnp.sum(jnp.sum(Z_all[:, N:] ** 2, axis=0) + m * tau - jnp.sum(rhs * A_rest, axis=0)) / (2 * K)
    D = A_hat - A  # (N, K)
    excess = jnp.sum(D * (Zbar2 @ D)) / (2 * K)  # (1/2K) Σ_k ‖Z̄ d_k‖²
    return excess + L_star, {"A_hat": A_hat, "S": S, "A": A, "L_star": L_star}
