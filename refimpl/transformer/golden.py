"""Golden vectors for spec T (model name ``transformer``): one small transformer that exercises
every block (read-in with learned positions, causal multi-head attention, layer norm, GELU
feed-forward, pre-norm residuals with the final LN, per-position read-out), its squared loss, every
gradient, and 10 Adam steps.

Keys: ``param/<name>`` for every parameter (names as ``refimpl.transformer.model``, e.g.
``param/layer0.attn.W_Q``; weights are (n_out, n_in) as ``torch.nn.Linear``) · ``input/X``
(B, T, d_in), ``input/target`` (B, T) · ``output/out`` (B, T), ``output/loss`` () ·
``output/attn`` (L, B, H, T, T), the attention probabilities of every layer (query, key) ·
``grad/<name>`` (of ``output/loss``) · ``trajectory/loss`` (10,): Adam on the same batch, the loss
before each step; ``trajectory/lr``, ``trajectory/beta1``, ``trajectory/beta2``, ``trajectory/eps``,
``trajectory/weight_decay`` (torch.optim.Adam's update, see ``optim.py``).

[C] Configuration (``GOLDEN``): 2 layers, d_model 16, 2 heads, d_ff 32, d_in 5, pre-norm, GELU,
causal, learned positions with max_T 8 > T = 6 (rows 6, 7 of ``pos`` are unused and get zero
gradient), read-out at every position, squared loss, B = 3. Parameters: ``init_params`` with the
Xavier scheme and ``init_std`` 0.5 for ``pos``, then N(0, 0.2²) added to every bias and layer-norm
gain/bias so that none is at its trivial value (an implementation that drops a bias is caught).
Note ``grad/layer*.attn.b_K`` is zero up to rounding (softmax ignores a shift shared by a query's
scores); the default tolerances of ``refimpl.testing`` give it its section's scale. A float32 file
holds the float32 rounding of the float64 draws and everything computed from them in float32.

The golden suite (:data:`CONFIGS`, ``golden_arrays(seed, dtype, config=NAME)``): every option
value appears in at least two configurations, each time with other values of the other options.
The configurations other than ``default`` are smaller (d_model 8, 2 heads, d_ff 12, d_in 3).

========================  =====  =====  ======  =========  ========  =======
name                      norm   act.   causal  positions  read-out  loss
========================  =====  =====  ======  =========  ========  =======
``default``               pre    GELU   yes     learned    all       squared
``post_relu``             post   ReLU   no      none       all       squared
``last_hinge``            pre    GELU   no      learned    last      hinge
``post_relu_last_hinge``  post   ReLU   yes     none       last      hinge
``small_inputs``          pre    GELU   no      none       all       squared
``hinge_kink``            pre    GELU   yes     learned    all       hinge
========================  =====  =====  ======  =========  ========  =======

``small_inputs`` multiplies the inputs X and the read-in bias by 0.1, so the first layer norm
normalises tokens of variance ~3e-3 (down to 6e-4) and its ε = 1e-5 moves x̂ by ~1e-3 relative:
a model with ``nn.LayerNorm(eps=1e-6)`` fails this file by a factor of ~200 or more in float32
too (elsewhere the tokens' variances are 0.02–1 and the same model fails float32 files by a
factor of 1.4–3, or passes).

With ReLU or the hinge loss the batch is redrawn until every ReLU input and hinge margin is at
least 1e-4 from its kink (float32 rounding cannot move it across), except in ``hinge_kink``: there
the final layer norm's gain is 0 on coordinate 0 with bias 1 there, and the read-out reads only
that coordinate (weight 0.5, bias 0.5), so every output is exactly 1 in any precision and
summation order; targets +1 sit exactly on the kink (refimpl's subgradient there is 0, as
``torch.relu(1 - t * out)`` computes it; ``torch.clamp(1 - t * out, min=0)`` passes gradient 1 at
the boundary) and targets −1 have margin 2. Only the read-out and final layer norm have nonzero
gradients at that point; the Adam steps move off it. ``golden_arrays(seed, config=cfg)`` exports
the same arrays for any other :class:`TransformerConfig` (same draws; T = min(6, cfg.max_T);
targets of shape (B,) for read-out "last", their signs ±1 for the hinge loss).
"""

from __future__ import annotations

import numpy as np

from refimpl.core.golden import check_dtype
from refimpl.core.optim import Adam
from refimpl.core.rng import make_rng, spawn
from refimpl.transformer.config import TransformerConfig
from refimpl.transformer.model import forward, init_params, loss_and_grads

