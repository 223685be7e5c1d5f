"""Model of spec L (Li et al. 2024): one-layer softmax attention + two-layer ReLU MLP, hinge loss.

Glossary (paper symbol → code name, shape); B prompts, l context columns, J = l (or l + 1 with
``attend_to_query``) attended columns:

=============  ===========  ===============  ================================================
symbol         code         shape            meaning
=============  ===========  ===============  ================================================
W_Q, W_K       ``W_Q``      (m_b, d)         query / key
W_V            ``W_V``      (m_a, d)         value
W_O            ``W_O``      (m, m_a)         MLP first layer; rows are the "neurons"
a              ``a``        (m,)             MLP output weights (fixed unless ``train_a``)
P              ``P``        (B, d, l+1)      prompts, query in the last column
C              ``C``        (B, d, l)        context columns p_1..p_l
p_q            ``p_q``      (B, d)           query column
u              ``u``        (B, m_b)         W_Q p_q
s              ``s``        (B, J)           s_i = (W_K p_i)ᵀ u
σ (attn)       ``sigma``    (B, J)           softmax_i(s); ``cache["attn"]``
c̄              ``cbar``     (B, d)           C σ   (context columns only)
v              ``v``        (B, m_a)         W_V c̄
h, r           ``h, r``     (B, m)           W_O v, Relu(h)
F              ``F``        (B,)             aᵀ r
z              ``z``        (B,)             query label ±1
=============  ===========  ===============  ================================================

Forward (spec L7): F(Ψ; P) = aᵀ Relu(W_O Σ_{i≤l} W_V p_i attn_i), attn = softmax_i((W_K p_i)ᵀ W_Q p_q).
The options (``attend_to_query``, ``relu_at_zero``, ``train_a``) come from ``cfg.model``
(:class:`refimpl.li2024.config.ModelConfig`); ``forward`` stores what ``backward`` needs in its cache.
Computing s as Cᵀ(W_Kᵀ u) and v as W_V(C σ) is the same algebra with fewer FLOPs (spec L7).

``attend_to_query`` [C, spec L7 option]: the query column is added to the softmax normalisation
(its score (W_K p_q)ᵀ u enters the denominator), while the value sum stays over the l context
columns as in the spec's F. Pruning (spec L9): ``keep`` (m,) of 0/1 multiplies a, i.e.
F = Σ_{i kept} a_i Relu(W_{O,(i)} v); pruned rows get zero gradient.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.arrays import check_array, check_choice, check_float_array, float_dtype, require_fit
from refimpl.core.errors import check_finite
from refimpl.core.ops import (
    hinge_backward,
    hinge_forward,
    relu_backward,
    relu_forward,
    softmax_backward,
    softmax_forward,
)
from refimpl.core.rng import make_rng
from refimpl.li2024.config import Config

PARAM_NAMES = ("W_Q", "W_K", "W_V", "W_O", "a")
BACKENDS = ("numpy", "numba", "numba_parallel")


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------
def init_params(cfg: Config, seed, dtype=np.float64) -> dict:
    """The initial parameters Ψ⁰ (spec L8 [C]).

    W_Q⁰ = W_K⁰ = δ[I_{d_X} 0; 0 0], W_V⁰ = I_d, W_O⁰ ~ N(0, ξ²) entrywise, a_i = ±1/√m (half
    of each sign, in random order).

    Parameters
    ----------
    cfg : refimpl.li2024.config.Config
        Sizes d = d_x + d_y, m, m_a, m_b and δ, ξ from ``cfg.data`` and ``cfg.model``.
    seed : int or numpy.random.Generator
        Draws W_O⁰ and the order of the signs of a.
    dtype : {numpy.float64, numpy.float32}
        The dtype of every array.

    Returns
    -------
    dict of numpy.ndarray
        ``W_Q`` (m_b, d), ``W_K`` (m_b, d), ``W_V`` (m_a, d), ``W_O`` (m, m_a), ``a`` (m,), keyed
        as :data:`PARAM_NAMES`.

    Raises
    ------
    TypeError
        If ``dtype`` is not float64 or float32.
    """
    dt = float_dtype(dtype)
    _check_cfg(cfg)
    rng = make_rng(seed)
    d, dx, m, m_a, m_b = cfg.data.d, cfg.data.d_x, cfg.model.m, cfg.m_a, cfg.m_b
    W_QK = np.zeros((m_b, d))
    k = min(m_b, dx)
    W_QK[np.arange(k), np.arange(k)] = cfg.model.delta  # δ[I_{d_X} 0; 0 0]: label block starts at 0
    W_V = np.eye(m_a, d)  # "I_d" (rectangular identity when m_a ≠ d)
    W_O = cfg.model.xi * rng.standard_normal((m, m_a))
    signs = np.where(np.arange(m) < (m + 1) // 2, 1.0, -1.0)
    a = rng.permutation(signs) / np.sqrt(m)
    p = {"W_Q": W_QK, "W_K": W_QK.copy(), "W_V": W_V, "W_O": W_O, "a": a}
    return {k: v.astype(dt) for k, v in p.items()}


def check_params(params) -> dict:
    """Validate Ψ: the five arrays, float64 or float32 (all the same), consistent shapes, finite.
    Returns them as arrays; ``TypeError``/``ValueError`` naming the offending entry otherwise."""
    if not hasattr(params, "keys"):
        raise TypeError(f"params must be a dict with keys {list(PARAM_NAMES)}, got {type(params).__name__}")
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; required keys: {list(PARAM_NAMES)}")
    extra = sorted(str(k) for k in params if k not in PARAM_NAMES)
    if extra:
        raise ValueError(f"params has keys {extra} that li2024 does not use; its keys: {list(PARAM_NAMES)}")
    W_Q = check_float_array("params['W_Q']", params["W_Q"], ndim=2)
    m_b, d = W_Q.shape
    W_K = check_float_array("params['W_K']", params["W_K"], shape=(m_b, d))
    W_V = check_float_array("params['W_V']", params["W_V"], shape=(None, d))
    W_O = check_float_array("params['W_O']", params["W_O"], shape=(None, W_V.shape[0]))
    a = check_float_array("params['a']", params["a"], shape=(W_O.shape[0],))
    out = {"W_Q": W_Q, "W_K": W_K, "W_V": W_V, "W_O": W_O, "a": a}
    dtypes = {k: str(v.dtype) for k, v in out.items()}
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"params must all have the same dtype (float64 or float32), got mixed dtypes {dtypes}")
    return out


def check_batch(batch, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch {P (B, d, l+1), z (B,) of ±1}, float64 or float32; returns (P, z)."""
    if not hasattr(batch, "keys"):
        raise TypeError(f"batch must be a dict with 'P' (B, d, l+1) and 'z' (B,), got {type(batch).__name__}")
    if "P" not in batch or "z" not in batch:
        raise ValueError("batch must be a dict with 'P' (B, d, l+1) and 'z' (B,)")
    P = _check_P("batch['P']", batch["P"], d)
    z = check_float_array("batch['z']", batch["z"], shape=(P.shape[0],))
    if not np.all(np.abs(z) == 1):
        raise ValueError(f"batch['z'] must hold labels ±1, got values {np.unique(z)[:5]}")
    return P, z


