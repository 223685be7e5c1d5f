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
scores); compare it with an absolute tolerance. Post-norm, ReLU, the hinge loss and the
last-position read-out are not in this file: tests/test_transformer_parity_torch.py covers them;
``golden_arrays(seed, config=cfg)`` exports the same arrays for any other configuration (same
draws; T = min(6, cfg.max_T); targets of shape (B,) for read-out "last", their signs ±1 for the
hinge loss).
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


def golden_arrays(seed: int, dtype: str = "float64", *, config: TransformerConfig | None = None) -> tuple[dict, dict]:
    """The arrays of the golden file of ``seed`` (spec T-golden; keys in the module docstring).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Drives the parameters, their bias offsets and the data.
    dtype : {"float64", "float32"}
        The dtype of the float arrays (computed in float64, then rounded).
    config : refimpl.transformer.config.TransformerConfig, optional
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
    cfg = GOLDEN if config is None else config
    if not isinstance(cfg, TransformerConfig):
        raise TypeError(f"config must be a TransformerConfig or None, got {type(cfg).__name__}")
    T = min(T_GOLDEN, cfg.max_T)
    params = golden_params(seed, cfg)
    x_rng = _streams(seed)[2]  # independent of the parameters' streams
    X = x_rng.standard_normal((B, T, cfg.d_in))  # (B, T, d_in)
    target = x_rng.standard_normal((B, T) if cfg.readout == "all" else (B,))  # like the output
    if cfg.loss == "hinge":
        target = np.where(target >= 0, 1.0, -1.0)  # labels ±1
    batch = {"X": X, "target": target}
    # everything is computed in float64, then cast (the float32 file stores rounded references)
    out, cache = forward(params, batch, cfg)
    loss, grads = loss_and_grads(params, batch, cfg)
    traj_params = {k: v.copy() for k, v in params.items()}
    opt = Adam(ADAM["lr"], betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["eps"], weight_decay=ADAM["weight_decay"])
    traj = []
    for _ in range(TRAJECTORY_STEPS):
        L, g = loss_and_grads(traj_params, batch, cfg)
        traj.append(L)
        opt.step(traj_params, g)

    def c(x):
        return np.asarray(x, dtype=np.float64).astype(dtype)
    arrays = {f"param/{k}": c(v) for k, v in params.items()}
    arrays.update({"input/X": c(X), "input/target": c(target), "output/out": c(out), "output/loss": c(loss),
                   "output/attn": c(np.stack(cache["attn"]))})
    arrays.update({f"grad/{k}": c(v) for k, v in grads.items()})
    arrays["trajectory/loss"] = c(traj)
    arrays.update({f"trajectory/{k}": c(v) for k, v in ADAM.items()})
    config = {**cfg.to_dict(), "B": B, "T": T, "bias_scale": BIAS_SCALE, "adam": ADAM,
              "trajectory_steps": TRAJECTORY_STEPS}
    return config, arrays
