"""Huang, Cheng, Liang 2023 (spec H4, H5) in JAX: ŷ = Σ_i softmax_i(x_iᵀ Q x_q) y_i,
loss = mean_b ½ (ŷ_b − y_q,b)².

``params``: ``Q`` (d, d); ``batch``: ``X`` (B, N, d), ``xq`` (B, d), ``y`` (B, N), ``yq`` (B,).
``attend_to_query``: the query token joins the softmax (with label 0). ``loss="Ew"``: the same
loss with the task vector w integrated in closed form (E wwᵀ = I, spec H6), mean_b ½‖u_b‖²,
u = Σ_{i≤N} attn_i x_i − x_q (the batch needs no labels).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def loss(params, batch, *, loss="sample", attend_to_query=False):
    if loss not in ("sample", "Ew"):
        raise ValueError(f"loss must be 'sample' or 'Ew', got loss={loss!r}")
    X, xq = batch["X"], batch["xq"]
    N = X.shape[1]
    keys = jnp.concatenate([X, xq[:, None, :]], axis=1) if attend_to_query else X  # (B, J, d)
    attn = jax.nn.softmax(jnp.einsum("bjd,bd->bj", keys, xq @ params["Q"].T), axis=-1)  # (B, J)
    if loss == "Ew":
        u = jnp.einsum("bi,bid->bd", attn[:, :N], X) - xq  # (B, d)  Σ_{i≤N} attn_i x_i − x_q
        return jnp.mean(0.5 * jnp.sum(u**2, axis=-1)), {"attn": attn, "u": u}
    y, yq = batch["y"], batch["yq"]
    y_hat = jnp.sum(attn[:, :N] * y, axis=-1)  # (B,)
    return jnp.mean(0.5 * (y_hat - yq) ** 2), {"attn": attn, "y_hat": y_hat}