def _check_P(name: str, P, d: int) -> np.ndarray:
    """Validate prompts P (B, d, l+1): float64 or float32, B ≥ 1, l + 1 ≥ 2, finite."""
    P = check_float_array(name, P, shape=(None, d, None))
    if P.shape[0] < 1 or P.shape[2] < 2:
        raise ValueError(f"{name} must have B ≥ 1 prompts and l + 1 ≥ 2 columns, got shape {P.shape}")
    return P


def _sizes_fit(params, P, z) -> bool:
    """The O(1) shape agreement ``check=False`` still checks: the Numba kernels index without
    bounds checks, so a short ``z`` or a mis-sized parameter would read out of bounds."""
    try:
        W_Q, W_K, W_V, W_O, a = (params[k] for k in PARAM_NAMES)
        (m_b, d), B = W_Q.shape, len(z)
        ok = (P.ndim == 3 and P.shape[0] == B and P.shape[1] == d and P.shape[2] >= 2 and np.ndim(z) == 1
              and W_K.shape == (m_b, d) and W_V.ndim == 2 and W_V.shape[1] == d and W_O.ndim == 2
              and W_O.shape[1] == W_V.shape[0] and a.shape == (W_O.shape[0],))
    except (KeyError, TypeError, AttributeError, ValueError):
        ok = False
    return ok


