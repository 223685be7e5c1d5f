"""Model of spec Y (Yang, Huang, Liang, Chi 2024): H-head softmax attention on a fixed dictionary.

Glossary (paper symbol → code name, shape); K tokens, N prompt tokens, H heads, B prompts:

=============  ============  ============  ================================================
symbol         code          shape         meaning
=============  ============  ============  ================================================
Q_h            ``Q``         (H, d, d)     merged key-query of head h (spec Y5)
w_h            ``w``         (H, K)        output weights of head h, one per token (spec Y5)
Ṽ              ``V_all``     (d, K)        all tokens v_1..v_K (spec Y2)
V              ``V``         (d, N)        prompt tokens v_1..v_N
Vᵀ Q_h Ṽ       ``P``         (H, N, K)     attention scores (keys: prompt, queries: all)
S_h            ``S``         (H, N, K)     softmax over the N rows of each column (spec Y5)
Â              ``A_hat``     (N, K)        Σ_h S_h diag(w_h) (spec Y5)
y              ``y``         (B, N)        labels of the prompt tokens
ŷ              ``y_hat``     (B, K)        Âᵀ y: predictions for all K tokens (spec Y5)
=============  ============  ============  ================================================

Two losses (``cfg.loss``): ``"population"`` is the closed form L(θ) of spec Y7 (batch: V_all,
Z_all, N, tau, as :func:`refimpl.yang2024.data.make_data` returns); ``"sample"`` is
(1/2K)·mean_b Σ_k (ŷ_k − y_k)² over sampled prompts (batch: V_all, N, y (B, N), y_all (B, K), as
:func:`refimpl.yang2024.data.sample_batch` returns), the Monte-Carlo version of the same loss
(spec Y1, Y7). Both are functions of Â only, so the attention pair :func:`attention_forward` /
:func:`attention_backward` (θ → Â, ∂Â → ∇θ) carries all the work; the contract's
:func:`forward` / :func:`backward` add the prompts' labels (ŷ = yÂ) on top of it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from refimpl.core.arrays import check_choice, check_float_array, float_dtype
from refimpl.core.errors import check_finite
from refimpl.core.ops import softmax_backward, softmax_forward
from refimpl.core.rng import make_rng
from refimpl.yang2024.config import Config
from refimpl.yang2024.population import Population, excess_and_grad, population

PARAM_NAMES = ("Q", "w")
BACKENDS = ("numpy", "numba", "numba_parallel")
LOSSES = ("population", "sample")


def init_params(cfg, seed, dtype=np.float64) -> dict:
    """The initial parameters θ⁰ (spec Y6): Q_h⁰ entries i.i.d. N(0, β²), w⁰ = 0.

    Parameters
    ----------
    cfg : refimpl.yang2024.config.Config
        Reads ``H``, ``d``, ``K`` and ``beta``.
    seed : int or numpy.random.Generator
        Draws Q⁰ (in float64, then cast).
    dtype : {numpy.float64, numpy.float32}
        The dtype of both arrays.

    Returns
    -------
    dict of numpy.ndarray
        ``Q`` (H, d, d), the merged key-query matrix of each head, and ``w`` (H, K), each head's
        output weight for every token (zeros).

    Raises
    ------
    TypeError
        If ``dtype`` is not float64 or float32.
    """
    dt = float_dtype(dtype)
    _check_cfg(cfg)
    rng = make_rng(seed)
    Q = cfg.beta * rng.standard_normal((cfg.H, cfg.d, cfg.d))  # (H, d, d)  spec Y6: Q⁰ ~ N(0, β²)
    w = np.zeros((cfg.H, cfg.K))  # (H, K)  spec Y6: w⁰ = 0
    return {"Q": Q.astype(dt, copy=False), "w": w.astype(dt, copy=False)}


# --------------------------------------------------------------------------------------------
# input checks (before any kernel runs, the same on every backend)
# --------------------------------------------------------------------------------------------
def check_params(params, d: int | None = None, K: int | None = None) -> dict:
    """``{"Q" (H, d, d), "w" (H, K)}`` validated: a dict, both keys, float32/float64 of one dtype,
    the shapes, finite entries; errors name ``params['Q']`` / ``params['w']``."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict {{'Q': (H, d, d), 'w': (H, K)}}, got {type(params).__name__}")
    for k in PARAM_NAMES:
        if k not in params:
            raise ValueError(f"params['{k}'] is missing; params must hold 'Q' (H, d, d) and 'w' (H, K)")
    extra = sorted(str(k) for k in params if k not in PARAM_NAMES)
    if extra:
        raise ValueError(f"params has keys {extra} that yang2024 does not use; its keys: {list(PARAM_NAMES)}")
    Q = check_float_array("params['Q']", params["Q"], shape=(None, d, d))
    if Q.shape[1] != Q.shape[2]:
        raise ValueError(f"params['Q'] must have shape (H, d, d), got {Q.shape}")
    w = check_float_array("params['w']", params["w"], shape=(Q.shape[0], K))
    if Q.dtype != w.dtype:
        raise TypeError(f"params['Q'] and params['w'] must have one dtype, got dtype {Q.dtype} and {w.dtype}")
    return {"Q": Q, "w": w}


