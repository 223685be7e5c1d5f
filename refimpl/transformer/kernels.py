"""The Numba path of the spec T transformer: ``loss_and_grads(..., backend="numba")``.

The same math as ``blocks.py`` / ``model.py`` (the readable reference), organised for speed:

- **Tokens are rows.** Every activation is a C-contiguous 2-D array (N, ·) with N = B·T, so every
  linear map is ONE matrix product over all tokens (BLAS through ``np.matmul(..., out=)``): the
  query, key and value maps are fused into one (N, D) @ (D, 3D) product against
  [W_Q; W_K; W_V] (concatenated per call from the parameter dict, whose layout stays that of the
  NumPy path), and every weight gradient is one (n_out, N) @ (N, n_in) product.
- **Attention** per (prompt, head): the six small products (q kᵀ, A v; backward dctx vᵀ, Aᵀ dctx,
  dS k, dSᵀ q) are batched BLAS calls over (B, H) on strided per-head views of the q|k|v rows
  (no transposed copies; the results land in place in ctx and dq|dk|dv); the softmax and its
  Jacobian are Numba kernels over the rows, the exponentials one flat vectorised loop.
- **Fused Numba kernels** for everything else between the products, one pass each over the
  rows: bias + GELU (keeping tanh for the backward) or bias + ReLU; bias + residual add + layer
  norm; layer-norm backward with the residual add, the gain/bias gradients and the column sum
  that is the bias gradient of the linear map below it. ``exp`` and ``tanh`` are the vectorisable
  ones of :mod:`refimpl.core.vmath`.
- **Buffers are reused across calls** (a per-thread workspace keyed by config, B, T and dtype);
  only the returned gradients (and ``aux``) are new arrays. Input validation is the caller's
  ``check`` (``train_adam`` validates the first step only).

Every reduction runs in a fixed order (sums of a row with eight partial sums, column sums in row
order), so results are deterministic; they differ from the NumPy path by rounding only
(tests/test_transformer_kernels.py: ≤ 1e−12 of each tensor's scale in float64 on every option
combination; float32 is computed in float32 throughout, scalars included).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np

from refimpl.core.jit import njit
from refimpl.core.ops import LAYERNORM_EPS
from refimpl.core.vmath import exp, tanh

_GELU_C = 0.7978845608028654  # √(2/π)   (refimpl.core.ops)
_GELU_A = 0.044715


# --------------------------------------------------------------------------------------------
# row reductions in a fixed order (eight partial sums: short dependency chains, pairwise-like error)
# --------------------------------------------------------------------------------------------
@njit(inline="always")
def _row_sum(x, i, n):
    """Σ_j x[i, j] for j < n."""
    if n < 8:
        s = x[i, 0]
        for j in range(1, n):
            s += x[i, j]
        return s
    s0, s1, s2, s3 = x[i, 0], x[i, 1], x[i, 2], x[i, 3]
    s4, s5, s6, s7 = x[i, 4], x[i, 5], x[i, 6], x[i, 7]
    j = 8
    while j + 8 <= n:
        s0 += x[i, j]
        s1 += x[i, j + 1]
        s2 += x[i, j + 2]
        s3 += x[i, j + 3]
        s4 += x[i, j + 4]
        s5 += x[i, j + 5]
        s6 += x[i, j + 6]
        s7 += x[i, j + 7]
        j += 8
    while j < n:
        s0 += x[i, j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(inline="always")
def _row_dot(x, i, y, k, n):
    """Σ_j x[i, j] y[k, j] for j < n."""
    if n < 8:
        s = x[i, 0] * y[k, 0]
        for j in range(1, n):
            s += x[i, j] * y[k, j]
        return s
    s0, s1, s2, s3 = x[i, 0] * y[k, 0], x[i, 1] * y[k, 1], x[i, 2] * y[k, 2], x[i, 3] * y[k, 3]
    s4, s5, s6, s7 = x[i, 4] * y[k, 4], x[i, 5] * y[k, 5], x[i, 6] * y[k, 6], x[i, 7] * y[k, 7]
    j = 8
    while j + 8 <= n:
        s0 += x[i, j] * y[k, j]
        s1 += x[i, j + 1] * y[k, j + 1]
        s2 += x[i, j + 2] * y[k, j + 2]
        s3 += x[i, j + 3] * y[k, j + 3]
        s4 += x[i, j + 4] * y[k, j + 4]
        s5 += x[i, j + 5] * y[k, j + 5]
        s6 += x[i, j + 6] * y[k, j + 6]
        s7 += x[i, j + 7] * y[k, j + 7]
        j += 8
    while j < n:
        s0 += x[i, j] * y[k, j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


# --------------------------------------------------------------------------------------------
# layer norm (ops.layernorm_forward / layernorm_backward), fused with the residual add
# --------------------------------------------------------------------------------------------
@njit(inline="always")
def _ln_row(S, i, g, b, Nout, Xhat, rstd, one, nD, eps):
    """Row i of y = g ⊙ (S − μ)/√(σ² + ε) + b; keeps x̂ and 1/√(σ² + ε)."""
    D = S.shape[1]
    mu = _row_sum(S, i, D) / nD  # μ = mean(x)
    for j in range(D):
        Xhat[i, j] = S[i, j] - mu  # x − μ
    var = _row_dot(Xhat, i, Xhat, i, D) / nD  # biased variance
    r = one / np.sqrt(var + eps)
    rstd[i] = r
    for j in range(D):
        xh = Xhat[i, j] * r  # x̂ = (x − μ) rstd
        Xhat[i, j] = xh
        Nout[i, j] = xh * g[j] + b[j]  # y = g ⊙ x̂ + b


@njit
def layernorm(S, g, b, Nout, Xhat, rstd, one, nD, eps):
    """Nout = LN(S) row-wise (S (N, D)); Xhat (N, D), rstd (N,) kept for the backward."""
    for i in range(S.shape[0]):
        _ln_row(S, i, g, b, Nout, Xhat, rstd, one, nD, eps)


@njit
def residual_layernorm(Xin, Y, bias, S, g, b, Nout, Xhat, rstd, one, nD, eps):
    """S = Xin + (Y + bias) (the residual add of a linear map's output), then Nout = LN(S)."""
    N, D = S.shape
    for i in range(N):
        for j in range(D):
            S[i, j] = Xin[i, j] + (Y[i, j] + bias[j])
        _ln_row(S, i, g, b, Nout, Xhat, rstd, one, nD, eps)


@njit
def layernorm_backward(dY, dY2, Xhat, rstd, g, dres, dX, dg, db, colsum, tmp, nD):
    """Backward of Nout = LN(S) for the upstream gradient dY (+ dY2 when given):

        dx̂ = dy ⊙ g;  dx = rstd (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂));  dX = dres + dx (when given)

    accumulating dg += Σ_rows dy ⊙ x̂, db += Σ_rows dy and colsum += Σ_rows dX (the bias gradient
    of the linear map whose output entered S). ``tmp``: (1, D) scratch."""
    N, D = dX.shape
    for i in range(N):
        for j in range(D):
            dy = dY[i, j]
            if dY2 is not None:
                dy = dy + dY2[i, j]
            dg[j] += dy * Xhat[i, j]  # y = g ⊙ x̂ + b
            db[j] += dy
            tmp[0, j] = dy * g[j]  # dx̂
        m1 = _row_sum(tmp, 0, D) / nD
        m2 = _row_dot(tmp, 0, Xhat, i, D) / nD
        r = rstd[i]
        for j in range(D):
            v = r * ((tmp[0, j] - m1) - Xhat[i, j] * m2)  # x̂ = (x − μ) rstd
            if dres is not None:
                v = dres[i, j] + v  # identity path + normalised path
            dX[i, j] = v
            colsum[j] += v


# --------------------------------------------------------------------------------------------
# feed-forward activation (ops.gelu_forward / relu_forward and backwards), fused with the bias
# --------------------------------------------------------------------------------------------
@njit
def bias_gelu(H, bias, Tt, R, half, one, c, a):
    """In place H += bias (the pre-activation h = x W_1ᵀ + b_1); Tt = tanh(u), u = c (h + a h³);
    R = ½ h (1 + t)."""
    N, F = H.shape
    for i in range(N):
        for j in range(F):
            x = H[i, j] + bias[j]
            H[i, j] = x
            t = tanh(c * (x + a * x * x * x))
            Tt[i, j] = t
            R[i, j] = half * x * (one + t)


@njit
def gelu_backward(dR, H, Tt, db, half, one, c, c3a):
    """In place dR ← dR · GELU'(h) (ops.gelu_backward), db += Σ_rows of the result."""
    N, F = dR.shape
    for i in range(N):
        for j in range(F):
            x = H[i, j]
            t = Tt[i, j]
            du_dx = c * (one + c3a * x * x)  # u = √(2/π)(x + a x³)
            v = dR[i, j] * (half * (one + t) + half * x * (one - t * t) * du_dx)
            dR[i, j] = v
            db[j] += v


@njit
def bias_relu(H, bias, R, zero):
    """In place H += bias; R = max(H, 0)."""
    N, F = H.shape
    for i in range(N):
        for j in range(F):
            x = H[i, j] + bias[j]
            H[i, j] = x
            R[i, j] = x if x > zero else (x if x != x else zero)  # np.maximum keeps NaN


@njit
def relu_backward(dR, H, db, zero, one):
    """In place dR ← dR · 𝟙[h > 0] (0 at h = 0, as ops.relu_backward), db += Σ_rows."""
    N, F = dR.shape
    for i in range(N):
        for j in range(F):
            v = dR[i, j] * (one if H[i, j] > zero else zero)
            dR[i, j] = v
            db[j] += v


# --------------------------------------------------------------------------------------------
# multi-head attention: the six small products per (prompt, head) are batched BLAS calls
# (np.matmul over (B, H) on strided views of the (N, 3D) q|k|v array); the softmax is here
# --------------------------------------------------------------------------------------------
@njit
def softmax_rows(S, T, scale, causal, ninf):
    """In place, for each row r = (b, h, i) of S (B·H·T, T) holding q kᵀ: S = q kᵀ · scale, masked
    (causal: key j > query i set to −∞), A = softmax over keys (ops.softmax_forward: max
    subtracted). The exponentials run as one flat loop over all rows (long, vectorisable)."""
    R = S.shape[0]
    for r in range(R):
        J = r % T + 1 if causal else T  # keys 0..J−1 are attended
        m = S[r, 0] * scale
        for j in range(J):
            v = S[r, j] * scale  # S = q kᵀ / √d_h
            S[r, j] = v
            if v > m:  # a NaN score is skipped here, but exp(NaN − m) makes the row NaN (as NumPy)
                m = v
        for j in range(J):
            S[r, j] = S[r, j] - m
        for j in range(J, T):
            S[r, j] = ninf  # exp(−∞) = 0
    flat = S.reshape(-1)
    for k in range(flat.size):
        flat[k] = exp(flat[k])
    for r in range(R):
        J = r % T + 1 if causal else T
        tot = S[r, 0]
        for j in range(1, J):
            tot += S[r, j]
        for j in range(J):
            S[r, j] = S[r, j] / tot


@njit
def softmax_rows_backward(dS, A, T, scale, causal, zero):
    """In place dS ← A ⊙ (dA − Σ_keys A ⊙ dA) · scale over rows (B·H·T, T) (ops.softmax_backward,
    then S = q kᵀ · scale); masked entries (A = 0) get 0."""
    R = dS.shape[0]
    for r in range(R):
        J = r % T + 1 if causal else T
        acc = A[r, 0] * dS[r, 0]
        for j in range(1, J):
            acc += A[r, j] * dS[r, j]
        for j in range(J):
            dS[r, j] = A[r, j] * (dS[r, j] - acc) * scale
        for j in range(J, T):
            dS[r, j] = zero


def _heads(z, B, T, H, parts):
    """Per-head views (B, H, T, d_h) of a token-row array z (N, parts·D) (no copy)."""
    dh = z.shape[1] // (parts * H)
    z5 = z.reshape(B, T, parts, H, dh)
    return [z5[:, :, k].transpose(0, 2, 1, 3) for k in range(parts)]


# --------------------------------------------------------------------------------------------
# read-in
# --------------------------------------------------------------------------------------------
@njit
def bias_positions(Hh, bias, pos, T):
    """In place h = (X W_inᵀ) + b_in + P_t over rows i = b·T + t (``pos`` None: no positions)."""
    N, D = Hh.shape
    for i in range(N):
        t = i % T
        for j in range(D):
            v = Hh[i, j] + bias[j]
            if pos is not None:
                v = v + pos[t, j]
            Hh[i, j] = v


# --------------------------------------------------------------------------------------------
# the workspace: every activation and scratch buffer of one (config, B, T, dtype)
# --------------------------------------------------------------------------------------------
class _Workspace:
    def __init__(self, cfg, B: int, T: int, dt):
        L, D, F, H = cfg.n_layers, cfg.d_model, cfg.d_ff, cfg.n_heads
        N = B * T
        self.B, self.T, self.N = B, T, N
        e = lambda *s: np.empty(s, dtype=dt)  # noqa: E731
        self.X = e(N, cfg.d_in)
        self.x = [e(N, D) for _ in range(L + 1)]  # layer inputs (x[L]: the last layer's output)
        self.n1 = [e(N, D) for _ in range(L)]  # pre: LN1(x); post: the sum x + attn (scratch)
        self.xh1 = [e(N, D) for _ in range(L)]
        self.rs1 = [e(N) for _ in range(L)]
        self.qkv = [e(N, 3 * D) for _ in range(L)]
        self.A = [np.zeros((B, H, T, T), dtype=dt) for _ in range(L)]  # masked entries stay 0
        self.ctx = [e(N, D) for _ in range(L)]
        self.h = [e(N, D) for _ in range(L)]  # pre: x + attn; post: LN1(x + attn)
        self.n2 = [e(N, D) for _ in range(L)]  # pre: LN2(h); post: h + ff (scratch)
        self.xh2 = [e(N, D) for _ in range(L)]
        self.rs2 = [e(N) for _ in range(L)]
        self.f = [e(N, F) for _ in range(L)]  # pre-activations
        self.t = [e(N, F) if cfg.activation == "gelu" else None for _ in range(L)]  # tanh(u) (GELU)
        self.r = [e(N, F) for _ in range(L)]  # activations
        self.tmpD = e(N, D)  # linear outputs before their fused bias/residual kernel
        self.nf, self.xhf, self.rsf = e(N, D), e(N, D), e(N)  # final LN (pre-norm)
        self.d1, self.d2, self.d3, self.dn = e(N, D), e(N, D), e(N, D), e(N, D)
        self.dF = e(N, F)
        self.dqkv = e(N, 3 * D)
        self.row = e(1, D)
        self.dS = e(B, H, T, T)
        self.qkv_h = [_heads(a, B, T, H, 3) for a in self.qkv]  # [q, k, v] per layer
        self.ctx_h = [_heads(a, B, T, H, 1)[0] for a in self.ctx]
        self.dqkv_h = _heads(self.dqkv, B, T, H, 3)
        self.dctx_h = _heads(self.tmpD, B, T, H, 1)[0]
        self.Wqkv = [e(3 * D, D) for _ in range(L)]
        self.bqkv = [e(3 * D) for _ in range(L)]
        t = np.dtype(dt).type
        self.c = dict(zero=t(0.0), ninf=t(-np.inf), half=t(0.5), one=t(1.0), nD=t(D), eps=t(LAYERNORM_EPS),
                      gc=t(_GELU_C), ga=t(_GELU_A), g3a=t(3.0 * _GELU_A), scale=t(1.0 / math.sqrt(D // H)))


_LOCAL = threading.local()
_MAX_WORKSPACES = 2  # per thread; gpt2_3l2h at B = 64, T = 21 holds ~50 MB in float64


def clear_workspaces() -> None:
    """Free the calling thread's buffers (they are rebuilt on the next call)."""
    _LOCAL.ws = OrderedDict()


def _workspace(cfg, B, T, dt) -> _Workspace:
    """The calling thread's workspace for (cfg, B, T, dtype); the last two are kept."""
    cache = getattr(_LOCAL, "ws", None)
    if cache is None:
        cache = _LOCAL.ws = OrderedDict()
    key = (cfg, B, T, np.dtype(dt).str)
    ws = cache.get(key)
    if ws is None:
        ws = cache[key] = _Workspace(cfg, B, T, dt)
        while len(cache) > _MAX_WORKSPACES:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return ws


# --------------------------------------------------------------------------------------------
# forward and backward over the whole model
# --------------------------------------------------------------------------------------------
def _forward(params, X, cfg, ws):
    """Fill the workspace's activations; returns the model output (a new array)."""
    c, T, L = ws.c, ws.T, cfg.n_layers
    D = cfg.d_model
    pre = cfg.norm == "pre"
    gelu = cfg.activation == "gelu"
    mm = np.matmul
    # h⁰ = X W_inᵀ + b_in (+ P_t)
    mm(X, params["read_in.W"].T, out=ws.x[0])
    bias_positions(ws.x[0], params["read_in.b"], params.get("pos"), T)
    for l in range(L):
        p = f"layer{l}."
        x = ws.x[l]
        Wqkv, bqkv = ws.Wqkv[l], ws.bqkv[l]
        for k, n in enumerate("QKV"):
            Wqkv[k * D:(k + 1) * D] = params[p + f"attn.W_{n}"]
            bqkv[k * D:(k + 1) * D] = params[p + f"attn.b_{n}"]
        if pre:  # n = LN1(x), attention reads n (for l ≥ 1 computed with the residual add below)
            if l == 0:
                layernorm(x, params[p + "ln1.g"], params[p + "ln1.b"], ws.n1[l], ws.xh1[l], ws.rs1[l],
                          c["one"], c["nD"], c["eps"])
            a_in = ws.n1[l]
        else:
            a_in = x
        mm(a_in, Wqkv.T, out=ws.qkv[l])  # (N, 3D)
        np.add(ws.qkv[l], bqkv, out=ws.qkv[l])  # q, k, v = x W_{Q,K,V}ᵀ + b
        q, k, v = ws.qkv_h[l]  # (B, H, T, d_h) views
        A = ws.A[l]
        mm(q, k.swapaxes(-1, -2), out=A)  # (B, H, T, T) q kᵀ
        softmax_rows(A.reshape(-1, T), T, c["scale"], cfg.causal, c["ninf"])  # A = softmax(q kᵀ/√d_h)
        mm(A, v, out=ws.ctx_h[l])  # ctx_h = A_h v_h, heads concatenated in ctx (N, D)
        mm(ws.ctx[l], params[p + "attn.W_O"].T, out=ws.tmpD)  # ctx W_Oᵀ
        if pre:  # h = x + attn;  n2 = LN2(h)
            residual_layernorm(x, ws.tmpD, params[p + "attn.b_O"], ws.h[l], params[p + "ln2.g"],
                               params[p + "ln2.b"], ws.n2[l], ws.xh2[l], ws.rs2[l], c["one"], c["nD"], c["eps"])
            f_in = ws.n2[l]
        else:  # h = LN1(x + attn)
            residual_layernorm(x, ws.tmpD, params[p + "attn.b_O"], ws.n1[l], params[p + "ln1.g"],
                               params[p + "ln1.b"], ws.h[l], ws.xh1[l], ws.rs1[l], c["one"], c["nD"], c["eps"])
            f_in = ws.h[l]
        mm(f_in, params[p + "ff.W1"].T, out=ws.f[l])  # (N, F)
        if gelu:
            bias_gelu(ws.f[l], params[p + "ff.b1"], ws.t[l], ws.r[l], c["half"], c["one"], c["gc"], c["ga"])
        else:
            bias_relu(ws.f[l], params[p + "ff.b1"], ws.r[l], c["zero"])
        mm(ws.r[l], params[p + "ff.W2"].T, out=ws.tmpD)  # r W_2ᵀ
        if pre:  # x' = h + ff, then the next layer's LN1(x') (or the final LN_f(x'))
            if l + 1 < L:
                q_ = f"layer{l + 1}.ln1."
                ln_out, xh, rs = ws.n1[l + 1], ws.xh1[l + 1], ws.rs1[l + 1]
            else:
                q_ = "ln_f."
                ln_out, xh, rs = ws.nf, ws.xhf, ws.rsf
            residual_layernorm(ws.h[l], ws.tmpD, params[p + "ff.b2"], ws.x[l + 1], params[q_ + "g"], params[q_ + "b"],
                               ln_out, xh, rs, c["one"], c["nD"], c["eps"])
        else:  # x' = LN2(h + ff)
            residual_layernorm(ws.h[l], ws.tmpD, params[p + "ff.b2"], ws.n2[l], params[p + "ln2.g"],
                               params[p + "ln2.b"], ws.x[l + 1], ws.xh2[l], ws.rs2[l], c["one"], c["nD"], c["eps"])
    hL = ws.nf if pre else ws.x[L]  # pre-norm: LN_f(h^L), computed with the last residual add
    W, b = params["read_out.W"], params["read_out.b"]
    if cfg.readout == "all":
        out = (hL @ W.T + b)[:, 0].reshape(ws.B, T)  # (B, T)
    else:
        out = (hL[T - 1::T] @ W.T + b)[:, 0]  # (B,) last position of every prompt
    return out


def _backward(dout, params, X, cfg, ws):
    """Gradients of Σ dout ⊙ out (new arrays, keyed like the parameters)."""
    c, T, L, B = ws.c, ws.T, cfg.n_layers, ws.B
    D, F = cfg.d_model, cfg.d_ff
    dt = X.dtype
    pre = cfg.norm == "pre"
    gelu = cfg.activation == "gelu"
    mm = np.matmul
    z = lambda *s: np.zeros(s, dtype=dt)  # noqa: E731
    grads = {}
    W = params["read_out.W"]
    hL = ws.nf if pre else ws.x[L]
    # out = h W_outᵀ + b_out
    d_top = ws.d1
    if cfg.readout == "all":
        d_flat = dout.reshape(-1)
        np.multiply(d_flat[:, None], W, out=d_top)
        grads["read_out.W"] = (d_flat @ hL)[None, :]
    else:
        d_top.fill(0)
        np.multiply(dout[:, None], W, out=d_top[T - 1::T])
        grads["read_out.W"] = (dout @ hL[T - 1::T])[None, :]
    grads["read_out.b"] = np.asarray([dout.sum()], dtype=dt)
    # gradient of the current layer's output, and its column sum (the bias gradient of ff.b2)
    colsum = z(D)
    if pre:  # h^L ← LN_f(h^L)
        g_f, b_f = z(D), z(D)
        layernorm_backward(d_top, None, ws.xhf, ws.rsf, params["ln_f.g"], None, ws.d2, g_f, b_f, colsum,
                           ws.row, c["nD"])
        grads["ln_f.g"], grads["ln_f.b"] = g_f, b_f
        d_out, d_out2 = ws.d2, None
    else:
        d_out, d_out2 = d_top, None
    spare = [ws.d1, ws.d2, ws.d3]
    for l in reversed(range(L)):
        p = f"layer{l}."
        g = {}
        free = [a for a in spare if a is not d_out and a is not d_out2]
        if pre:
            db2 = colsum  # y = h + (r W_2ᵀ + b_2)
            dy = d_out
        else:  # x' = LN2(h + ff)
            g2, b2, db2 = z(D), z(D), z(D)
            layernorm_backward(d_out, d_out2, ws.xh2[l], ws.rs2[l], params[p + "ln2.g"], None, free[0],
                               g2, b2, db2, ws.row, c["nD"])
            g["ln2.g"], g["ln2.b"] = g2, b2
            dy = free[0]
        # y = r W_2ᵀ + b_2
        g["ff.b2"] = db2
        g["ff.W2"] = mm(dy.T, ws.r[l])
        mm(dy, params[p + "ff.W2"], out=ws.dF)
        db1 = z(F)
        if gelu:
            gelu_backward(ws.dF, ws.f[l], ws.t[l], db1, c["half"], c["one"], c["gc"], c["g3a"])
        else:
            relu_backward(ws.dF, ws.f[l], db1, c["zero"], c["one"])
        g["ff.b1"] = db1
        f_in = ws.n2[l] if pre else ws.h[l]
        g["ff.W1"] = mm(ws.dF.T, f_in)  # h = x W_1ᵀ + b_1
        mm(ws.dF, params[p + "ff.W1"], out=ws.dn)
        dbO = z(D)
        if pre:  # n2 = LN2(h): dh = dy + LN2ᵀ(dn)
            g2, b2 = z(D), z(D)
            dh = free[1]
            layernorm_backward(ws.dn, None, ws.xh2[l], ws.rs2[l], params[p + "ln2.g"], dy, dh, g2, b2, dbO,
                               ws.row, c["nD"])
            g["ln2.g"], g["ln2.b"] = g2, b2
        else:  # h = LN1(x + attn): d(x + attn) = LN1ᵀ(dy + dn)
            g1, b1 = z(D), z(D)
            dh = free[1]
            layernorm_backward(dy, ws.dn, ws.xh1[l], ws.rs1[l], params[p + "ln1.g"], None, dh, g1, b1, dbO,
                               ws.row, c["nD"])
            g["ln1.g"], g["ln1.b"] = g1, b1
        # a = ctx W_Oᵀ + b_O
        g["attn.b_O"] = dbO
        g["attn.W_O"] = mm(dh.T, ws.ctx[l])
        mm(dh, params[p + "attn.W_O"], out=ws.tmpD)  # dctx
        q, k, v = ws.qkv_h[l]
        dq, dk, dv = ws.dqkv_h
        A, dS, dctx = ws.A[l], ws.dS, ws.dctx_h
        mm(dctx, v.swapaxes(-1, -2), out=dS)  # dA = dctx vᵀ
        mm(A.swapaxes(-1, -2), dctx, out=dv)  # dv = Aᵀ dctx
        softmax_rows_backward(dS.reshape(-1, T), A.reshape(-1, T), T, c["scale"], cfg.causal, c["zero"])
        mm(dS, k, out=dq)  # S = q kᵀ·scale: dq = dS k
        mm(dS.swapaxes(-1, -2), q, out=dk)  # dk = dSᵀ q
        dbqkv = ws.dqkv.sum(axis=0)
        a_in = ws.n1[l] if pre else ws.x[l]
        dWqkv = mm(ws.dqkv.T, a_in)  # q, k, v = a_in W_{Q,K,V}ᵀ + b
        for k, n in enumerate("QKV"):
            g[f"attn.W_{n}"] = dWqkv[k * D:(k + 1) * D]
            g[f"attn.b_{n}"] = dbqkv[k * D:(k + 1) * D]
        mm(ws.dqkv, ws.Wqkv[l], out=ws.dn)
        colsum = z(D)
        if pre:  # n1 = LN1(x): dx = dh + LN1ᵀ(dn)
            g1, b1 = z(D), z(D)
            dx = free[0]
            layernorm_backward(ws.dn, None, ws.xh1[l], ws.rs1[l], params[p + "ln1.g"], dh, dx, g1, b1, colsum,
                               ws.row, c["nD"])
            g["ln1.g"], g["ln1.b"] = g1, b1
            d_out, d_out2 = dx, None
        else:  # dx = dh (residual path) + dn (attention path), summed by the next LN backward
            d_out, d_out2 = dh, ws.dn
        grads.update({p + k: v for k, v in g.items()})
    # h⁰ = X W_inᵀ + b_in (+ P_t)
    if d_out2 is not None:
        np.add(d_out, d_out2, out=ws.d3 if d_out is not ws.d3 else ws.d1)
        d_out = ws.d3 if d_out is not ws.d3 else ws.d1
    grads["read_in.W"] = mm(d_out.T, X)
    grads["read_in.b"] = d_out.sum(axis=0) if not pre else colsum
    if cfg.positions == "learned":
        dpos = np.zeros(params["pos"].shape, dtype=dt)
        dpos[:T] = d_out.reshape(B, T, D).sum(axis=0)
        grads["pos"] = dpos
    return grads


def loss_and_grads_numba(params, X, target, cfg, loss_fn, *, want_aux: bool = False):
    """``(loss, grads, out, attn, preacts)`` of ``loss_fn(out, target, cfg) -> (loss, dout)``;
    ``attn``/``preacts`` (copies, per layer) only with ``want_aux``."""
    B, T, _ = X.shape
    dt = params["read_in.W"].dtype
    ws = _workspace(cfg, B, T, dt)
    X2 = X.reshape(B * T, -1)
    if X2.dtype != dt or not X2.flags.c_contiguous:
        ws.X[...] = X2
        X2 = ws.X
    out = _forward(params, X2, cfg, ws)
    loss, dout = loss_fn(out, np.asarray(target, dtype=dt), cfg)
    grads = _backward(np.ascontiguousarray(dout, dtype=dt), params, X2, cfg, ws)
    attn = [a.copy() for a in ws.A] if want_aux else None
    pre = [f.reshape(B, T, -1).copy() for f in ws.f] if want_aux else None
    return loss, grads, out, attn, pre
