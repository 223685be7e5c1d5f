"""Model of spec H (Huang, Cheng, Liang 2023): one softmax attention layer, merged key-query Q.

Glossary (paper symbol → code name, shape); B prompts, N tokens, J = N (or N + 1 with
``attend_to_query``) attended columns:

=============  ===========  ============  ====================================================
symbol         code         shape         meaning
=============  ===========  ============  ====================================================
Q              ``Q``        (d, d)        trained block of W^{KQ} = [Q 0; 0 0] (spec H4)
x_i            ``X``        (B, N, d)     prompt tokens
x_q            ``xq``       (B, d)        query token
y_i, y_q       ``y, yq``    (B, N), (B,)  labels ⟨w, x_i⟩, ⟨w, x_q⟩
s_i            ``s``        (B, J)        x_iᵀ Q x_q (column N is x_qᵀ Q x_q with attend_to_query)
attn_i         ``attn``     (B, J)        softmax_i(s)
ŷ              ``y_hat``    (B,)          Σ_{i≤N} attn_i y_i (the query column carries label 0)
u              ``u``        (B, d)        Σ_{i≤N} attn_i x_i − x_q (spec H6)
ℓ              —            (B,)          ½(ŷ − y_q)² (spec H5); E_w ℓ = ½‖u‖² (spec H6)
=============  ===========  ============  ====================================================

Two losses: ``loss="sample"`` is the mean of ½(ŷ − y_q)² over the batch (one w per prompt);
``loss="Ew"`` integrates w in closed form (E wwᵀ = I): ½‖u‖² (spec H6). Both accept ``weights``
(B,) summing to 1 instead of the mean 1/B (used for population expectations, spec H8 (d)).
"""

from __future__ import annotations

import numpy as np

from refimpl.core.arrays import check_array, check_choice
from refimpl.core.ops import softmax_backward, softmax_forward, squared_backward, squared_forward

PARAM_NAMES = ("Q",)
BACKENDS = ("numpy", "numba")
LOSSES = ("sample", "Ew")


def init_params(d: int, dtype=np.float64) -> dict:
    """Q⁰ = 0 (spec H4 [C]: uniform attention at the start)."""
    return {"Q": np.zeros((d, d), dtype=dtype)}


def check_params(params) -> dict:
    if not hasattr(params, "keys") or "Q" not in params:
        raise ValueError("params must be a dict with key 'Q' (d, d)")
    Q = check_array("params['Q']", params["Q"], ndim=2)
    if Q.shape[0] != Q.shape[1]:
        raise ValueError(f"params['Q'] must be square (d, d), got shape {Q.shape}")
    return {"Q": Q}


def check_batch(batch, d: int) -> dict:
    """Validate {X (B, N, d), xq (B, d), y (B, N), yq (B,)}; returns the four arrays."""
    if not hasattr(batch, "keys"):
        raise TypeError(f"batch must be a dict, got {type(batch).__name__}")
    missing = [k for k in ("X", "xq", "y", "yq") if k not in batch]
    if missing:
        raise ValueError(f"batch is missing {missing}; required: X (B, N, d), xq (B, d), y (B, N), yq (B,)")
    X = check_array("batch['X']", batch["X"], shape=(None, None, d))
    B, N, _ = X.shape
    if B < 1 or N < 1:
        raise ValueError(f"batch['X'] must have B ≥ 1 prompts and N ≥ 1 tokens, got shape {X.shape}")
    return {
        "X": X,
        "xq": check_array("batch['xq']", batch["xq"], shape=(B, d)),
        "y": check_array("batch['y']", batch["y"], shape=(B, N)),
        "yq": check_array("batch['yq']", batch["yq"], shape=(B,)),
    }


def check_weights(weights, B: int) -> np.ndarray:
    if weights is None:
        return np.full(B, 1.0 / B)
    wts = check_array("weights", weights, shape=(B,))
    if np.any(wts < 0):
        raise ValueError("weights must be non-negative")
    return wts


# --------------------------------------------------------------------------------------------
# forward / backward (NumPy reference path)
# --------------------------------------------------------------------------------------------
def forward(Q, X, xq, *, attend_to_query: bool = False):
    """Attention of the query on the prompt (spec H4). Returns ``(attn, cache)``, attn (B, J)."""
    B, N, d = X.shape
    qx = xq @ Q.T  # (B, d)    Q x_q
    keys = np.concatenate([X, xq[:, None, :]], axis=1) if attend_to_query else X  # (B, J, d)
    s = np.einsum("bjd,bd->bj", keys, qx)  # (B, J)  spec H4: s_i = x_iᵀ Q x_q
    attn, sm_cache = softmax_forward(s, axis=-1)  # (B, J)  spec H4: attn_i = softmax_i(s)
    return attn, dict(Q=Q, X=X, xq=xq, keys=keys, N=N, s=s, attn=attn, sm_cache=sm_cache)


def predict(attn, y):
    """ŷ = Σ_{i≤N} attn_i y_i (spec H4): (B,)."""
    return np.einsum("bi,bi->b", attn[:, : y.shape[1]], y)


def backward_scores(ds, cache) -> np.ndarray:
    """∇_Q of Σ_{b,j} ds_{b,j} s_{b,j}: from s_j = key_jᵀ Q x_q, ∇_Q = Σ key_j x_qᵀ ds_j (spec H6)."""
    kd = np.einsum("bj,bjd->bd", ds, cache["keys"])  # (B, d)  Σ_j ds_j key_j
    return kd.T @ cache["xq"]  # (d, d)