def _check_cfg(cfg) -> Config:
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be a refimpl.yang2024 Config (yang2024.preset(...)), got {type(cfg).__name__}")
    return cfg


def _check_sizes(params, b) -> None:
    """The O(1) shape agreement ``check=False`` still checks (the Numba kernels do not bounds-check);
    a mismatch raises ``ValueError`` naming the entry."""
    def bad(what):
        raise ValueError(f"{what} (check=False skips validation, not this shape check; call loss_and_grads "
                         "with check=True for the full validation)")

    try:
        Q, w, V_all, N = params["Q"], params["w"], np.asarray(b["V_all"]), int(b["N"])
        H, d, K = Q.shape[0], Q.shape[1], V_all.shape[1]
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        bad(f"params and batch do not fit together ({type(exc).__name__}: {exc})")
    if V_all.shape != (d, K):
        bad(f"batch['V_all'] has shape {V_all.shape}, params['Q'] {np.shape(Q)}: they do not fit together")
    if np.shape(Q) != (H, d, d):
        bad(f"params['Q'] must have shape (H, d, d) = ({H}, {d}, {d}), got {np.shape(Q)}")
    if np.shape(w) != (H, K):
        bad(f"params['w'] must have shape (H, K) = ({H}, {K}), got {np.shape(w)}")
    if not 1 <= N <= K:
        bad(f"batch['N'] must be an int with 1 ≤ N ≤ K = {K}, got {N}")
    for key, cols in (("y", N), ("y_all", K), ("Z_all", K)):
        if key in b and (np.ndim(b[key]) != 2 or np.shape(b[key])[1] != cols):
            bad(f"batch[{key!r}] must have shape (B, {cols}), got {np.shape(b[key])}")
    if "y" in b and "y_all" in b and np.shape(b["y"])[0] != np.shape(b["y_all"])[0]:
        bad(f"batch['y_all'] has {np.shape(b['y_all'])[0]} rows, batch['y'] {np.shape(b['y'])[0]}: they must agree")


def _check_N(N, K):
    N = np.asarray(N)
    if N.shape != () or not np.issubdtype(N.dtype, np.integer) or not 1 <= int(N) <= K:
        raise ValueError(f"batch['N'] must be an int with 1 ≤ N ≤ K = {K}, got {N!r}")
    return int(N)


