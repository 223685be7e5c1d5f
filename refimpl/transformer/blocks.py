"""Blocks of the reference transformer (spec T), each a NumPy forward/backward pair.

Every ``*_forward`` returns ``(out, cache)``; every ``*_backward(dout, cache)`` returns
``(dx, grads)``: the vector-Jacobian product with respect to the block's input and the gradients of
its parameters, keyed like the parameter dict it was given. Rows are tokens: x is (B, T, n).
Linear maps follow ``torch.nn.Linear``: weight W (n_out, n_in), y = x Wᵀ + b, so a PyTorch model
can load these parameters as they are.

Glossary (B batch, T tokens, D = d_model, H heads, d_h = D / H head size, F = d_ff):

=============  ==================  ===============  =============================================
symbol         code                shape            meaning
=============  ==================  ===============  =============================================
X              ``X``               (B, T, d_in)     input tokens
W_in, b_in     ``W``, ``b``        (D, d_in), (D,)  read-in
P              ``pos``             (max_T, D)       learned positional embedding (rows 0..T−1 used)
W_Q, b_Q ...   ``W_Q``, ``b_Q``    (D, D), (D,)     query / key / value / output maps of attention
q, k, v        ``q``, ``k``, ``v`` (B, H, T, d_h)   per-head queries, keys, values
S              ``s``               (B, H, T, T)     scores q kᵀ / √d_h (query index, key index)
A              ``A``               (B, H, T, T)     attention probabilities softmax over keys
W_1, b_1       ``W1``, ``b1``      (F, D), (F,)     feed-forward in
W_2, b_2       ``W2``, ``b2``      (D, F), (D,)     feed-forward out
g, β           ``g``, ``b``        (D,)             layer-norm gain and bias (ε = 1e−5)
w_out, b_out   ``W``, ``b``        (1, D), (1,)     read-out
=============  ==================  ===============  =============================================
"""

from __future__ import annotations

import math

import numpy as np

from refimpl.core.ops import (
    gelu_backward,
    gelu_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    softmax_backward,
    softmax_forward,
)

ATTN_PARAMS = ("W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O")
FF_PARAMS = ("W1", "b1", "W2", "b2")


# --------------------------------------------------------------------------------------------
# linear
# --------------------------------------------------------------------------------------------
def linear_forward(x, W, b):
    """y = x Wᵀ + b over the last axis; x (..., n_in), W (n_out, n_in), b (n_out,)."""
    return x @ W.T + b, (x, W)  # (..., n_out)


def linear_backward(dy, cache):
    """Returns ``(dx, {"W": dW, "b": db})`` for y = x Wᵀ + b (dW, db summed over leading axes)."""
    x, W = cache
    n_out, n_in = W.shape
    dy2 = dy.reshape(-1, n_out)  # (N, n_out) every leading index is a row
    dW = dy2.T @ x.reshape(-1, n_in)  # (n_out, n_in)   y = x Wᵀ + b
    db = dy2.sum(axis=0)  # (n_out,)
    dx = dy @ W  # (..., n_in)
    return dx, {"W": dW, "b": db}


# --------------------------------------------------------------------------------------------
# layer norm (core pair, wrapped to the block convention)
# --------------------------------------------------------------------------------------------
def layernorm_block_forward(x, g, b):
    """y = g ⊙ (x − μ)/√(σ² + ε) + b over the last axis (spec T: ε = 1e−5)."""
    return layernorm_forward(x, g, b)


def layernorm_block_backward(dy, cache):
    """Returns ``(dx, {"g": dg, "b": db})``."""
    dx, dg, db = layernorm_backward(dy, cache)
    return dx, {"g": dg, "b": db}


# --------------------------------------------------------------------------------------------
# multi-head attention
# --------------------------------------------------------------------------------------------
def causal_mask(T: int) -> np.ndarray:
    """(T, T) boolean, True where key j > query i (entries removed by the causal mask)."""
    return np.triu(np.ones((T, T), dtype=bool), k=1)


