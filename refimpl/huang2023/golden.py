"""Golden vectors for spec H (§6): one batch of materialised prompts, a random Q, outputs,
gradients of both losses and a 10-step GD trajectory (``golden_arrays``).

Keys: ``param/Q`` (d, d) · ``input/X`` (B, N, d), ``input/xq`` (B, d), ``input/w`` (B, d),
``input/y`` (B, N), ``input/yq`` (B,) · ``output/attn`` (B, N), ``output/y_hat`` (B,),
``output/loss`` () mean ½(ŷ − y_q)², ``output/loss_Ew`` () mean ½‖u‖² · ``grad/Q`` (of
``output/loss``), ``grad/Q_Ew`` (of ``output/loss_Ew``) · ``trajectory/lr``, ``trajectory/loss``
(10,): GD on ``output/loss`` over the stored batch, the loss before each step.

Deviation from spec H §6: the spec names the E_w gradient ``grad_Ew/Q``, but the golden file
format (refimpl.core.golden.SECTIONS) allows only the sections param/input/output/grad/trajectory,
so it is stored as ``grad/Q_Ew``.

[C] Q = 0.5 · N(0, 1) entries (random, nonzero as the spec requires: at Q = 0 a transposed Q or
gradient would go unnoticed). The configuration is the ``golden`` preset (spec H10's sizes:
d = 5, K = 3, N = 6, p = (0.5, 0.25, 0.25)), features from the QR of a Gaussian, B = 8 prompts;
``config=`` exports the same arrays for another :class:`~refimpl.huang2023.config.Config` (its K,
d, N, p, η and ``attend_to_query``; both losses are always stored, the trajectory follows
``config.loss``). A float32 file holds the float32 rounding of the float64 draws and everything
computed from them in float32 (the float32 trajectory used to switch to float64 after its first
step: the model's default prompt weights 1/B were float64; CHANGELOG).

The golden suite (:data:`CONFIGS`, ``golden_arrays(seed, dtype, config=NAME)``); every file
stores both losses (``output/loss``, ``grad/Q``: sample; ``output/loss_Ew``, ``grad/Q_Ew``: E_w):

===================  ============================================================================
name                 what it exercises
===================  ============================================================================
``default``          the ``golden`` preset: imbalanced p = (0.5, 0.25, 0.25), softmax over the N
                     prompt columns, GD on the sample loss
``balanced``         balanced p = (1/3, 1/3, 1/3)
``attend_to_query``  the query column joins the softmax (J = N + 1; it carries label 0)
``Ew``               the trajectory is GD on the E_w-integrated loss ½‖u‖² (``cfg.loss = "Ew"``)
===================  ============================================================================
"""

from __future__ import annotations

import numpy as np

from refimpl.core.golden import check_dtype
from refimpl.core.rng import make_rng, spawn
from refimpl.huang2023.config import Config, preset
from refimpl.huang2023.data import make_features, sample_prompts
from refimpl.huang2023.model import loss_and_grads

BATCH = 8
Q_SCALE = 0.5
TRAJECTORY_STEPS = 10

#: the golden suite: name -> how to build its configuration, and what it covers
CONFIGS: dict[str, dict] = {
    "default": dict(cfg=None, covers="imbalanced p, attend_to_query=False, trajectory on the sample loss"),
    "balanced": dict(cfg=lambda: preset("golden", p_kind="balanced"), covers="balanced p"),
    "attend_to_query": dict(cfg=lambda: preset("golden", attend_to_query=True), covers="attend_to_query=True"),
    "Ew": dict(cfg=lambda: preset("golden", loss="Ew"), covers="trajectory on the E_w-integrated loss"),
}


def suite_config(name: str) -> Config:
    """The :class:`Config` of suite configuration ``name`` (``ValueError`` for an unknown name)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown huang2023 golden configuration {name!r}; allowed: {list(CONFIGS)}")
    make = CONFIGS[name]["cfg"]
    return preset("golden", loss="sample") if make is None else make()


def golden_arrays(seed: int, dtype: str = "float64", *, config: Config | str | None = None) -> tuple[dict, dict]:
    """The arrays of the golden file of ``seed`` (spec H §6; keys in the module docstring).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Drives the features, the B = 8 prompts and Q.
    dtype : {"float64", "float32"}
        The dtype of the float arrays; the computation runs in it.
    config : str or config object, optional
        A suite configuration by name (:data:`CONFIGS`, listed by ``refimpl golden suite --list``;
        None or ``"default"`` is the default file), or a configuration object.
        The default file uses the ``golden`` preset (d = 5, K = 3, N = 6, p = (0.5, 0.25, 0.25), η = 1).

    Returns
    -------
    config_dict : dict
        ``preset`` (``"golden"`` or ``"custom"``), the configuration's fields, ``B`` and ``Q_scale``.
    arrays : dict of numpy.ndarray
        ``param/Q`` (d, d); ``input/X`` (B, N, d), ``input/xq`` (B, d), ``input/w`` (B, d),
        ``input/y`` (B, N), ``input/yq`` (B,); ``output/attn`` (B, J), ``output/y_hat`` (B,),
        ``output/loss`` (), ``output/loss_Ew`` (); ``grad/Q``, ``grad/Q_Ew`` (d, d);
        ``trajectory/lr`` (), ``trajectory/loss`` (10,).
    """
    check_dtype(dtype)
    if config is None or isinstance(config, str):
        name = "default" if config is None else config
        cfg = suite_config(name)
    elif isinstance(config, Config):
        name, cfg = "custom", config
    else:
        raise TypeError(f"config must be None, a configuration name or a huang2023 Config, got {type(config).__name__}")
    traj_cfg = cfg
    cfg = cfg.replace(loss="sample")
    v_rng, d_rng, q_rng = spawn(make_rng(seed), 3)
    V = make_features(cfg.dim, cfg.K, v_rng)
    b = sample_prompts(V, cfg.p(), cfg.N, BATCH, d_rng)
    Q = (Q_SCALE * q_rng.standard_normal((cfg.dim, cfg.dim))).astype(dtype)
    batch = {k: b[k].astype(dtype) for k in ("X", "xq", "w", "y", "yq")}
    loss, grads, aux = loss_and_grads({"Q": Q}, batch, cfg, return_aux=True)
    loss_ew, grads_ew = loss_and_grads({"Q": Q}, batch, cfg.replace(loss="Ew"))

    lr = cfg.eta
    traj = np.zeros(TRAJECTORY_STEPS, dtype=dtype)
    q = Q.copy()
    for t in range(TRAJECTORY_STEPS):  # full-batch GD on the stored batch, loss before each step
        traj[t], g = loss_and_grads({"Q": q}, batch, traj_cfg)
        q = q - lr * g["Q"]

    arrays = {"param/Q": Q}
    arrays.update({f"input/{k}": v for k, v in batch.items()})
    arrays.update({
        "output/attn": aux["attn"].astype(dtype), "output/y_hat": aux["out"].astype(dtype),
        "output/loss": np.array(loss, dtype=dtype), "output/loss_Ew": np.array(loss_ew, dtype=dtype),
        "grad/Q": grads["Q"].astype(dtype), "grad/Q_Ew": grads_ew["Q"].astype(dtype),
        "trajectory/lr": np.array(lr, dtype=dtype), "trajectory/loss": traj,
    })
    config_dict = {"preset": "golden" if name == "default" else name, **traj_cfg.to_dict(), "B": BATCH,
                   "Q_scale": Q_SCALE}
    return config_dict, arrays