def check_batch(params, batch, need: tuple = (), *, N=None, tau=None, why: str = "", name: str = "batch"):
    """(params, batch) validated before any kernel runs; errors name ``params['Q']``, ``batch['y']``...

    Returns the checked params and a dict with V_all (d, K), N (the batch's, else the default ``N``),
    tau (likewise; unchecked here, :func:`population` checks it) and the arrays named in ``need``
    ("Z_all" (m, K), "y_all" (B, K), "y" (B, N); ``why`` says who needs them)."""
    if not isinstance(batch, Mapping):  # ``name``: the argument (``"inputs"`` for forward)
        raise TypeError(f"{name} must be a dict, got {type(batch).__name__}")
    if "V_all" not in batch:
        raise ValueError("batch['V_all'] (d, K) is missing")
    V_all = check_float_array("batch['V_all']", batch["V_all"], ndim=2)
    d, K = V_all.shape
    if "N" not in batch and N is None:
        raise ValueError("batch['N'] (the prompt length) is missing")
    N = _check_N(batch["N"] if "N" in batch else N, K)
    params = check_params(params, d, K)
    out = {"V_all": V_all, "N": N, "tau": batch["tau"] if "tau" in batch else tau}
    for key in need:
        if key not in batch:
            raise ValueError(f"batch['{key}'] is missing{f' ({why} needs it)' if why else ''}")
        shape = {"Z_all": (None, K), "y_all": (None, K)}.get(key, (out["y_all"].shape[0] if "y_all" in out else None, N))
        out[key] = check_float_array(f"batch['{key}']", batch[key], shape=shape)
    return params, out


# --------------------------------------------------------------------------------------------
# θ → Â and back (the NumPy reference path; kernels.py is the Numba path)
# --------------------------------------------------------------------------------------------
def attention_forward(Q, w, V_all, N: int):
    """Â (N, K) of spec Y5 and a cache for :func:`attention_backward` (no input checks)."""
    V = V_all[:, :N]  # (d, N)  prompt tokens
    P = (V.T @ Q) @ V_all  # (H, N, K)  spec Y5: Vᵀ Q_h Ṽ (N×d first: N d² + N d K flops per head)
    S, sm_cache = softmax_forward(P, axis=1)  # (H, N, K)  spec Y5: softmax over the N rows
    A_hat = np.einsum("hnk,hk->nk", S, w)  # (N, K)  spec Y5: Â = Σ_h S_h diag(w_h)
    return A_hat, dict(V=V, V_all=V_all, S=S, w=w, sm_cache=sm_cache)


def attention_backward(dA_hat, cache) -> dict:
    """Gradients {Q (H, d, d), w (H, K)} of Σ dA_hat ⊙ Â (spec Y8)."""
    S, w, V, V_all = cache["S"], cache["w"], cache["V"], cache["V_all"]
    # Â = Σ_h S_h diag(w_h)  →  ∂/∂w_{h,k} = s_kᵀ dâ_k,  ∂/∂S_h = dÂ diag(w_h)             spec Y8
    dw = np.einsum("hnk,nk->hk", S, dA_hat)  # (H, K)
    dS = dA_hat[None, :, :] * w[:, None, :]  # (H, N, K)
    # S = softmax(P) over rows: dP = S ⊙ (dS − Σ_n S dS) = (diag(s) − s sᵀ) ds per column       spec Y8
    dP = softmax_backward(dS, cache["sm_cache"])  # (H, N, K)
    # P = Vᵀ Q_h Ṽ  →  ∇_{Q_h} = V dP_h Ṽᵀ                                                    spec Y8
    dQ = V @ (dP @ V_all.T)  # (H, d, d)
    return {"Q": dQ, "w": dw}


