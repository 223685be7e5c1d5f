"""The spec T transformer in JAX, as a JAX user writes it: pure functions of a flat parameter
dict (refimpl's names, ``layer0.attn.W_Q`` ...; weights (n_out, n_in), y = x Wᵀ + b).

    h = X W_inᵀ + b_in (+ pos[:T])
    each layer: post-norm  h = LN(h + Attn(h)),  h = LN(h + FF(h))        (Vaswani)
                pre-norm   h = h + Attn(LN(h)),  h = h + FF(LN(h))        (GPT-2; final LN)
    Attn: H heads, scores q kᵀ/√d_h, optional causal mask, softmax over keys, output map W_O
    FF: W_2 φ(W_1 x + b_1) + b_2, φ = GELU (tanh approximation) or ReLU
    out = w_outᵀ h_t + b_out at every position ("all") or the last ("last")
    loss: squared ½ mean (out − target)², or hinge mean max{0, 1 − target·out}
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def linear(x, W, b):
    return x @ W.T + b


def layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)  # biased, as torch.nn.LayerNorm
    return (x - mu) / jnp.sqrt(var + eps) * g + b


def attention(x, p, pre, n_heads, causal):
    """Multi-head self-attention of x (B, T, D); returns the output and the probabilities (B, H, T, T)."""
    B, T, D = x.shape
    dh = D // n_heads

    def heads(z):  # (B, T, D) -> (B, H, T, d_h)
        return z.reshape(B, T, n_heads, dh).transpose(0, 2, 1, 3)

    q, k, v = (heads(linear(x, p[f"{pre}W_{n}"], p[f"{pre}b_{n}"])) for n in "QKV")
    s = (q @ k.swapaxes(-1, -2)) * (1.0 / math.sqrt(dh))  # (B, H, T, T)
    if causal:
        s = jnp.where(jnp.tril(jnp.ones((T, T), dtype=bool)), s, -jnp.inf)  # key j > query i removed
    A = jax.nn.softmax(s, axis=-1)
    ctx = (A @ v).transpose(0, 2, 1, 3).reshape(B, T, D)  # heads concatenated
    return linear(ctx, p[f"{pre}W_O"], p[f"{pre}b_O"]), A


def feed_forward(x, p, pre, activation):
    h = linear(x, p[f"{pre}W1"], p[f"{pre}b1"])
    h = jax.nn.relu(h) if activation == "relu" else jax.nn.gelu(h, approximate=True)
    return linear(h, p[f"{pre}W2"], p[f"{pre}b2"])


def forward(params, X, *, n_layers, n_heads, norm="pre", activation="gelu", causal=False, positions="none",
            readout="all"):
    """out ((B, T) for readout "all", (B,) for "last") and the attention of every layer."""
    p = params
    h = linear(X, p["read_in.W"], p["read_in.b"])  # (B, T, D)
    if positions == "learned":
        h = h + p["pos"][: X.shape[1]]
    attn = []
    for l in range(n_layers):
        pre = f"layer{l}."

        def ln(x, name, pre=pre):
            return layer_norm(x, p[f"{pre}{name}.g"], p[f"{pre}{name}.b"])

        if norm == "post":
            a, A = attention(h, p, pre + "attn.", n_heads, causal)
            h = ln(h + a, "ln1")
            h = ln(h + feed_forward(h, p, pre + "ff.", activation), "ln2")
        else:
            a, A = attention(ln(h, "ln1"), p, pre + "attn.", n_heads, causal)
            h = h + a
            h = h + feed_forward(ln(h, "ln2"), p, pre + "ff.", activation)
        attn.append(A)
    if norm == "pre":
        h = layer_norm(h, p["ln_f.g"], p["ln_f.b"])
    if readout == "last":
        h = h[:, -1]  # (B, D)
    return linear(h, p["read_out.W"], p["read_out.b"])[..., 0], attn


def loss(params, batch, *, loss="squared", **arch):
    """``(loss, {"out", "attn"})``; ``arch``: the keywords of :func:`forward`."""
    out, attn = forward(params, batch["X"], **arch)
    t = batch["target"]
    value = 0.5 * jnp.mean((out - t) ** 2) if loss == "squared" else jnp.mean(jax.nn.relu(1.0 - t * out))
    return value, {"out": out, "attn": jnp.stack(attn)}