def _check_cfg(cfg) -> Config:
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a refimpl.li2024 Config (li2024.preset(...)), got {type(cfg).__name__}")
    return cfg


def _prompts(inputs, dtype) -> np.ndarray:
    """The prompts P (B, d, l+1) of a batch dict, in the parameters' dtype."""
    if not hasattr(inputs, "keys") or "P" not in inputs:
        raise TypeError(f"inputs must be a batch dict holding 'P' (B, d, l+1), got {type(inputs).__name__}")
    return np.asarray(inputs["P"], dtype=dtype)


def _keep_vector(keep, m: int, dtype) -> np.ndarray:
    if keep is None:
        return np.ones(m, dtype=dtype)
    k = check_array("keep", keep, shape=(m,), dtype=dtype)
    if not np.all((k == 0) | (k == 1)):
        raise ValueError("keep must be a 0/1 (or bool) mask over the m rows of W_O")
    return k


# --------------------------------------------------------------------------------------------
# forward / backward (NumPy reference path)
# --------------------------------------------------------------------------------------------
def forward(params, inputs, cfg: Config, keep=None, *, check: bool = True):
    """The model output F(Ψ; P) = aᵀ Relu(W_O W_V C σ) for a batch of prompts (spec L7, L9).

    Options (``attend_to_query``, ``relu_at_zero``, ``train_a``) come from ``cfg.model``; the
    computation runs in the parameters' dtype.

    Parameters
    ----------
    params : dict of numpy.ndarray
        ``W_Q`` (m_b, d), ``W_K`` (m_b, d), ``W_V`` (m_a, d), ``W_O`` (m, m_a), ``a`` (m,).
    inputs : dict
        A batch holding ``P`` (B, d, l+1), query in the last column; other keys are ignored.
    cfg : refimpl.li2024.config.Config
        The configuration the options are read from.
    keep : array_like, shape (m,), optional
        0/1 mask over the rows of W_O: pruned rows (0) are removed from F (spec L9).
    check : bool
        Validate ``params`` and ``P`` first (``False``: trusted hot loops).

    Returns
    -------
    F : numpy.ndarray, shape (B,)
        The outputs; the prediction is sign F.
    cache : dict
        What :func:`backward` needs. ``cache["attn"]`` is the attention σ, shape (B, J) with
        J = l (or l + 1 with ``attend_to_query``, the query's weight last); ``cache["h"]`` the ReLU
        inputs W_O v, shape (B, m).
    """
    opts = _check_cfg(cfg).model
    if check:
        params = check_params(params)
        if not hasattr(inputs, "keys") or "P" not in inputs:
            raise TypeError(f"inputs must be a batch dict holding 'P' (B, d, l+1), got {type(inputs).__name__}")
        _check_P("inputs['P']", inputs["P"], params["W_Q"].shape[1])
        F, cache = forward(params, inputs, cfg, keep, check=False)
        check_finite("F", F, hint="the parameters or prompts overflow the forward pass")
        return F, cache
    W_Q, W_K, W_V, W_O, a = (params[k] for k in PARAM_NAMES)
    P = _prompts(inputs, W_Q.dtype)
    B, d, L1 = P.shape
    l = L1 - 1
    J = L1 if opts.attend_to_query else l
    kv = _keep_vector(keep, W_O.shape[0], a.dtype)  # (m,) 1 = kept, 0 = pruned
    a_eff = a * kv  # (m,) spec L9: pruned rows removed

    C = P[:, :, :l]  # (B, d, l)   context columns
    p_q = P[:, :, l]  # (B, d)      query column
    keys = P[:, :, :J]  # (B, d, J)   columns the softmax runs over
    u = p_q @ W_Q.T  # (B, m_b)   spec L7: u = W_Q p_q
    k_u = u @ W_K  # (B, d)     W_Kᵀ u
    s = np.einsum("bdj,bd->bj", keys, k_u)  # (B, J)  spec L7: s_i = (W_K p_i)ᵀ W_Q p_q
    sigma, sm_cache = softmax_forward(s, axis=-1)  # (B, J)  spec L7: attn_i = softmax_i(s)
    cbar = np.einsum("bdi,bi->bd", C, sigma[:, :l])  # (B, d)  c̄ = C σ
    v = cbar @ W_V.T  # (B, m_a)   spec L7: v = W_V c̄ = Σ_i W_V p_i attn_i
    h = v @ W_O.T  # (B, m)     h = W_O v
    r, relu_cache = relu_forward(h, float(opts.relu_at_zero))  # (B, m)  r = Relu(h)
    F = r @ a_eff  # (B,)       spec L7: F = aᵀ r
    cache = dict(
        params=params, P=P, l=l, J=J, a_eff=a_eff, keep=kv if keep is not None else None, train_a=opts.train_a,
        u=u, s=s, attn=sigma, sm_cache=sm_cache, cbar=cbar, v=v, h=h, r=r, relu_cache=relu_cache,
    )
    return F, cache