# --------------------------------------------------------------------------------------------
# the contract: ŷ = yÂ for a batch of prompts
# --------------------------------------------------------------------------------------------
def forward(params, inputs, cfg):
    """The predictions ŷ = yÂ for a batch of prompts (spec Y5: ŷ_k = â_kᵀ y).

    Â = Σ_h S_h diag(w_h) with S_h = softmax over the N rows of Vᵀ Q_h Ṽ depends only on the
    parameters and the dictionary; the prompts' labels y enter linearly. Inputs are validated.

    Parameters
    ----------
    params : dict of numpy.ndarray
        ``Q`` (H, d, d) and ``w`` (H, K), float64 or float32.
    inputs : dict
        ``V_all`` (d, K), ``y`` (B, N) the labels of the prompt tokens, and optionally ``N``
        (default ``cfg.N``); other keys are ignored.
    cfg : refimpl.yang2024.config.Config
        Supplies ``N`` when ``inputs`` does not.

    Returns
    -------
    y_hat : numpy.ndarray, shape (B, K)
        ŷ, the prediction for every token of the dictionary.
    cache : dict
        What :func:`backward` needs; ``cache["attn"]`` is S (H, N, K) (each column sums to 1 over
        the N prompt tokens), ``cache["A_hat"]`` is Â (N, K).

    Raises
    ------
    TypeError, ValueError
        For a bad parameter or input array, naming it.
    """
    params, b = check_batch(params, inputs, ("y",), N=_check_cfg(cfg).N, why="forward", name="inputs")
    dt = params["Q"].dtype  # computed in the parameters' dtype
    A_hat, att = attention_forward(params["Q"], params["w"], np.asarray(b["V_all"], dtype=dt), b["N"])  # (N, K)  Y5
    y = np.asarray(b["y"], dtype=dt)  # (B, N)
    y_hat = y @ A_hat  # (B, K)  spec Y5: ŷ = yÂ
    check_finite("y_hat", y_hat, hint="the parameters or inputs overflow the forward pass")
    return y_hat, {"attn": att["S"], "A_hat": A_hat, "y": y, "attention": att}


def backward(dy_hat, cache) -> dict:
    """Gradients of Σ dy_hat ⊙ ŷ with respect to θ = (Q, w) (spec Y8).

    Parameters
    ----------
    dy_hat : numpy.ndarray, shape (B, K)
        Upstream gradient with respect to the predictions ŷ.
    cache : dict
        The cache of the :func:`forward` call that produced ŷ.

    Returns
    -------
    dict of numpy.ndarray
        ``Q`` (H, d, d) and ``w`` (H, K).
    """
    if not isinstance(cache, dict) or "attention" not in cache:
        raise TypeError(f"cache must be the cache returned by yang2024.forward, got {type(cache).__name__}")
    dy_hat = check_float_array("dy_hat", dy_hat, shape=(cache["y"].shape[0], cache["A_hat"].shape[1]))  # (B, K)
    # ŷ = yÂ  →  ∂Â = yᵀ dŷ                                                                   spec Y8
    dA_hat = cache["y"].T @ dy_hat  # (N, K)
    return attention_backward(dA_hat, cache["attention"])


def predict(params, inputs, cfg) -> np.ndarray:
    """The predictions ŷ = yÂ: :func:`forward` without the cache.

    Parameters
    ----------
    params : dict of numpy.ndarray
        ``Q`` (H, d, d) and ``w`` (H, K).
    inputs : dict
        ``V_all`` (d, K), ``y`` (B, N), optionally ``N``.
    cfg : refimpl.yang2024.config.Config
        Supplies ``N`` when ``inputs`` does not.

    Returns
    -------
    numpy.ndarray, shape (B, K)
        ŷ for every token of the dictionary.
    """
    return forward(params, inputs, cfg)[0]


def sample_loss(y_hat, y, y_all):
    """(1/2K) mean_b Σ_k (ŷ_k − y_k)² and ∂/∂Â (N, K) (spec Y7 before the expectation)."""
    B, K = y_all.shape
    r = y_hat - y_all  # (B, K)  ŷ − y
    return float(np.sum(r * r) / (2 * K * B)), y.T @ r / (K * B)  # (N, K)