GOLDEN = TransformerConfig(
    n_layers=2, d_model=16, n_heads=2, d_ff=32, d_in=5, norm="pre", activation="gelu", causal=True,
    positions="learned", max_T=8, readout="all", loss="squared", init="xavier", init_std=0.5,
)
B, T_GOLDEN = 3, 6
BIAS_SCALE = 0.2
ADAM = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)
TRAJECTORY_STEPS = 10
KINK_MARGIN = 1e-4  # redraw X (and targets) if a ReLU input or a hinge margin is this close to its kink
_SMALL = dict(d_model=8, n_heads=2, d_ff=12, d_in=3)  # the suite's other configurations


def _small(**options) -> TransformerConfig:
    return GOLDEN.replace(**_SMALL, **options)


#: the golden suite: name -> how to build its configuration, and what it covers (module docstring)
CONFIGS: dict[str, dict] = {
    "default": dict(cfg=lambda: GOLDEN, covers="pre-norm, GELU, causal, learned positions, read-out all, squared"),
    "post_relu": dict(cfg=lambda: _small(norm="post", activation="relu", causal=False, positions="none"),
                      covers="post-norm, ReLU, not causal, no positions, read-out all, squared"),
    "last_hinge": dict(cfg=lambda: _small(causal=False, readout="last", loss="hinge"), B=16,
                       covers="pre-norm, GELU, not causal, learned positions, read-out last, hinge"),
    "post_relu_last_hinge": dict(cfg=lambda: _small(norm="post", activation="relu", positions="none", readout="last",
                                                    loss="hinge"), B=16,
                                 covers="post-norm, ReLU, causal, no positions, read-out last, hinge"),
    "small_inputs": dict(cfg=lambda: _small(causal=False, positions="none"), input_scale=0.1,
                         covers="pre-norm, GELU, not causal, no positions, read-out all, squared; inputs and "
                                "read-in bias x0.1: the first layer norm sees variance ~3e-3, so its eps matters"),
    "hinge_kink": dict(cfg=lambda: _small(loss="hinge"), kink=True,
                       covers="hinge with exact kinks (out = 1 where target = +1): subgradient 0 there"),
}