def sample_loss(attn, cache, y, yq, weights):
    """Σ_b weights_b ½(ŷ_b − y_q,b)² (spec H5) and its score gradient ∂/∂s (B, J) (spec H6)."""
    N = y.shape[1]
    y_hat = predict(attn, y)  # (B,)
    losses, sq_cache = squared_forward(y_hat, yq)  # (B,)  spec H5: ℓ = ½(ŷ − y_q)²
    dy_hat = squared_backward(weights, sq_cache)  # (B,)  ∂/∂ŷ = w_b (ŷ − y_q)
    vals = np.zeros_like(attn)  # (B, J)  values: y_i, and 0 for the query column
    vals[:, :N] = y
    # ŷ = Σ attn_i val_i → ∂/∂attn_i = dŷ val_i; softmax backward: attn_i (val_i − ŷ) dŷ      spec H6
    ds = softmax_backward(dy_hat[:, None] * vals, cache["sm_cache"])  # (B, J)
    return float(weights @ losses), ds, y_hat


def ew_loss(attn, cache, weights):
    """Σ_b weights_b ½‖u_b‖² (spec H6, w integrated) and its score gradient ∂/∂s (B, J)."""
    X, xq, N = cache["X"], cache["xq"], cache["N"]
    m = np.einsum("bi,bid->bd", attn[:, :N], X)  # (B, d)  Σ_{i≤N} attn_i x_i
    u = m - xq  # (B, d)  spec H6: u = Σ attn_j x_j − x_q
    losses = 0.5 * np.sum(u * u, axis=1)  # (B,)  spec H6: E_w ℓ = ½‖u‖²
    vals = np.zeros_like(cache["keys"])  # (B, J, d)  value vectors: x_i, and 0 for the query column
    vals[:, :N] = X
    # ∂/∂attn_j = ⟨u, val_j⟩; softmax backward: attn_j ⟨u, val_j − m⟩ = attn_j ⟨u, r_j⟩           spec H6
    du = weights[:, None] * u  # (B, d)
    ds = softmax_backward(np.einsum("bjd,bd->bj", vals, du), cache["sm_cache"])  # (B, J)
    return float(weights @ losses), ds, u


def loss_and_grads(
    params,
    batch,
    backend: str = "numpy",
    *,
    loss: str = "sample",
    attend_to_query: bool = False,
    weights=None,
    check: bool = True,
    return_aux: bool = False,
):
    """Loss over the batch and ∇_Q (spec H5, H6).

    ``params``: {Q (d, d)}; ``batch``: {X (B, N, d), xq (B, d), y (B, N), yq (B,)} (extra keys
    ignored). ``loss``: "sample" (½(ŷ − y_q)²) or "Ew" (½‖u‖², w integrated; y, yq unused).
    ``weights`` (B,): per-prompt weights (default 1/B). ``backend``: "numpy" or "numba".
    Returns ``(loss, grads)`` or ``(loss, grads, aux)`` with aux = {"attn", "y_hat" | "u"}.
    """
    check_choice("backend", backend, BACKENDS)
    check_choice("loss", loss, LOSSES)
    if check:
        params = check_params(params)
        b = check_batch(batch, params["Q"].shape[0])
    else:
        b = batch
    Q, X, xq, y, yq = params["Q"], b["X"], b["xq"], b["y"], b["yq"]
    wts = check_weights(weights, X.shape[0]) if check or weights is None else weights
    if backend == "numba":
        from refimpl.huang2023.kernels import loss_and_grads_numba

        val, dQ, attn, extra = loss_and_grads_numba(Q, X, xq, y, yq, wts, loss == "Ew", bool(attend_to_query))
        aux = {"attn": attn, ("u" if loss == "Ew" else "y_hat"): extra}
    else:
        attn, cache = forward(Q, X, xq, attend_to_query=attend_to_query)
        if loss == "sample":
            val, ds, y_hat = sample_loss(attn, cache, y, yq, wts)
            aux = {"attn": attn, "y_hat": y_hat}
        else:
            val, ds, u = ew_loss(attn, cache, wts)
            aux = {"attn": attn, "u": u}
        dQ = backward_scores(ds, cache)  # (d, d)  spec H6: ∇_Q = Σ_i ∂ℓ/∂s_i x_i x_qᵀ
    if return_aux:
        return val, {"Q": dQ}, aux
    return val, {"Q": dQ}


# --------------------------------------------------------------------------------------------
# the full (d+1) × (N+1) matrix form (spec H3–H4), for tests
# --------------------------------------------------------------------------------------------
def full_matrix_predict(Q, X, xq, y, *, attend_to_query: bool = False) -> np.ndarray:
    """ŷ (B,) as the (d+1, N+1) entry of W^{PV} E softmax(Eᵀ W^{KQ} E) (spec H4), literally.

    The softmax normalises each column of Eᵀ W^{KQ} E over its first N rows (the prompt columns as
    keys), or all N + 1 rows with ``attend_to_query``; the rows left out get attention 0.
    """
    from refimpl.huang2023.data import embedding

    B, N, d = X.shape
    E = embedding(X, xq, y)  # (B, d+1, N+1)  spec H3
    W_KQ = np.zeros((d + 1, d + 1))
    W_KQ[:d, :d] = Q  # spec H4: W^{KQ} = [Q 0; 0 0]
    W_PV = np.zeros((d + 1, d + 1))
    W_PV[d, d] = 1.0  # spec H4: W^{PV} = [0 0; 0 1]
    S = np.einsum("bdi,de,bej->bij", E, W_KQ, E)  # (B, N+1, N+1)  Eᵀ W^{KQ} E
    J = N + 1 if attend_to_query else N
    A = np.zeros_like(S)
    A[:, :J, :], _ = softmax_forward(S[:, :J, :], axis=1)  # column-wise softmax over key rows
    out = np.einsum("de,bei,bij->bdj", W_PV, E, A)  # (B, d+1, N+1)
    return out[:, d, N]  # the (d+1, N+1) entry
