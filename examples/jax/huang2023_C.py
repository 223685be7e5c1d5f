"""The reduced population loss of Huang, Cheng, Liang 2023 (spec H7, H8 (b)) in JAX:
α_{k→m}(n) = n_m e^{C_{m,k}} / Σ_j n_j e^{C_{j,k}},
L(C) = Σ_k p_k Σ_c weight_c ½ [(1 − α_{k→k})² + Σ_{m≠k} α_{k→m}²].

``params``: ``C`` (K, K); ``batch``: ``p`` (K,), ``counts`` (M, K), ``weights`` (M,).
``attend_to_query``: the query token adds e^{C_{k,k}} to the normalisation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def alpha(C, counts, attend_to_query=False):
    """α (K, M, K): [k, c, m] = α_{k→m} for query feature k and count vector c."""
    logits = C.T  # (K, K) [k, m] = C_{m,k}
    e = jnp.exp(logits - jax.lax.stop_gradient(logits.max(axis=1, keepdims=True)))
    num = counts[None, :, :] * e[:, None, :]  # (K, M, K)  n_m e^{C_{m,k}}
    den = num.sum(axis=2, keepdims=True)  # (K, M, 1)
    if attend_to_query:
        den = den + jnp.diagonal(e)[:, None, None]
    return num / den


def loss(params, batch, *, attend_to_query=False):
    a = alpha(params["C"], batch["counts"], attend_to_query)
    eye = jnp.eye(a.shape[0], dtype=a.dtype)
    Lk = (0.5 * jnp.sum((a - eye[:, None, :]) ** 2, axis=2)) @ batch["weights"]  # (K,)
    return batch["p"] @ Lk, {"Lk": Lk}


def outputs(params, batch, *, attend_to_query=False):
    """The loss's outputs and E_n[α] (K, K), a report that training does not need."""
    _, out = loss(params, batch, attend_to_query=attend_to_query)
    Ea = jnp.einsum("kcm,c->km", alpha(params["C"], batch["counts"], attend_to_query), batch["weights"])
    return {**out, "Ealpha": Ea}