def suite_config(name: str) -> TransformerConfig:
    """The configuration of suite entry ``name`` (``ValueError`` for an unknown name)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown transformer golden configuration {name!r}; allowed: {list(CONFIGS)}")
    return CONFIGS[name]["cfg"]()


def _streams(seed):
    """Three independent generators of ``seed``: weights, bias offsets, data."""
    return spawn(make_rng(seed), 3)


def golden_params(seed: int, cfg: TransformerConfig = GOLDEN) -> dict:
    """The golden parameters of ``seed`` (float64): ``init_params(cfg)`` (Xavier for ``GOLDEN``),
    then biases and layer-norm parameters moved off 0 and 1 by N(0, BIAS_SCALE²)."""
    p_rng, b_rng, _ = _streams(seed)
    params = init_params(cfg, p_rng)
    for name, v in params.items():
        if v.ndim == 1:  # biases, layer-norm gains and biases, read_out.b
            params[name] = v + BIAS_SCALE * b_rng.standard_normal(v.shape)
    return params


def _put_on_the_kink(params: dict) -> None:
    """Make every output exactly 1 in any precision and summation order (pre-norm only): the final
    layer norm's gain is 0 on coordinate 0, so h_0 = ln_f.b_0 = 1 for every token; the read-out
    reads only that coordinate with weight 0.5 and bias 0.5, so out = 0.5 · 1 + 0.5 = 1 (every
    product and sum exact; the other terms are ±0)."""
    params["ln_f.g"][0], params["ln_f.b"][0] = 0.0, 1.0
    params["read_out.W"][:] = 0.0
    params["read_out.W"][0, 0], params["read_out.b"][0] = 0.5, 0.5


def golden_arrays(seed: int, dtype: str = "float64", *, config: TransformerConfig | str | None = None
                  ) -> tuple[dict, dict]:
    """The arrays of the golden file of ``seed`` (spec T-golden; keys in the module docstring).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Drives the parameters, their bias offsets and the data.
    dtype : {"float64", "float32"}
        The dtype of the float arrays; the computation runs in it.
    config : str or config object, optional
        A suite configuration by name (:data:`CONFIGS`, listed by ``refimpl golden suite --list``;
        None or ``"default"`` is the default file), or a configuration object.
        Default ``GOLDEN`` (2 layers, d_model 16, 2 heads, d_ff 32, d_in 5, pre-norm, GELU,
        causal, learned positions, squared loss); B = 3 and T = min(6, max_T).

    Returns
    -------
    config_dict : dict
        The configuration's fields, ``B``, ``T``, ``bias_scale``, ``adam`` and
        ``trajectory_steps``.
    arrays : dict of numpy.ndarray
        ``param/<name>`` for every parameter (shapes as :func:`refimpl.transformer.model.param_shapes`);
        ``input/X`` (B, T, d_in), ``input/target`` (B, T) or (B,); ``output/out`` (like the
        target), ``output/loss`` (), ``output/attn`` (L, B, H, T, T); ``grad/<name>`` like each
        parameter; ``trajectory/loss`` (10,), ``trajectory/lr``, ``trajectory/beta1``,
        ``trajectory/beta2``, ``trajectory/eps``, ``trajectory/weight_decay`` ().
    """
    check_dtype(dtype)
    name, kink, n_batch, scale = None, False, B, None
    if config is None or isinstance(config, str):
        name = "default" if config is None else config
        cfg = suite_config(name)
        kink, n_batch, scale = CONFIGS[name].get("kink", False), CONFIGS[name].get("B", B), CONFIGS[name].get("input_scale")
    elif isinstance(config, TransformerConfig):
        cfg = config
    else:
        raise TypeError(f"config must be a TransformerConfig, a configuration name or None, got {type(config).__name__}")
    T = min(T_GOLDEN, cfg.max_T)
    params = golden_params(seed, cfg)
    if kink:
        _put_on_the_kink(params)
    if scale is not None:
        params["read_in.b"] = scale * params["read_in.b"]
    x_rng = _streams(seed)[2]  # independent of the parameters' streams
    for _ in range(100):
        X = x_rng.standard_normal((n_batch, T, cfg.d_in))  # (B, T, d_in)
        if scale is not None:
            X = scale * X
        target = x_rng.standard_normal((n_batch, T) if cfg.readout == "all" else (n_batch,))  # like the output
        if cfg.loss == "hinge":
            target = np.where(target >= 0, 1.0, -1.0)  # labels ±1
        if kink:  # kinks (target +1) and active margins (target −1) both present
            if np.all(target == 1) or np.all(target == -1):
                continue
            break
        if cfg.loss == "squared" and cfg.activation == "gelu":  # smooth: nothing to check
            break
        margin = loss_and_grads(params, {"X": X, "target": target}, cfg, return_aux=True)[2]["kink_margin"]
        if margin > KINK_MARGIN:
            break
    else:  # pragma: no cover - practically unreachable
        raise RuntimeError("could not draw a golden batch away from the ReLU/hinge kinks")

    def c(x):  # the float64 draws rounded to dtype: the file's params and inputs, computed from in dtype
        return np.asarray(x, dtype=np.float64).astype(dtype)

    params = {k: c(v) for k, v in params.items()}
    batch = {"X": c(X), "target": c(target)}
    out, cache = forward(params, batch, cfg)
    loss, grads = loss_and_grads(params, batch, cfg)
    traj_params = {k: v.copy() for k, v in params.items()}
    opt = Adam(ADAM["lr"], betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["eps"], weight_decay=ADAM["weight_decay"])
    traj = []
    for _ in range(TRAJECTORY_STEPS):
        L, g = loss_and_grads(traj_params, batch, cfg)
        traj.append(L)
        opt.step(traj_params, g)

    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({"input/X": batch["X"], "input/target": batch["target"], "output/out": out,
                   "output/loss": c(loss), "output/attn": np.stack(cache["attn"])})
    arrays.update({f"grad/{k}": v for k, v in grads.items()})
    arrays["trajectory/loss"] = c(traj)
    arrays.update({f"trajectory/{k}": c(v) for k, v in ADAM.items()})
    config_dict = {**cfg.to_dict(), "B": n_batch, "T": T, "bias_scale": BIAS_SCALE, "adam": ADAM,
                   "trajectory_steps": TRAJECTORY_STEPS}
    if scale is not None:
        config_dict["input_scale"] = scale
    if kink:
        config_dict["on_the_kink"] = "ln_f.g[0] = 0, ln_f.b[0] = 1, read_out.W = 0.5 e_0, read_out.b = 0.5"
    return config_dict, arrays
