"""Li et al. 2024 (spec L7, L10) in JAX: one softmax-attention layer, a two-layer ReLU MLP, the
hinge loss; ``jax.value_and_grad`` for the gradients.

    F(Ψ; P) = aᵀ Relu(W_O Σ_{i≤l} W_V p_i attn_i),  attn = softmax_i((W_K p_i)ᵀ W_Q p_q)
    loss = mean_b max{0, 1 − z_b F_b}

``params``: ``W_Q`` (m_b, d), ``W_K`` (m_b, d), ``W_V`` (m_a, d), ``W_O`` (m, m_a), ``a`` (m,);
``batch``: ``P`` (B, d, l+1) (query last), ``z`` (B,). Two forms (``FORMS``): :func:`loss`
("naive", the formula in a user's order) and :func:`loss_matched` (refimpl's contraction order,
s = Cᵀ(W_Kᵀ u), v = W_V(C σ)). Options: ``attend_to_query``, ``relu_at_zero`` (derivative of
Relu at 0); ``train_a`` is accepted and unused: whether ``a`` is trained is the caller's split of
the parameters into trained and fixed (``common.make_train_step``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _relu(h, relu_at_zero):
    return jax.nn.relu(h) if relu_at_zero == 0 else jnp.where(h >= 0, h, 0.0)


def loss(params, batch, *, attend_to_query=False, relu_at_zero=0.0, train_a=False):
    P, z = batch["P"], batch["z"]
    l = P.shape[2] - 1
    X = jnp.swapaxes(P, 1, 2)  # (B, l+1, d) tokens as rows
    context, query = X[:, :l], X[:, l]  # (B, l, d), (B, d)
    keys_in = X if attend_to_query else context  # (B, J, d)
    q = query @ params["W_Q"].T  # (B, m_b)
    k = keys_in @ params["W_K"].T  # (B, J, m_b)
    v = context @ params["W_V"].T  # (B, l, m_a)
    attn = jax.nn.softmax(jnp.einsum("bjm,bm->bj", k, q), axis=-1)  # (B, J)
    out = jnp.einsum("bi,bim->bm", attn[:, :l], v)  # (B, m_a)  Σ_i attn_i W_V p_i
    F = _relu(out @ params["W_O"].T, relu_at_zero) @ params["a"]  # (B,)
    return jnp.mean(jax.nn.relu(1 - z * F)), {"F": F, "attn": attn}


def loss_matched(params, batch, *, attend_to_query=False, relu_at_zero=0.0, train_a=False):
    P, z = batch["P"], batch["z"]
    l = P.shape[2] - 1
    C, p_q = P[:, :, :l], P[:, :, l]  # (B, d, l), (B, d)
    keys = P if attend_to_query else C  # (B, d, J)
    u = p_q @ params["W_Q"].T  # (B, m_b)  u = W_Q p_q
    attn = jax.nn.softmax(jnp.einsum("bdj,bd->bj", keys, u @ params["W_K"]), axis=-1)  # s = Cᵀ (W_Kᵀ u)
    cbar = jnp.einsum("bdi,bi->bd", C, attn[:, :l])  # (B, d)  c̄ = C σ
    F = _relu((cbar @ params["W_V"].T) @ params["W_O"].T, relu_at_zero) @ params["a"]  # v = W_V c̄
    return jnp.mean(jax.nn.relu(1 - z * F)), {"F": F, "attn": attn}


FORMS = {"naive": loss, "matched": loss_matched}