def backward(dF, cache, *, check: bool = True) -> dict:
    """Gradients of Σ_b dF_b F_b with respect to Ψ (spec L12), keyed like the parameters.

    Parameters
    ----------
    dF : numpy.ndarray, shape (B,)
        Upstream gradient with respect to the outputs F (for the mean hinge loss,
        −z 𝟙[zF < 1] / B).
    cache : dict
        The cache of the :func:`forward` call that produced F.
    check : bool
        Validate ``dF`` (float64 or float32, shape (B,), finite) and ``cache`` first.

    Returns
    -------
    dict of numpy.ndarray
        ``W_Q`` (m_b, d), ``W_K`` (m_b, d), ``W_V`` (m_a, d), ``W_O`` (m, m_a), and ``a`` (m,) only
        when the forward's config trains a (``cfg.model.train_a``; pruned entries are 0).
    """
    if check:
        if not isinstance(cache, dict) or "relu_cache" not in cache:
            raise TypeError(f"cache must be the cache returned by li2024.forward, got {type(cache).__name__}")
        dF = check_float_array("dF", dF, shape=(cache["P"].shape[0],))  # (B,) finite, float64 or float32
    W_Q, W_K, W_V, W_O, a = (cache["params"][k] for k in PARAM_NAMES)
    P, l, J = cache["P"], cache["l"], cache["J"]
    C, p_q, keys = P[:, :, :l], P[:, :, l], P[:, :, :J]
    u, cbar, v, r = cache["u"], cache["cbar"], cache["v"], cache["r"]

    # F = aᵀ r
    dr = dF[:, None] * cache["a_eff"][None, :]  # (B, m)
    # r = Relu(h):  δh = g (a ⊙ 𝟙[h > 0])                                   spec L12
    dh = relu_backward(dr, cache["relu_cache"])  # (B, m)
    # h = W_O v:  ∇W_O = δh vᵀ,  δv = W_Oᵀ δh                               spec L12
    dW_O = dh.T @ v  # (m, m_a)
    dv = dh @ W_O  # (B, m_a)
    # v = W_V c̄:  ∇W_V = δv c̄ᵀ,  δc̄ = W_Vᵀ δv                              spec L12
    dW_V = dv.T @ cbar  # (m_a, d)
    dcbar = dv @ W_V  # (B, d)
    # c̄ = C σ:  c_i = δvᵀ W_V p_i for context columns (the query column carries no value)
    c = np.zeros_like(cache["attn"])  # (B, J)
    c[:, :l] = np.einsum("bdi,bd->bi", C, dcbar)
    # σ = softmax(s):  γ_i = σ_i (c_i − Σ_j σ_j c_j)                         spec L12
    gamma = softmax_backward(c, cache["sm_cache"])  # (B, J)
    # s_i = p_iᵀ W_Kᵀ u:  C γ is the score-weighted key sum
    Cg = np.einsum("bdj,bj->bd", keys, gamma)  # (B, d)
    # ∇W_K = u (Cγ)ᵀ                                                        spec L12
    dW_K = u.T @ Cg  # (m_b, d)
    # u = W_Q p_q:  ∇W_Q = W_K (Cγ) p_qᵀ                                    spec L12
    du = Cg @ W_K.T  # (B, m_b)
    dW_Q = du.T @ p_q  # (m_b, d)
    grads = {"W_Q": dW_Q, "W_K": dW_K, "W_V": dW_V, "W_O": dW_O}
    if cache["train_a"]:
        da = dF @ r  # (m,) ∇a = g r                                       spec L12
        if cache["keep"] is not None:
            da = da * cache["keep"]
        grads["a"] = da
    return grads


