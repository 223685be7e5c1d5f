"""Yang et al. 2024 (spec Y5, Y7) in JAX: Â = Σ_h softmax_over_i(v_iᵀ Q_h v_k) diag(w_h),
ŷ = Âᵀ y, loss = (1/2K) mean_b Σ_k (ŷ_k − y_k)².

``params``: ``Q`` (H, d, d), ``w`` (H, K); ``batch``: ``V_all`` (d, K) (the prompt's N tokens
first), ``y`` (B, N), ``y_all`` (B, K).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def loss(params, batch, *, loss="sample"):
    if loss != "sample":
        raise ValueError(f"this example implements loss='sample' only, got loss={loss!r}")
    V_all, y, y_all = batch["V_all"], batch["y"], batch["y_all"]
    N, K = y.shape[1], V_all.shape[1]
    V = V_all[:, :N]  # (d, N) the prompt tokens
    S = jax.nn.softmax(V.T @ params["Q"] @ V_all, axis=1)  # (H, N, K) softmax over the N tokens
    A_hat = jnp.sum(S * params["w"][:, None, :], axis=0)  # (N, K)
    y_hat = y @ A_hat  # (B, K)
    return jnp.sum((y_hat - y_all) ** 2) / (2 * K * y.shape[0]), {"A_hat": A_hat, "S": S}
