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

The contract (``refimpl/models.py``): :func:`forward` returns ŷ and a cache (``cache["attn"]``),
:func:`backward` inverts it (∇_Q of Σ dŷ ⊙ ŷ), :func:`loss_and_grads` evaluates the configured
loss: ``cfg.loss="sample"`` is the mean of ½(ŷ − y_q)² over the batch (one w per prompt);
``cfg.loss="Ew"`` integrates w in closed form (E wwᵀ = I): ½‖u‖² (spec H6). Both accept
``weights`` (B,) summing to 1 instead of the mean 1/B (used for population expectations, spec H8
(d)). The softmax range is ``cfg.attend_to_query``.

Extras used elsewhere: :func:`attention_forward` (the attention alone, lines (f1)–(f3)),
:func:`readout_forward` (line (f4)), :func:`backward_scores` (line (f2) inverted), :func:`ew_loss`
(line (f4') and its score gradient), :func:`full_matrix_predict` (the literal (d+1) × (N+1) form).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from refimpl.core.arrays import check_array, check_choice, check_float_array, float_dtype, require_fit
from refimpl.core.errors import check_finite
from refimpl.core.ops import softmax_backward, softmax_forward, squared_backward, squared_forward
from refimpl.core.rng import make_rng
from refimpl.huang2023.config import Config

PARAM_NAMES = ("Q",)
BACKENDS = ("numpy", "numba", "numba_parallel")


def init_params(cfg: Config, seed, dtype=np.float64) -> dict:
    """The initial parameters: Q⁰ = 0 (spec H4 [C]: uniform attention at the start).

    Parameters
    ----------
    cfg : refimpl.huang2023.config.Config
        Reads the token dimension d (``cfg.dim``).
    seed : int or numpy.random.Generator
        Validated, not used (the initialisation is deterministic).
    dtype : {numpy.float64, numpy.float32}
        The dtype of Q.

    Returns
    -------
    dict of numpy.ndarray
        ``Q`` (d, d), zeros: the trained block of W^{KQ} = [Q 0; 0 0].

    Raises
    ------
    TypeError
        For a ``cfg`` that is not a huang2023 Config or a ``dtype`` that is not float64/float32.
    """
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a huang2023 Config, got {type(cfg).__name__}")
    make_rng(seed)
    return {"Q": np.zeros((cfg.dim, cfg.dim), dtype=float_dtype(dtype))}


def check_params(params) -> dict:
    """Validate {Q (d, d)}: a dict, float32/float64, finite, square."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict {{'Q': (d, d)}}, got {type(params).__name__}")
    if "Q" not in params:
        raise ValueError(f"params must hold 'Q' (d, d); got keys {sorted(params)}")
    extra = sorted(str(k) for k in params if k not in PARAM_NAMES)
    if extra:
        raise ValueError(f"params has keys {extra} that huang2023 does not use; its keys: {list(PARAM_NAMES)}")
    Q = check_float_array("params['Q']", params["Q"], ndim=2)
    if Q.shape[0] != Q.shape[1]:
        raise ValueError(f"params['Q'] must be square (d, d), got shape {Q.shape}")
    return {"Q": Q}


def check_batch(batch, d: int, keys=("X", "xq", "y", "yq"), *, name: str = "batch") -> dict:
    """Validate {X (B, N, d), xq (B, d), y (B, N), yq (B,)} (the ``keys`` asked for); returns them.
    ``name``: the argument a type error names (``"inputs"`` for :func:`forward`)."""
    if not isinstance(batch, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(batch).__name__}")
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ValueError(f"batch is missing {missing}; required: X (B, N, d), xq (B, d), y (B, N), yq (B,)")
    X = check_float_array("batch['X']", batch["X"], shape=(None, None, d))
    B, N, _ = X.shape
    if B < 1 or N < 1:
        raise ValueError(f"batch['X'] must have B ≥ 1 prompts and N ≥ 1 tokens, got shape {X.shape}")
    shapes = {"xq": (B, d), "y": (B, N), "yq": (B,)}
    return {"X": X, **{k: check_float_array(f"batch[{k!r}]", batch[k], shape=shapes[k]) for k in keys if k != "X"}}


def check_weights(weights, B: int, dtype=np.float64) -> np.ndarray:
    """Per-prompt weights (B,) in ``dtype`` (the parameters' dtype: float32 stays float32); ``None``
    means 1/B each. Negative weights raise ``ValueError``."""
    if weights is None:
        return np.full(B, 1.0 / B, dtype=dtype)
    wts = check_array("weights", weights, shape=(B,), dtype=dtype)
    if np.any(wts < 0):
        raise ValueError("weights must be non-negative")
    return wts


def _sizes_fit(params, b) -> bool:
    """The O(1) shape agreement ``check=False`` still checks (the Numba kernels do not bounds-check)."""
    try:
        Q, X = params["Q"], np.asarray(b["X"])
        B, N, d = X.shape
        ok = (Q.shape == (d, d) and np.shape(b["xq"]) == (B, d) and np.shape(b["y"]) == (B, N)
              and np.shape(b["yq"]) == (B,))
    except (KeyError, TypeError, AttributeError, ValueError):
        ok = False
    return ok


def _check_cfg(cfg) -> Config:
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a huang2023 Config, got {type(cfg).__name__}")
    return cfg


# --------------------------------------------------------------------------------------------
# forward / backward (NumPy reference path)
# --------------------------------------------------------------------------------------------
def attention_forward(Q, X, xq, *, attend_to_query: bool = False):
    """Attention of the query on the prompt (spec H4, lines (f1)–(f3)). Returns ``(attn, cache)``,
    attn (B, J)."""
    B, N, d = X.shape
    qx = xq @ Q.T  # (B, d)    (f1) Q x_q
    keys = np.concatenate([X, xq[:, None, :]], axis=1) if attend_to_query else X  # (B, J, d)
    s = np.einsum("bjd,bd->bj", keys, qx)  # (B, J)  (f2) spec H4: s_i = x_iᵀ Q x_q
    attn, sm_cache = softmax_forward(s, axis=-1)  # (B, J)  (f3) spec H4: attn_i = softmax_i(s)
    return attn, dict(Q=Q, X=X, xq=xq, keys=keys, N=N, s=s, attn=attn, sm_cache=sm_cache)


def readout_forward(attn, y):
    """ŷ = Σ_{i≤N} attn_i y_i (spec H4, line (f4); the query column carries label 0): (B,)."""
    return np.einsum("bi,bi->b", attn[:, : y.shape[1]], y)


def backward_scores(ds, cache) -> np.ndarray:
    """∇_Q of Σ_{b,j} ds_{b,j} s_{b,j}: from (f2) s_j = key_jᵀ Q x_q, ∇_Q = Σ_j ds_j key_j x_qᵀ (spec H6)."""
    kd = np.einsum("bj,bjd->bd", ds, cache["keys"])  # (B, d)  Σ_j ds_j key_j
    return kd.T @ cache["xq"]  # (d, d)


def forward(params, inputs, cfg: Config, *, check: bool = True):
    """The prediction ŷ = Σ_{i≤N} attn_i y_i of the one-layer softmax attention (spec H4).

    attn = softmax_i(x_iᵀ Q x_q), over the N prompt tokens, or the N tokens and the query (whose
    label is 0) with ``cfg.attend_to_query``.

    Parameters
    ----------
    params : dict of numpy.ndarray
        ``Q`` (d, d), float64 or float32.
    inputs : dict
        ``X`` (B, N, d), ``xq`` (B, d), ``y`` (B, N); other keys are ignored.
    cfg : refimpl.huang2023.config.Config
        Reads ``attend_to_query``.
    check : bool
        Validate the parameters and inputs first.

    Returns
    -------
    y_hat : numpy.ndarray, shape (B,)
        ŷ.
    cache : dict
        What :func:`backward` needs; ``cache["attn"]`` is the attention, shape (B, J) with J = N
        (or N + 1, the query's weight last, with ``attend_to_query``).
    """
    _check_cfg(cfg)
    if check:
        Q = check_params(params)["Q"]
        b = check_batch(inputs, Q.shape[0], keys=("X", "xq", "y"), name="inputs")
    else:
        Q, b = params["Q"], inputs
    X, xq, y = (np.asarray(b[k], dtype=Q.dtype) for k in ("X", "xq", "y"))  # in the parameters' dtype
    attn, cache = attention_forward(Q, X, xq, attend_to_query=cfg.attend_to_query)  # (B, J)
    y_hat = readout_forward(attn, y)  # (B,)  (f4) spec H4: ŷ = Σ_{i≤N} attn_i y_i
    cache["y"] = y
    if check:
        check_finite("y_hat", y_hat, hint="the parameters or inputs overflow the forward pass")
    return y_hat, cache


def backward(dy_hat, cache, *, check: bool = True) -> dict:
    """∇_Q of Σ_b dŷ_b ŷ_b (spec H6): back through (f4), the softmax (f3) and the scores (f2).

    Parameters
    ----------
    dy_hat : numpy.ndarray, shape (B,)
        Upstream gradient with respect to ŷ.
    cache : dict
        The cache of the :func:`forward` call that produced ŷ.
    check : bool
        Validate ``dy_hat`` (float64 or float32, shape (B,), finite) and ``cache`` first.

    Returns
    -------
    dict of numpy.ndarray
        ``Q`` (d, d).
    """
    if check and (not isinstance(cache, dict) or "sm_cache" not in cache or "y" not in cache):
        raise TypeError(f"cache must be the cache returned by huang2023.forward, got {type(cache).__name__}")
    attn, N = cache["attn"], cache["N"]
    dy_hat = check_float_array("dy_hat", dy_hat, shape=(attn.shape[0],)) if check else np.asarray(dy_hat)  # (B,)
    vals = np.zeros_like(attn)  # (B, J)  values: y_i, and 0 for the query column
    vals[:, :N] = cache["y"]
    # (f4) ŷ = Σ_j attn_j val_j          → ∂/∂attn_j = dŷ val_j
    # (f3) attn = softmax(s)             → ds_j = attn_j (∂/∂attn_j − Σ_i attn_i ∂/∂attn_i)
    #                                      = dŷ attn_j (val_j − ŷ)                              spec H6
    ds = softmax_backward(dy_hat[:, None] * vals, cache["sm_cache"])  # (B, J)
    # (f2) s_j = key_jᵀ Q x_q            → ∇_Q = Σ_j ds_j key_j x_qᵀ                           spec H6
    return {"Q": backward_scores(ds, cache)}  # (d, d)


def ew_loss(attn, cache, weights):
    """Σ_b weights_b ½‖u_b‖² (spec H6, w integrated) and its score gradient ∂/∂s (B, J)."""
    X, xq, N = cache["X"], cache["xq"], cache["N"]
    m = np.einsum("bi,bid->bd", attn[:, :N], X)  # (B, d)  Σ_{i≤N} attn_i x_i
    u = m - xq  # (B, d)  (f4') spec H6: u = Σ attn_j x_j − x_q
    losses = 0.5 * np.sum(u * u, axis=1)  # (B,)  spec H6: E_w ℓ = ½‖u‖²
    vals = np.zeros_like(cache["keys"])  # (B, J, d)  value vectors: x_i, and 0 for the query column
    vals[:, :N] = X
    # ∂/∂attn_j = ⟨u, val_j⟩; softmax backward: attn_j ⟨u, val_j − m⟩ = attn_j ⟨u, r_j⟩           spec H6
    du = weights[:, None] * u  # (B, d)
    ds = softmax_backward(np.einsum("bjd,bd->bj", vals, du), cache["sm_cache"])  # (B, J)
    return float(weights @ losses), ds, u


def loss_scale(Q, X, xq, y, yq, attn, y_hat, u, wts, loss: str, attend_to_query: bool) -> float:
    """Magnitude of the terms summed into the loss: the finite-difference noise floor of a
    gradient check is ~8·2⁻⁵²·scale/ε.

    Per prompt, the scores s_j = key_jᵀ Q x_q carry a rounding of ~u·|key_j||Q x_q|, which moves
    each attention weight by that relative amount; so ŷ (or u) is exact to ~u·(1 + max_j |key_j||Q x_q|)
    Σ_j attn_j |val_j| + u·|y_q| (|x_q|), and ½r² to |r| times that (r = ŷ − y_q, or u)."""
    N = X.shape[1]
    key = np.linalg.norm(X, axis=2).max(axis=1)  # (B,)  max_j |key_j|
    if attend_to_query:
        key = np.maximum(key, np.linalg.norm(xq, axis=1))
    s_mag = 1.0 + key * np.linalg.norm(xq @ Q.T, axis=1)  # (B,)
    if loss == "sample":
        r = np.abs(y_hat - yq)  # (B,)
        terms = s_mag * np.einsum("bi,bi->b", attn[:, :N], np.abs(y)) + np.abs(yq)
    else:
        r = np.linalg.norm(u, axis=1)  # (B,)
        terms = s_mag * np.einsum("bi,bi->b", attn[:, :N], np.linalg.norm(X, axis=2)) + np.linalg.norm(xq, axis=1)
    return float(np.abs(wts) @ (0.5 * r * r + r * terms))


def loss_and_grads(
    params,
    batch,
    cfg: Config,
    backend: str = "numpy",
    *,
    weights=None,
    check: bool = True,
    return_aux: bool = False,
):
    """The loss ``cfg.loss`` over the batch and its gradient ∇_Q (spec H5, H6).

    ``"sample"``: Σ_b weights_b ½(ŷ_b − y_{q,b})² (one task w per prompt); ``"Ew"``:
    Σ_b weights_b ½‖u_b‖², u = Σ_{i≤N} attn_i x_i − x_q, the same loss with w integrated in closed
    form (E wwᵀ = I; ``y`` and ``yq`` are not used by it).

    Parameters
    ----------
    params : dict of numpy.ndarray
        ``Q`` (d, d), float64 or float32.
    batch : dict
        ``X`` (B, N, d), ``xq`` (B, d), ``y`` (B, N), ``yq`` (B,) (:func:`sample_batch`); other
        keys are ignored.
    cfg : refimpl.huang2023.config.Config
        Reads ``loss`` and ``attend_to_query`` (the softmax range).
    backend : {"numpy", "numba", "numba_parallel"}
        The NumPy reference, or the fused Numba kernel (``refimpl.huang2023.kernels``) on one
        thread (``"numba"``) or with the prompts split over Numba's threads (``"numba_parallel"``;
        ``numba.set_num_threads`` / ``NUMBA_NUM_THREADS`` sets how many). Both Numba backends
        return the same bits, for any number of threads; they pay off at large batches.
    weights : array_like, shape (B,), optional
        Per-prompt weights, non-negative (default 1/B each; population expectations pass their
        probabilities, spec H8 (d)).
    check : bool
        Validate the inputs first and raise :class:`refimpl.core.errors.NonFiniteError` if the
        loss or a gradient is not finite. ``False`` skips both (trusted hot loops) but still checks
        the shapes (O(1), no value scan), so a wrong-shaped array raises ``ValueError`` rather than
        being read out of bounds by the Numba kernels.
    return_aux : bool
        Also return ``aux``.

    Returns
    -------
    loss : float
        The weighted loss.
    grads : dict of numpy.ndarray
        ``Q`` (d, d).
    aux : dict
        Only with ``return_aux``: ``out`` ŷ (B,), ``attn`` (B, J), ``scale`` (the magnitude of the
        summed loss terms, :func:`loss_scale`) and, for ``"Ew"``, ``u`` (B, d).

    Raises
    ------
    TypeError, ValueError
        For a bad backend, config, parameter, batch entry or weights, naming it.
    """
    check_choice("backend", backend, BACKENDS)
    _check_cfg(cfg)
    ew, attend = cfg.loss == "Ew", bool(cfg.attend_to_query)
    if check:
        params = check_params(params)
        b = check_batch(batch, params["Q"].shape[0])
    else:
        b = batch
        require_fit(_sizes_fit(params, b), lambda: check_batch(batch, check_params(params)["Q"].shape[0]))
    Q = params["Q"]
    dt = Q.dtype  # compute in the parameters' dtype: float32 parameters stay float32 throughout
    X, xq, y, yq = (np.asarray(b[k], dtype=dt) for k in ("X", "xq", "y", "yq"))
    wts = check_weights(weights, X.shape[0], dt) if check or weights is None else weights
    u = y_hat = None
    if backend != "numpy":  # "numba", "numba_parallel": the fused kernel, in the parameters' dtype
        from refimpl.huang2023.kernels import loss_and_grads_numba

        val, dQ, attn, extra = loss_and_grads_numba(Q, X, xq, y, yq, wts, ew, attend,
                                                    parallel=backend == "numba_parallel")
        val = float(val)
        grads = {"Q": dQ}
        if ew:
            u = extra
        else:
            y_hat = extra
    else:
        attn, cache = attention_forward(Q, X, xq, attend_to_query=attend)  # (B, J)  (f1)–(f3)
        if not ew:
            y_hat = readout_forward(attn, y)  # (B,)  (f4)
            cache["y"] = y
            losses, sq_cache = squared_forward(y_hat, yq)  # (B,)  spec H5: ℓ = ½(ŷ − y_q)²
            dy_hat = squared_backward(wts, sq_cache)  # (B,)  ∂/∂ŷ = w_b (ŷ − y_q)
            val = float(wts @ losses)
            grads = backward(dy_hat, cache, check=False)  # spec H6: ∇_Q = Σ_i ∂ℓ/∂s_i x_i x_qᵀ
        else:
            val, ds, u = ew_loss(attn, cache, wts)
            grads = {"Q": backward_scores(ds, cache)}  # (d, d)  spec H6
    if check:  # a non-finite loss or gradient is an error, never a result (DESIGN.md, "Errors")
        check_finite("loss", val)
        check_finite("grads", grads)
    if not return_aux:
        return val, grads
    if y_hat is None:
        y_hat = readout_forward(attn, y)  # (B,)  ŷ reported for the E_w loss too
    aux = {"out": y_hat, "attn": attn,
           "scale": loss_scale(Q, X, xq, y, yq, attn, y_hat, u, wts, cfg.loss, attend)}
    if ew:
        aux["u"] = u
    return val, grads, aux


def predict(params, inputs, cfg: Config) -> np.ndarray:
    """The predictions ŷ: :func:`forward` without the cache.

    Parameters
    ----------
    params : dict of numpy.ndarray
        ``Q`` (d, d).
    inputs : dict
        ``X`` (B, N, d), ``xq`` (B, d), ``y`` (B, N).
    cfg : refimpl.huang2023.config.Config
        Reads ``attend_to_query``.

    Returns
    -------
    numpy.ndarray, shape (B,)
        ŷ.
    """
    return forward(params, inputs, cfg)[0]


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