def hinge_loss(F, z):
    """Mean hinge risk R = (1/B) Σ max{0, 1 − z F} (spec L10) and dR/dF."""
    losses, cache = hinge_forward(F, z)
    dF = hinge_backward(np.full_like(F, 1.0 / F.shape[0]), cache)  # g / B, g = −z 𝟙[zF < 1]
    return float(np.mean(losses)), dF


def _loss_grads(params, P, z, cfg: Config, backend: str, keep):
    """Loss, gradients, F, attention and the ReLU inputs h on trusted inputs (no validation):
    the computation behind ``loss_and_grads`` and each step of ``train``."""
    dt = params["W_Q"].dtype  # compute in the parameters' precision (float32 stays float32)
    P, z = np.asarray(P, dtype=dt), np.asarray(z, dtype=dt)
    if backend != "numpy":  # "numba", "numba_parallel"
        from refimpl.li2024.kernels import loss_and_grads_numba

        m = cfg.model
        return loss_and_grads_numba(
            params, P, z, attend_to_query=m.attend_to_query, train_a=m.train_a, relu_at_zero=float(m.relu_at_zero),
            keep=None if keep is None else _keep_vector(keep, params["W_O"].shape[0], params["a"].dtype),
            parallel=backend == "numba_parallel",
        )
    F, cache = forward(params, {"P": P}, cfg, keep=keep, check=False)
    loss, dF = hinge_loss(F, z)
    return loss, backward(dF, cache, check=False), F, cache["attn"], cache["h"]


def _aux(params, P, z, F, attn, h, keep) -> dict:
    """``aux`` of ``loss_and_grads``: outputs, the loss's term scale and the distance to a kink."""
    l = P.shape[2] - 1
    a_eff = np.abs(params["a"]) if keep is None else np.abs(params["a"]) * keep  # (m,)
    # |F| ≤ Σ_i |a_i| (|W_O| |W_V| |C| σ)_i: the terms summed into each hinge term 1 − zF
    cabs = np.einsum("bdi,bi->bd", np.abs(P[:, :, :l]), attn[:, :l])  # (B, d)
    w = (a_eff @ np.abs(params["W_O"])) @ np.abs(params["W_V"])  # (d,)
    scale = float(np.mean(1.0 + cabs @ w))
    live = h if keep is None else h[:, np.asarray(keep) != 0]  # ReLU inputs of the kept rows
    margin = float(np.min(np.abs(1.0 - z * F)))  # hinge kink at zF = 1
    if live.size:
        margin = min(margin, float(np.min(np.abs(live))))  # ReLU kink at h = 0
    return {"out": F, "attn": attn, "scale": scale, "kink_margin": margin}


