"""The reference multi-layer transformer of spec T: NumPy forward, hand-written backward, losses.

    h⁰ = read_in(X) (+ P)                           X (B, T, d_in) → (B, T, D)
    hˡ = layer(hˡ⁻¹), l = 1..L                       attention then feed-forward, each residual
         post-norm: x = LN(x + f(x))                 (Vaswani et al. 2017)
         pre-norm:  x = x + f(LN(x)), then LN_f      (GPT-2)
    out = read_out(h^L)                              (B, T) for readout "all", (B,) for "last"
    squared: L = (1/(2n)) Σ (out − target)²,  hinge: L = (1/n) Σ max(0, 1 − target·out)
    with n = out.size (n = B·T for "all", n = B for "last").

Parameters (a flat dict; shapes with D = d_model, F = d_ff; weights as ``torch.nn.Linear``,
(n_out, n_in), y = x Wᵀ + b):

=========================  ==============  =====================================================
name                       shape           meaning
=========================  ==============  =====================================================
``read_in.W``              (D, d_in)       read-in map of each token
``read_in.b``              (D,)
``pos``                    (max_T, D)      learned positions (only with ``positions="learned"``)
``layer{l}.attn.W_Q``      (D, D)          queries; head h uses rows h·d_h .. (h+1)·d_h − 1
``layer{l}.attn.b_Q``      (D,)            (same for ``W_K``/``b_K``, ``W_V``/``b_V``)
``layer{l}.attn.W_O``      (D, D)          output map of the concatenated heads
``layer{l}.attn.b_O``      (D,)
``layer{l}.ln1.g``, ``.b`` (D,)            layer norm of the attention sub-block
``layer{l}.ff.W1``         (F, D)          feed-forward in (``ff.b1`` (F,))
``layer{l}.ff.W2``         (D, F)          feed-forward out (``ff.b2`` (D,))
``layer{l}.ln2.g``, ``.b`` (D,)            layer norm of the feed-forward sub-block
``ln_f.g``, ``ln_f.b``     (D,)            final layer norm (pre-norm only)
``read_out.W``             (1, D)          read-out
``read_out.b``             (1,)
=========================  ==============  =====================================================

Initialisation [C] (``cfg.init``): ``"gpt2"`` (GPT-2 / nanoGPT): every weight matrix
N(0, init_std²), the residual projections ``attn.W_O`` and ``ff.W2`` N(0, (init_std/√(2L))²);
``"xavier"``: weights Glorot-uniform U(±√(6/(n_in + n_out))) (``torch.nn.init.xavier_uniform_``).
In both: ``pos`` N(0, init_std²), biases 0, layer-norm gains 1 and biases 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from refimpl.core.arrays import check_choice, check_float_array, float_dtype, require_fit
from refimpl.core.errors import check_finite
from refimpl.core.ops import (
    hinge_backward,
    hinge_forward,
    squared_backward,
    squared_forward,
)
from refimpl.core.rng import make_rng
from refimpl.transformer.blocks import (
    ATTN_PARAMS,
    FF_PARAMS,
    layer_backward,
    layer_forward,
    layernorm_block_backward,
    layernorm_block_forward,
    read_in_backward,
    read_in_forward,
    read_out_backward,
    read_out_forward,
)
from refimpl.transformer.config import TransformerConfig

BACKENDS = ("numpy", "numba")  # values of loss_and_grads(..., backend=): NumPy + BLAS (this module), Numba (kernels.py)

# Every parameter name, in the order of ``param_shapes``: ``layer{l}`` stands for layer0 ..
# layer{n_layers − 1}; ``pos`` exists with positions "learned" only, ``ln_f.*`` with norm "pre" only.
PARAM_NAMES = (
    "read_in.W", "read_in.b", "pos",
    "layer{l}.attn.W_Q", "layer{l}.attn.b_Q", "layer{l}.attn.W_K", "layer{l}.attn.b_K",
    "layer{l}.attn.W_V", "layer{l}.attn.b_V", "layer{l}.attn.W_O", "layer{l}.attn.b_O",
    "layer{l}.ln1.g", "layer{l}.ln1.b", "layer{l}.ff.W1", "layer{l}.ff.b1", "layer{l}.ff.W2", "layer{l}.ff.b2",
    "layer{l}.ln2.g", "layer{l}.ln2.b",
    "ln_f.g", "ln_f.b", "read_out.W", "read_out.b",
)


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------
def param_shapes(cfg: TransformerConfig) -> dict[str, tuple]:
    """Name → shape of every parameter, in a fixed order (the order of ``init_params``' draws)."""
    D, F = cfg.d_model, cfg.d_ff
    shapes = {"read_in.W": (D, cfg.d_in), "read_in.b": (D,)}
    if cfg.positions == "learned":
        shapes["pos"] = (cfg.max_T, D)
    for l in range(cfg.n_layers):
        for n in ("Q", "K", "V", "O"):
            shapes[f"layer{l}.attn.W_{n}"] = (D, D)
            shapes[f"layer{l}.attn.b_{n}"] = (D,)
        shapes[f"layer{l}.ln1.g"] = (D,)
        shapes[f"layer{l}.ln1.b"] = (D,)
        shapes[f"layer{l}.ff.W1"] = (F, D)
        shapes[f"layer{l}.ff.b1"] = (F,)
        shapes[f"layer{l}.ff.W2"] = (D, F)
        shapes[f"layer{l}.ff.b2"] = (D,)
        shapes[f"layer{l}.ln2.g"] = (D,)
        shapes[f"layer{l}.ln2.b"] = (D,)
    if cfg.norm == "pre":
        shapes["ln_f.g"] = (D,)
        shapes["ln_f.b"] = (D,)
    shapes["read_out.W"] = (1, D)
    shapes["read_out.b"] = (1,)
    return shapes


def init_params(cfg: TransformerConfig, seed, dtype=np.float64) -> dict[str, np.ndarray]:
    """The initial parameters (scheme ``cfg.init``, see the module docstring).

    Drawn in float64 in the order of :func:`param_shapes`, then cast.

    Parameters
    ----------
    cfg : refimpl.transformer.config.TransformerConfig
        The architecture (D = d_model, F = d_ff, ``n_layers``, ``norm``, ``positions``, ``init``).
    seed : int or numpy.random.Generator
        Draws every random parameter.
    dtype : {numpy.float64, numpy.float32}
        The dtype of every array.

    Returns
    -------
    dict of numpy.ndarray
        A flat dict, shapes as :func:`param_shapes`: ``read_in.W`` (D, d_in), ``read_in.b`` (D,),
        ``pos`` (max_T, D) with learned positions; per layer l ``layer{l}.attn.W_Q``, ``W_K``,
        ``W_V``, ``W_O`` (D, D) and their biases ``b_Q`` … ``b_O`` (D,), ``layer{l}.ln1.g``/``.b``
        and ``ln2.g``/``.b`` (D,), ``layer{l}.ff.W1`` (F, D), ``ff.b1`` (F,), ``ff.W2`` (D, F),
        ``ff.b2`` (D,); ``ln_f.g``, ``ln_f.b`` (D,) with pre-norm; ``read_out.W`` (1, D),
        ``read_out.b`` (1,). Weights are (n_out, n_in), as ``torch.nn.Linear``.

    Raises
    ------
    TypeError
        If ``dtype`` is not float64 or float32.
    """
    _check_cfg(cfg)
    dt = float_dtype(dtype)
    rng = make_rng(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[-1]
        if name == "pos":
            p = cfg.init_std * rng.standard_normal(shape)
        elif leaf == "g":
            p = np.ones(shape)
        elif len(shape) == 1:  # biases, layer-norm biases
            p = np.zeros(shape)
        elif cfg.init == "gpt2":
            std = cfg.init_std
            if leaf in ("W_O", "W2"):  # residual projections (GPT-2 paper §2.3, nanoGPT)
                std = std / np.sqrt(2 * cfg.n_layers)
            p = std * rng.standard_normal(shape)
        else:  # xavier
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            p = rng.uniform(-limit, limit, size=shape)
        params[name] = p.astype(dt)
    return params


# --------------------------------------------------------------------------------------------
# input checks: ValueError / TypeError naming the argument, before any computation
# --------------------------------------------------------------------------------------------
def _check_cfg(cfg) -> None:
    if not isinstance(cfg, TransformerConfig):
        raise TypeError(f"cfg must be a TransformerConfig, got {type(cfg).__name__}")


def check_params(params, cfg: TransformerConfig) -> dict:
    """Validate the parameter dict against ``cfg``: every name, its shape, finite, one float dtype
    (float64 or float32; integer, float16 and mixed dtypes → ``TypeError``)."""
    _check_cfg(cfg)
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    shapes = param_shapes(cfg)
    missing = [k for k in shapes if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing[:6]}{' ...' if len(missing) > 6 else ''} for this config")
    extra = sorted(set(params) - set(shapes))
    if extra:
        raise ValueError(f"params has keys {extra[:6]} that this config does not use")
    out = {k: check_float_array(f"params[{k!r}]", params[k], shape=s) for k, s in shapes.items()}
    dtypes = {a.dtype for a in out.values()}
    if len(dtypes) != 1:
        raise TypeError(f"params must all have one dtype (float64 or float32), got a mix of "
                        f"{sorted(map(str, dtypes))}")
    return out


def check_X(X, cfg: TransformerConfig, name: str = "batch['X']") -> np.ndarray:
    """X must be (B, T, d_in), B, T ≥ 1, finite, float64 or float32; T ≤ max_T with learned positions."""
    X = check_float_array(name, X, shape=(None, None, cfg.d_in))
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must have B ≥ 1 and T ≥ 1, got shape {X.shape}")
    if cfg.positions == "learned" and X.shape[1] > cfg.max_T:
        raise ValueError(f"{name} has T = {X.shape[1]} tokens but the learned positions cover max_T = {cfg.max_T}")
    return X


def check_target(target, out_shape: tuple, cfg: TransformerConfig) -> np.ndarray:
    """target must have the output's shape ((B, T) for readout "all", (B,) for "last"); ±1 for hinge."""
    t = check_float_array("batch['target']", target, shape=out_shape)
    if cfg.loss == "hinge" and not np.all(np.abs(t) == 1):
        raise ValueError(f"batch['target'] must hold labels ±1 for the hinge loss, got values {np.unique(t)[:5]}")
    return t


def _batch_entry(batch, key: str, name: str, what: str):
    if not isinstance(batch, Mapping):
        raise TypeError(f"{name} must be a dict holding {what}, got {type(batch).__name__}")
    if key not in batch:
        raise ValueError(f"{name}[{key!r}] is missing: {name} must be a dict holding {what}")
    return batch[key]


def _sizes_fit(params, X, target, cfg) -> bool:
    """The O(1)-per-tensor shape agreement ``check=False`` still checks (the Numba kernels do not
    bounds-check)."""
    try:
        X = np.asarray(X)
        B, T = X.shape[0], X.shape[1]
        ok = X.ndim == 3 and X.shape[2] == cfg.d_in and np.shape(target) == ((B, T) if cfg.readout == "all" else (B,))
        ok = ok and all(np.shape(params[k]) == s for k, s in param_shapes(cfg).items())
    except (KeyError, TypeError, AttributeError, ValueError, IndexError):
        ok = False
    return ok


def _check_finite_result(loss, grads) -> None:
    """A non-finite loss or gradient is an error, never a result (DESIGN.md, "Errors")."""
    check_finite("loss", loss)
    check_finite("grads", grads)


def check_batch(batch, cfg: TransformerConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(X, target)`` of ``batch = {"X": (B, T, d_in), "target": (B, T) or (B,)}``, validated."""
    what = "'X' (B, T, d_in) and 'target' ((B, T) for readout 'all', (B,) for 'last')"
    X = check_X(_batch_entry(batch, "X", "batch", what), cfg)
    target = _batch_entry(batch, "target", "batch", what)
    return X, check_target(target, X.shape[:2] if cfg.readout == "all" else X.shape[:1], cfg)


# --------------------------------------------------------------------------------------------
# forward / backward
# --------------------------------------------------------------------------------------------
def _layer_params(params, l):
    pre = f"layer{l}."
    names = [f"attn.{n}" for n in ATTN_PARAMS] + [f"ff.{n}" for n in FF_PARAMS]
    names += ["ln1.g", "ln1.b", "ln2.g", "ln2.b"]
    return {n: params[pre + n] for n in names}


def forward(params, inputs, cfg: TransformerConfig, *, check: bool = True):
    """The model output for a batch of input sequences (spec T).

    Parameters
    ----------
    params : dict of numpy.ndarray
        Keyed as :func:`init_params` returns them; all float64 or all float32 (X is computed in
        the parameters' dtype).
    inputs : dict
        ``X`` (B, T, d_in); other keys are ignored. T ≤ ``max_T`` with learned positions.
    cfg : refimpl.transformer.config.TransformerConfig
        The architecture.
    check : bool
        Validate the parameters and inputs first (``False``: trusted callers in hot loops).

    Returns
    -------
    out : numpy.ndarray
        Shape (B, T) for ``readout="all"``, (B,) for ``"last"``.
    cache : dict
        What :func:`backward` needs. ``cache["attn"]`` is a list over layers of the attention
        probabilities, each (B, H, T, T) indexed (batch, head, query, key); ``cache["cfg"]`` is
        ``cfg``.
    """
    if check:
        params = check_params(params, cfg)
        X = check_X(_batch_entry(inputs, "X", "inputs", "'X' (B, T, d_in)"), cfg, "inputs['X']")
    else:
        X = inputs["X"]
    X = np.asarray(X, dtype=params["read_in.W"].dtype)
    h, c_in = read_in_forward(X, params["read_in.W"], params["read_in.b"], params.get("pos"))  # (B, T, D)
    c_layers = []
    for l in range(cfg.n_layers):
        h, c = layer_forward(h, _layer_params(params, l), n_heads=cfg.n_heads, norm=cfg.norm,
                             activation=cfg.activation, causal=cfg.causal)  # (B, T, D)
        c_layers.append(c)
    c_lnf = None
    if cfg.norm == "pre":
        h, c_lnf = layernorm_block_forward(h, params["ln_f.g"], params["ln_f.b"])  # (B, T, D) final LN
    out, c_out = read_out_forward(h, params["read_out.W"], params["read_out.b"], cfg.readout)
    cache = dict(c_in=c_in, c_layers=c_layers, c_lnf=c_lnf, c_out=c_out,
                 attn=[c["A"] for c in c_layers], out_shape=out.shape, cfg=cfg)
    if check:
        check_finite("out", out, hint="the parameters or inputs overflow the forward pass")
    return out, cache


def backward(dout, cache, *, check: bool = True) -> dict:
    """Gradients of Σ dout ⊙ out with respect to every parameter.

    Parameters
    ----------
    dout : numpy.ndarray
        Upstream gradient, shaped like the output: (B, T) or (B,).
    cache : dict
        The cache of the :func:`forward` call that produced the output (it holds the config).
    check : bool
        Validate ``dout`` (float64 or float32, finite) and ``cache`` first.

    Returns
    -------
    dict of numpy.ndarray
        Keyed and shaped like the parameters (every entry of :func:`param_shapes`).

    Raises
    ------
    TypeError, ValueError
        If ``cache`` is not a forward cache, or ``dout`` does not have the output's shape, or is
        not a finite float64/float32 array.
    """
    if not isinstance(cache, dict) or "out_shape" not in cache:
        raise TypeError(f"cache must be the cache returned by transformer.forward, got {type(cache).__name__}")
    cfg = cache["cfg"]
    if np.shape(dout) != cache["out_shape"]:
        raise ValueError(f"dout must have the output's shape {cache['out_shape']}, got {np.shape(dout)}")
    if check:
        dout = check_float_array("dout", dout, shape=cache["out_shape"])  # finite, float64 or float32
    grads = {}
    dh, g = read_out_backward(dout, cache["c_out"])  # out = read_out(h^L)
    grads["read_out.W"], grads["read_out.b"] = g["W"], g["b"]
    if cfg.norm == "pre":
        dh, g = layernorm_block_backward(dh, cache["c_lnf"])  # h^L ← LN_f(h^L)
        grads["ln_f.g"], grads["ln_f.b"] = g["g"], g["b"]
    for l in reversed(range(cfg.n_layers)):
        dh, g = layer_backward(dh, cache["c_layers"][l])  # hˡ = layer(hˡ⁻¹)
        grads.update({f"layer{l}.{n}": v for n, v in g.items()})
    _, g = read_in_backward(dh, cache["c_in"])  # h⁰ = read_in(X) (+ P)
    grads["read_in.W"], grads["read_in.b"] = g["W"], g["b"]
    if "pos" in g:
        grads["pos"] = g["pos"]
    return grads


def loss_from_output(out, target, cfg: TransformerConfig):
    """``(L, dL/dout)`` for the configured loss, averaged over the n = out.size outputs:
    squared L = (1/(2n)) Σ (out − target)²; hinge L = (1/n) Σ max(0, 1 − target·out)
    (subgradient 0 at the kink)."""
    n = out.size
    if cfg.loss == "squared":
        losses, c = squared_forward(out, target)
        dout = squared_backward(np.full_like(out, 1.0 / n), c)
    else:
        losses, c = hinge_forward(out, target)
        dout = hinge_backward(np.full_like(out, 1.0 / n), c)
    return float(np.mean(losses)), dout


def loss_and_grads(params, batch, cfg: TransformerConfig, backend: str = "numpy", *, check: bool = True,
                   return_aux: bool = False):
    """The configured loss over a batch and its gradients (spec T-losses).

    ``cfg.loss``: ``"squared"`` L = (1/(2n)) Σ (out − target)² or ``"hinge"``
    L = (1/n) Σ max(0, 1 − target·out), n = out.size (B·T for ``readout="all"``, B for
    ``"last"``).

    Parameters
    ----------
    params : dict of numpy.ndarray
        Keyed as :func:`init_params` returns them, all float64 or all float32.
    batch : dict
        ``X`` (B, T, d_in) and ``target``, shaped like the output ((B, T) or (B,)); ±1 for the
        hinge loss.
    cfg : refimpl.transformer.config.TransformerConfig
        The architecture and the loss.
    backend : str
        One of :data:`BACKENDS`: ``"numpy"`` (this module and ``blocks.py``, the readable
        reference) or ``"numba"`` (``kernels.py``: the same math with fused kernels and reused
        buffers, equal to ``"numpy"`` up to rounding).
    check : bool
        Validate the inputs first and raise :class:`refimpl.core.errors.NonFiniteError` if the
        loss or a gradient is not finite (``False``: trusted callers in hot loops; the shapes are
        still checked to fit together, since the Numba kernels do not bounds-check).
    return_aux : bool
        Also return ``aux``.

    Returns
    -------
    loss : float
        The mean loss.
    grads : dict of numpy.ndarray
        Keyed and shaped like ``params``.
    aux : dict
        Only with ``return_aux``: ``out`` (the model output), ``attn`` (list over layers of
        (B, H, T, T)), ``scale`` and ``kink_margin`` (see :func:`loss_aux`).

    Raises
    ------
    TypeError, ValueError
        For a bad backend, parameter or batch entry, naming it.
    """
    check_choice("backend", backend, BACKENDS)
    _check_cfg(cfg)
    if check:
        params = check_params(params, cfg)
        X, target = check_batch(batch, cfg)
    else:
        X, target = batch["X"], batch["target"]
        require_fit(_sizes_fit(params, X, target, cfg), lambda: (check_params(params, cfg), check_batch(batch, cfg)))
    if backend == "numba":
        from refimpl.transformer.kernels import loss_and_grads_numba

        X = np.asarray(X)
        loss, grads, out, attn, preacts = loss_and_grads_numba(params, X, target, cfg, loss_from_output,
                                                              want_aux=return_aux)
        if check:
            _check_finite_result(loss, grads)
        if return_aux:
            target = np.asarray(target, dtype=out.dtype)
            return loss, grads, _aux(params, grads, out, target, cfg, attn, preacts)
        return loss, grads
    out, cache = forward(params, {"X": X}, cfg, check=False)
    target = np.asarray(target, dtype=out.dtype)
    loss, dout = loss_from_output(out, target, cfg)
    grads = backward(dout, cache, check=False)
    if check:
        _check_finite_result(loss, grads)
    if return_aux:
        return loss, grads, loss_aux(params, grads, out, target, cache)
    return loss, grads


def loss_aux(params, grads, out, target, cache) -> dict:
    """The ``aux`` of :func:`loss_and_grads`.

    ``scale``: the magnitude S of the terms summed into L, for the rounding floor ~ u·S/ε of a
    central difference: (1/n) Σ |out − t|·(|out| + |t|) (squared; the rounding of out − t, times
    the factor it enters with) or (1/n) Σ (1 + |out|) (hinge), plus Σ_k Σ |∂L/∂θ_k ⊙ θ_k|, the
    change of L when every parameter moves by one relative unit: each sum inside the network
    (a product with a weight, a bias added) is rounded relative to terms of that size.
    ``kink_margin``: the smallest hinge margin |1 − t·out| (hinge loss) and |ReLU input| (ReLU
    feed-forward) in the batch, the distance to the nearest non-differentiable point; ``inf`` when
    the loss is smooth (squared loss, GELU)."""
    cfg = cache["cfg"]
    preacts = [c["c2"]["c_f"]["c_act"][0] for c in cache["c_layers"]] if cfg.activation == "relu" else []
    return _aux(params, grads, out, target, cfg, cache["attn"], preacts)


def _aux(params, grads, out, target, cfg, attn, preacts) -> dict:
    """:func:`loss_aux` from its parts (``preacts``: the feed-forward pre-activations per layer)."""
    if cfg.loss == "squared":
        terms = np.abs(out - target) * (np.abs(out) + np.abs(target))
    else:
        terms = 1.0 + np.abs(out)
    scale = float(np.mean(terms)) + sum(float(np.sum(np.abs(grads[k] * params[k]))) for k in grads)
    margin = np.inf
    if cfg.loss == "hinge":
        margin = min(margin, float(np.min(np.abs(1.0 - target * out))))
    if cfg.activation == "relu":
        for h in preacts:  # (B, T, F) feed-forward pre-activations, r = max(h, 0)
            margin = min(margin, float(np.min(np.abs(h))))
    return {"out": out, "attn": attn, "scale": scale, "kink_margin": margin}


def predict(params, inputs, cfg: TransformerConfig, *, check: bool = True) -> np.ndarray:
    """The model output: :func:`forward` without the cache.

    Parameters
    ----------
    params : dict of numpy.ndarray
        As for :func:`forward`.
    inputs : dict
        ``X`` (B, T, d_in).
    cfg : refimpl.transformer.config.TransformerConfig
        The architecture.
    check : bool
        Validate the parameters and inputs first.

    Returns
    -------
    numpy.ndarray
        Shape (B, T) for ``readout="all"``, (B,) for ``"last"``.
    """
    return forward(params, inputs, cfg, check=check)[0]


MAX_ATTN_ELEMENTS = 2_000_000  # predict_chunked: B·H·T² attention entries per chunk at most


def predict_chunked(params: dict, X: np.ndarray, cfg, *, with_attn: bool = False):
    """``forward`` over chunks of the prompts X (B, T, d_in) (bounded memory; an extra, outside the
    contract). Returns out, and with ``with_attn`` the list over layers of (B, H, T, T) attention
    probabilities."""
    B, T = X.shape[0], X.shape[1]
    chunk = max(1, MAX_ATTN_ELEMENTS // (cfg.n_heads * T * T))
    outs, attns = [], []
    for s in range(0, B, chunk):
        o, cache = forward(params, {"X": X[s:s + chunk]}, cfg)
        outs.append(o)
        if with_attn:
            attns.append(cache["attn"])
    out = np.concatenate(outs, axis=0)
    if not with_attn:
        return out
    return out, [np.concatenate([a[i] for a in attns], axis=0) for i in range(cfg.n_layers)]