def _split_heads(z, H):
    B, T, D = z.shape
    return z.reshape(B, T, H, D // H).transpose(0, 2, 1, 3)  # (B, H, T, d_h)


def _merge_heads(z):
    B, H, T, dh = z.shape
    return z.transpose(0, 2, 1, 3).reshape(B, T, H * dh)  # (B, T, D)


def attention_forward(x, p, n_heads: int, causal: bool = False):
    """Multi-head self-attention (spec T): H heads of size d_h = D/H, scores scaled by 1/√d_h,
    softmax over keys, optional causal mask, output map W_O.

    ``p``: {W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O}. Returns ``(y, cache)``, y (B, T, D);
    ``cache["A"]`` holds the attention probabilities (B, H, T, T).
    """
    _, T, D = x.shape  # (B, T, D)
    dh = D // n_heads
    scale = 1.0 / math.sqrt(dh)  # a Python float: keeps float32 inputs float32
    q_, c_q = linear_forward(x, p["W_Q"], p["b_Q"])  # (B, T, D)  q = x W_Qᵀ + b_Q
    k_, c_k = linear_forward(x, p["W_K"], p["b_K"])  # (B, T, D)  k = x W_Kᵀ + b_K
    v_, c_v = linear_forward(x, p["W_V"], p["b_V"])  # (B, T, D)  v = x W_Vᵀ + b_V
    q, k, v = _split_heads(q_, n_heads), _split_heads(k_, n_heads), _split_heads(v_, n_heads)  # (B, H, T, d_h)
    s = (q @ k.swapaxes(-1, -2)) * scale  # (B, H, T, T)  S = q kᵀ / √d_h
    if causal:
        s[..., causal_mask(T)] = -np.inf  # key j > query i removed: exp(−∞) = 0
    A, c_sm = softmax_forward(s, axis=-1)  # (B, H, T, T)  A = softmax over keys
    ctx = _merge_heads(A @ v)  # (B, T, D)  heads concatenated: ctx_h = A_h v_h
    y, c_o = linear_forward(ctx, p["W_O"], p["b_O"])  # (B, T, D)  y = ctx W_Oᵀ + b_O
    cache = dict(n_heads=n_heads, scale=scale, q=q, k=k, v=v, A=A, c_sm=c_sm,
                 c_q=c_q, c_k=c_k, c_v=c_v, c_o=c_o)
    return y, cache


def attention_backward(dy, cache):
    """Returns ``(dx, grads)`` with grads keyed like ``p`` of :func:`attention_forward`."""
    H, scale, q, k, v, A = (cache[n] for n in ("n_heads", "scale", "q", "k", "v", "A"))
    # y = ctx W_Oᵀ + b_O
    dctx, g_o = linear_backward(dy, cache["c_o"])  # (B, T, D)
    dctx = _split_heads(dctx, H)  # (B, H, T, d_h)
    # ctx_h = A_h v_h
    dA = dctx @ v.swapaxes(-1, -2)  # (B, H, T, T)
    dv = A.swapaxes(-1, -2) @ dctx  # (B, H, T, d_h)
    # A = softmax over keys (masked entries have A = 0, hence zero gradient)
    ds = softmax_backward(dA, cache["c_sm"]) * scale  # (B, H, T, T)  includes S = q kᵀ · scale
    # S = q kᵀ / √d_h
    dq = ds @ k  # (B, H, T, d_h)
    dk = ds.swapaxes(-1, -2) @ q  # (B, H, T, d_h)
    # q, k, v = x W_{Q,K,V}ᵀ + b_{Q,K,V}: the three paths into x add up
    dx_q, g_q = linear_backward(_merge_heads(dq), cache["c_q"])
    dx_k, g_k = linear_backward(_merge_heads(dk), cache["c_k"])
    dx_v, g_v = linear_backward(_merge_heads(dv), cache["c_v"])
    grads = {
        "W_Q": g_q["W"], "b_Q": g_q["b"], "W_K": g_k["W"], "b_K": g_k["b"],
        "W_V": g_v["W"], "b_V": g_v["b"], "W_O": g_o["W"], "b_O": g_o["b"],
    }
    return dx_q + dx_k + dx_v, grads


# --------------------------------------------------------------------------------------------
# feed-forward
# --------------------------------------------------------------------------------------------
def feedforward_forward(x, p, activation: str):
    """y = W_2 φ(W_1 x + b_1) + b_2 with φ = ReLU or GELU (tanh). ``p``: {W1, b1, W2, b2}."""
    h, c1 = linear_forward(x, p["W1"], p["b1"])  # (B, T, F)  h = x W_1ᵀ + b_1
    if activation == "relu":
        r, c_act = relu_forward(h)  # (B, T, F)  r = max(h, 0)
    elif activation == "gelu":
        r, c_act = gelu_forward(h)  # (B, T, F)  r = GELU_tanh(h)
    else:
        raise ValueError(f"activation must be one of ['relu', 'gelu'], got {activation!r}")
    y, c2 = linear_forward(r, p["W2"], p["b2"])  # (B, T, D)  y = r W_2ᵀ + b_2
    return y, dict(activation=activation, c1=c1, c_act=c_act, c2=c2)


def feedforward_backward(dy, cache):
    """Returns ``(dx, {"W1", "b1", "W2", "b2"})``."""
    dr, g2 = linear_backward(dy, cache["c2"])  # y = r W_2ᵀ + b_2
    if cache["activation"] == "relu":
        dh = relu_backward(dr, cache["c_act"])  # r = max(h, 0)
    else:
        dh = gelu_backward(dr, cache["c_act"])  # r = GELU_tanh(h)
    dx, g1 = linear_backward(dh, cache["c1"])  # h = x W_1ᵀ + b_1
    return dx, {"W1": g1["W"], "b1": g1["b"], "W2": g2["W"], "b2": g2["b"]}


# --------------------------------------------------------------------------------------------
# residual connection with layer norm (post- or pre-norm)
# --------------------------------------------------------------------------------------------
def residual_forward(x, sublayer, g, b, norm: str):
    """One residual sub-block around ``sublayer`` (a function x ↦ (f(x), cache)):

    - ``norm="post"`` (Vaswani):  y = LN(x + f(x))
    - ``norm="pre"``  (GPT-2):    y = x + f(LN(x))

    Returns ``(y, cache)``; :func:`residual_backward` needs the sublayer's backward.
    """
    if norm == "post":
        fx, c_f = sublayer(x)  # (B, T, D)
        y, c_ln = layernorm_forward(x + fx, g, b)  # (B, T, D)  y = LN(x + f(x))
    elif norm == "pre":
        n, c_ln = layernorm_forward(x, g, b)  # (B, T, D)  n = LN(x)
        fx, c_f = sublayer(n)  # (B, T, D)
        y = x + fx  # (B, T, D)  y = x + f(LN(x))
    else:
        raise ValueError(f"norm must be one of ['post', 'pre'], got {norm!r}")
    return y, dict(norm=norm, c_f=c_f, c_ln=c_ln)


def residual_backward(dy, cache, sublayer_backward):
    """Returns ``(dx, {"ln": {"g", "b"}, "sub": sublayer grads})``."""
    if cache["norm"] == "post":
        dr, dg, db = layernorm_backward(dy, cache["c_ln"])  # y = LN(r), r = x + f(x)
        dx_f, g_sub = sublayer_backward(dr, cache["c_f"])  # r = x + f(x): both paths
        dx = dr + dx_f
    else:
        dn, g_sub = sublayer_backward(dy, cache["c_f"])  # y = x + f(n)
        dx_ln, dg, db = layernorm_backward(dn, cache["c_ln"])  # n = LN(x)
        dx = dy + dx_ln  # identity path + normalised path
    return dx, {"ln": {"g": dg, "b": db}, "sub": g_sub}


# --------------------------------------------------------------------------------------------
# one transformer layer: attention sub-block, then feed-forward sub-block
# --------------------------------------------------------------------------------------------
def layer_forward(x, p, *, n_heads: int, norm: str, activation: str, causal: bool):
    """x ↦ residual(attention) ↦ residual(feed-forward). ``p`` keys: ``attn.W_Q`` ... ``attn.b_O``,
    ``ln1.g``, ``ln1.b`` (around attention), ``ff.W1`` ... ``ff.b2``, ``ln2.g``, ``ln2.b``."""
    pa = {n: p["attn." + n] for n in ATTN_PARAMS}
    pf = {n: p["ff." + n] for n in FF_PARAMS}
    h, c1 = residual_forward(x, lambda z: attention_forward(z, pa, n_heads, causal),
                             p["ln1.g"], p["ln1.b"], norm)  # (B, T, D)
    y, c2 = residual_forward(h, lambda z: feedforward_forward(z, pf, activation),
                             p["ln2.g"], p["ln2.b"], norm)  # (B, T, D)
    return y, dict(c1=c1, c2=c2, A=c1["c_f"]["A"])


def layer_backward(dy, cache):
    """Returns ``(dx, grads)`` keyed like ``p`` of :func:`layer_forward`."""
    dh, g2 = residual_backward(dy, cache["c2"], feedforward_backward)  # y = residual_ff(h)
    dx, g1 = residual_backward(dh, cache["c1"], attention_backward)  # h = residual_attn(x)
    grads = {"ln1.g": g1["ln"]["g"], "ln1.b": g1["ln"]["b"], "ln2.g": g2["ln"]["g"], "ln2.b": g2["ln"]["b"]}
    grads.update({"attn." + n: g for n, g in g1["sub"].items()})
    grads.update({"ff." + n: g for n, g in g2["sub"].items()})
    return dx, grads


# --------------------------------------------------------------------------------------------
# read-in and read-out
# --------------------------------------------------------------------------------------------
def read_in_forward(X, W, b, pos=None):
    """h_t = W x_t + b (+ P_t with learned positions). X (B, T, d_in) → h (B, T, D)."""
    h, c = linear_forward(X, W, b)  # (B, T, D)
    T = X.shape[1]
    if pos is not None:
        h = h + pos[:T]  # (B, T, D)  + P_t, t = 0..T−1
    return h, dict(c=c, T=T, pos_shape=None if pos is None else pos.shape)


def read_in_backward(dh, cache):
    """Returns ``(dX, {"W", "b"[, "pos"]})``; rows of ``pos`` beyond T get zero gradient."""
    dX, g = linear_backward(dh, cache["c"])  # h = X Wᵀ + b
    if cache["pos_shape"] is not None:
        dpos = np.zeros(cache["pos_shape"], dtype=dh.dtype)  # (max_T, D)
        dpos[: cache["T"]] = dh.sum(axis=0)  # h = ... + P_t
        g["pos"] = dpos
    return dX, g


def read_out_forward(h, W, b, readout: str):
    """out = w_outᵀ h_t + b_out at every position (``"all"``, out (B, T)) or at the last (``"last"``, (B,))."""
    if readout == "all":
        y, c = linear_forward(h, W, b)  # (B, T, 1)
        return y[..., 0], dict(readout=readout, c=c)  # (B, T)
    if readout == "last":
        y, c = linear_forward(h[:, -1, :], W, b)  # (B, 1)  last position only
        return y[:, 0], dict(readout=readout, c=c, shape=h.shape)  # (B,)
    raise ValueError(f"readout must be one of ['all', 'last'], got {readout!r}")


def read_out_backward(dout, cache):
    """Returns ``(dh, {"W", "b"})``."""
    dh, g = linear_backward(dout[..., None], cache["c"])  # y = h Wᵀ + b
    if cache["readout"] == "last":
        full = np.zeros(cache["shape"], dtype=dh.dtype)  # (B, T, D) only h_T is read
        full[:, -1, :] = dh
        dh = full
    return dh, g