def loss_and_grads(params, batch, cfg: Config, backend: str = "numpy", *, keep=None, check: bool = True,
                   return_aux: bool = False):
    """The mean hinge loss R = (1/B) Σ_b max{0, 1 − z_b F_b} and its gradients (spec L10, L12).

    Options come from ``cfg.model``; the computation runs in the parameters' dtype (float32 stays
    float32).

    Parameters
    ----------
    params : dict of numpy.ndarray
        ``W_Q`` (m_b, d), ``W_K`` (m_b, d), ``W_V`` (m_a, d), ``W_O`` (m, m_a), ``a`` (m,); all
        float64 or all float32.
    batch : dict
        ``P`` (B, d, l+1) and ``z`` (B,) of ±1, float64 or float32; other keys are ignored.
    cfg : refimpl.li2024.config.Config
        The configuration the options are read from.
    backend : {"numpy", "numba", "numba_parallel"}
        ``"numpy"``: this module, the readable reference; ``"numba"``: the fused kernels of
        ``refimpl.li2024.kernels``, equal to it to ~1e−12; ``"numba_parallel"``: the same kernels
        with the prompts split into one chunk per Numba thread (``numba.set_num_threads`` /
        ``NUMBA_NUM_THREADS``), the chunks' sums added in order — deterministic for a given thread
        count, and worth it at large batches only.
    keep : array_like, shape (m,), optional
        0/1 mask over the rows of W_O (spec L9); pruned rows get zero gradient.
    check : bool
        Validate the inputs first and raise :class:`refimpl.core.errors.NonFiniteError` if the
        loss, an output F or a gradient is not finite; ``False`` skips both (trusted hot loops) but
        still checks the shapes (O(1), no value scan), so a wrong-shaped array raises
        ``ValueError`` rather than being read out of bounds by the Numba kernels.
    return_aux : bool
        Also return ``aux``.

    Returns
    -------
    loss : float
        The mean hinge loss.
    grads : dict of numpy.ndarray
        Keyed and shaped like ``params``: ``W_Q``, ``W_K``, ``W_V``, ``W_O``, and ``a`` when
        ``cfg.model.train_a``.
    aux : dict
        Only with ``return_aux``: ``out`` F (B,), ``attn`` σ (B, J), ``scale`` (float, the mean over
        prompts of 1 + Σ_i |a_i| (|W_O||W_V||C|σ)_i, a bound on the terms summed into the loss) and
        ``kink_margin`` (float, the smallest |h| of a kept row and |1 − zF| in the batch).

    Raises
    ------
    TypeError, ValueError
        With ``check``: bad parameters, batch, backend or config, naming the argument.
    refimpl.core.errors.NonFiniteError
        With ``check``: a non-finite loss, output or gradient.
    """
    check_choice("backend", backend, BACKENDS)
    _check_cfg(cfg)
    if check:
        params = check_params(params)
        P, z = check_batch(batch, params["W_Q"].shape[1])
    else:
        P, z = np.asarray(batch["P"]), np.asarray(batch["z"])
        require_fit(_sizes_fit(params, P, z), lambda: check_batch(batch, check_params(params)["W_Q"].shape[1]))
    loss, grads, F, attn, h = _loss_grads(params, P, z, cfg, backend, keep)
    if check:
        check_finite("loss", loss)
        check_finite("out", F)
        check_finite("grads", grads)
    if return_aux:
        dt = params["W_Q"].dtype
        kv = None if keep is None else _keep_vector(keep, params["W_O"].shape[0], params["a"].dtype)
        return loss, grads, _aux(params, np.asarray(P, dtype=dt), np.asarray(z, dtype=dt), F, attn, h, kv)
    return loss, grads


def predict(params, inputs, cfg: Config, keep=None) -> np.ndarray:
    """The outputs F for a batch of prompts: :func:`forward` without the cache.

    Parameters
    ----------
    params : dict of numpy.ndarray
        As for :func:`forward`.
    inputs : dict
        A batch holding ``P`` (B, d, l+1).
    cfg : refimpl.li2024.config.Config
        The configuration the options are read from.
    keep : array_like, shape (m,), optional
        0/1 mask over the rows of W_O (spec L9).

    Returns
    -------
    numpy.ndarray, shape (B,)
        F; the predicted label is sign F (the attention is ``forward(...)[1]["attn"]``).
    """
    return forward(params, inputs, cfg, keep=keep)[0]