def _scale(S, w, Q, V_all, N, b, pop) -> float:
    """Magnitude of the terms summed into the loss (the finite-difference noise floor): the loss
    with every term of Â and of the residual taken in absolute value, times 1 + the largest
    |term| sum of a score Vᵀ Q_h Ṽ (a rounding δ of a score is a relative error δ of its softmax)."""
    A_abs = np.einsum("hnk,hk->nk", S, np.abs(w))  # (N, K)  Σ_h S_h |w_h|
    P_abs = float(np.max((np.abs(V_all[:, :N]).T @ np.abs(Q)) @ np.abs(V_all)))  # |V|ᵀ|Q_h||Ṽ|
    if pop is not None:  # the population loss
        D_abs = A_abs + np.abs(pop.A)  # (N, K)
        terms = float(np.sum(D_abs * (np.abs(pop.Zbar2) @ D_abs)) / (2 * pop.K)) + pop.L_star
    else:
        R_abs = np.abs(b["y"]) @ A_abs + np.abs(b["y_all"])  # (B, K)
        terms = float(np.sum(R_abs * R_abs) / (2 * R_abs.shape[1] * R_abs.shape[0]))
    return terms * (1.0 + P_abs)


def loss_and_grads(params, batch, cfg, backend: str = "numpy", *, pop: Population | None = None,
                   check: bool = True, return_aux: bool = False):
    """The loss ``cfg.loss`` and its gradients (spec Y7, Y8).

    ``"population"``: the closed form L(θ) of spec Y7 (the expectation over tasks and noise);
    ``"sample"``: its Monte-Carlo version (1/2K)·mean_b Σ_k (ŷ_k − y_k)² over the batch's prompts.

    Parameters
    ----------
    params : dict of numpy.ndarray
        ``Q`` (H, d, d) and ``w`` (H, K), float64 or float32; both backends compute in that dtype.
    batch : dict
        ``V_all`` (d, K) and optionally ``N`` (default ``cfg.N``); for ``"population"`` also
        ``Z_all`` (m, K) and optionally ``tau`` (default ``cfg.tau``) — :func:`make_data`'s dict —
        unless ``pop`` is given; for ``"sample"`` ``y`` (B, N) and ``y_all`` (B, K) —
        :func:`sample_batch`'s dict.
    cfg : refimpl.yang2024.config.Config
        Chooses the loss (``cfg.loss``) and supplies the defaults above.
    backend : {"numpy", "numba", "numba_parallel"}
        The NumPy reference or the Numba kernels (``refimpl.yang2024.kernels``), on one thread or
        with the heads split over Numba's threads (``numba.set_num_threads``; deterministic for a
        given thread count).
    pop : Population, optional
        The precomputed constants of the closed form (:func:`refimpl.yang2024.population.population`).
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
        The loss.
    grads : dict of numpy.ndarray
        ``Q`` (H, d, d) and ``w`` (H, K).
    aux : dict
        Only with ``return_aux``: ``out`` (ŷ = yÂ, (B, K), when the batch holds prompts ``y``, else
        Â), ``attn`` S (H, N, K), ``A_hat`` (N, K), ``scale`` (the magnitude of the summed terms,
        for the finite-difference noise floor); for the population loss also ``excess`` L − L*
        (computed as (1/2K) Σ‖Z̄(â_k − a_k)‖², free of the cancellation in L − L*) and ``pop``.

    Raises
    ------
    TypeError, ValueError
        For a bad backend, loss, parameter or batch entry, naming it.
    refimpl.core.errors.NonFiniteError
        With ``check``: a non-finite loss or gradient.
    """
    check_choice("backend", backend, BACKENDS)
    loss = _check_cfg(cfg).loss
    check_choice("cfg.loss", loss, LOSSES)
    if not isinstance(batch, Mapping):
        raise TypeError(f"batch must be a dict, got {type(batch).__name__}")
    need = (("Z_all",) if pop is None else ()) if loss == "population" else ("y_all", "y")
    if loss == "population" and "y" in batch:  # the population loss reports ŷ for prompts it is given
        need += ("y",)
    if check:
        params, b = check_batch(params, batch, need, N=cfg.N, tau=cfg.tau, why=f"loss {loss!r}")
        if pop is not None and (pop.K, pop.N) != (b["V_all"].shape[1], b["N"]):
            raise ValueError(f"pop is for K={pop.K}, N={pop.N}; the batch has K={b['V_all'].shape[1]}, N={b['N']}")
    else:
        b = batch if "N" in batch else {**batch, "N": cfg.N}
        _check_sizes(params, b)
    if loss == "population" and pop is None:
        pop = population(b["Z_all"], int(b["N"]), float(b["tau"] if "tau" in b else cfg.tau))
    val, grads, aux = evaluate(params, b, loss, backend, pop)
    if check:  # a non-finite loss or gradient is an error, never a result (DESIGN.md, "Errors")
        check_finite("loss", val)
        check_finite("grads", grads)
    if not return_aux:
        return val, grads
    if "out" not in aux:
        aux["out"] = b["y"] @ aux["A_hat"] if "y" in b else aux["A_hat"]
    aux["scale"] = _scale(aux["attn"], params["w"], params["Q"], b["V_all"], int(b["N"]), b,
                         pop if loss == "population" else None)
    return val, grads, aux


