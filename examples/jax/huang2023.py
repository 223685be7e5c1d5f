"""Huang, Cheng, Liang 2023 (spec H4, H5) in JAX: ŷ = Σ_i softmax_i(x_iᵀ Q x_q) y_i,
loss = mean_b ½ (ŷ_b − y_q,b)².

``params``: ``Q`` (d, d); ``batch``: ``X`` (B, N, d), ``xq`` (B, d), ``y`` (B, N), ``yq`` (B,).
``attend_to_query``: the query token joins the softmax (with label 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def loss(params, batch, *, loss="sample", attend_to_query=False):
    if loss != "sample":
        raise ValueError(f"this example implements loss='sample' only, got loss={loss!r}")
    X, xq, y, yq = batch["X"], batch["xq"], batch["y"], batch["yq"]
    N = X.shape[1]
    keys = jnp.concatenate([X, xq[:, None, :]], axis=1) if attend_to_query else X  # (B, J, d)
    attn = jax.nn.softmax(jnp.einsum("bjd,bd->bj", keys, xq @ params["Q"].T), axis=-1)  # (B, J)
    y_hat = jnp.sum(attn[:, :N] * y, axis=-1)  # (B,)
    return jnp.mean(0.5 * (y_hat - yq) ** 2), {"attn": attn, "y_hat": y_hat}