def evaluate(params, batch, loss: str, backend: str, pop: Population | None = None):
    """The hot path of :func:`loss_and_grads` (no checks, no "scale"; training loops call it):
    ``(loss, grads, aux)`` with aux "A_hat", "attn", and "excess", "pop" (population; ``pop``
    required) or "out" = ŷ (sample)."""
    Q, w = params["Q"], params["w"]
    dt = Q.dtype  # compute in the parameters' dtype: float32 parameters stay float32 throughout
    V_all, N = np.asarray(batch["V_all"], dtype=dt), int(batch["N"])
    par = backend == "numba_parallel"
    if backend != "numpy":  # "numba", "numba_parallel"
        from refimpl.yang2024.kernels import attention_backward as k_backward
        from refimpl.yang2024.kernels import attention_forward as k_forward

        A_hat, S = k_forward(Q, w, V_all, N, parallel=par)
    else:
        A_hat, cache = attention_forward(Q, w, V_all, N)
        S = cache["S"]
    aux = {"A_hat": A_hat, "attn": S}
    if loss == "population":
        excess, dA = excess_and_grad(A_hat, pop)  # spec Y7, Y8: R = Z̄²(Â − A)/K
        val = excess + pop.L_star
        aux["pop"] = pop
        aux["excess"] = excess
    else:
        y = np.asarray(batch["y"], dtype=dt)  # (B, N)
        y_hat = y @ A_hat  # (B, K)  spec Y5: ŷ = yÂ
        val, dA = sample_loss(y_hat, y, np.asarray(batch["y_all"], dtype=dt))
        aux["out"] = y_hat
    if backend != "numpy":
        dQ, dw = k_backward(dA, S, w, V_all, N, parallel=par)
        grads = {"Q": dQ, "w": dw}
    else:
        grads = attention_backward(dA, cache)
    return val, grads, aux


# --------------------------------------------------------------------------------------------
# the full W^Q, W^K, W^V, W^O multi-head layer (spec Y5), for tests
# --------------------------------------------------------------------------------------------
def full_layer_predict(W_Q, W_K, W_V, W_O, E, N: int) -> np.ndarray:
    """ŷ (K,) of the literal multi-head layer on E (d+1, K) (spec Y4–Y5).

    Head h: keys W^K_h E^P, queries W^Q_h E (all K columns), values W^V_h E^P (1, N);
    o_h = W^V_h E^P softmax_rows((W^K_h E^P)ᵀ W^Q_h E) (1, K); ŷ = W^O (o_1, …, o_H) with
    W^O (K, HK) acting on the concatenated head outputs.
    """
    H = W_Q.shape[0]
    EP = E[:, :N]  # (d+1, N)
    outs = []
    for h in range(H):
        scores = (W_K[h] @ EP).T @ (W_Q[h] @ E)  # (N, K)
        S_h, _ = softmax_forward(scores, axis=0)  # (N, K)
        outs.append((W_V[h] @ EP @ S_h).ravel())  # (K,)
    return W_O @ np.concatenate(outs)  # (K,)
