"""Golden vectors for spec L (§7): one batch, its outputs, gradients and a 10-step GD trajectory.

Keys: ``param/W_Q, W_K, W_V, W_O, a`` · ``input/P`` (B, d, l+1), ``input/z`` (B,) ·
``output/F`` (B,), ``output/attn`` (B, l), ``output/loss`` () mean hinge ·
``grad/W_Q, W_K, W_V, W_O`` · ``trajectory/lr`` (), ``trajectory/loss`` (10,): full-batch GD on the
stored batch from the stored parameters, the loss before each step.

[C] The stored parameters are the L8 initialisation with independent N(0, 0.05²) perturbations of
W_Q, W_K and W_V. At the bare initialisation W_Q = W_K and W_V = I, so an implementation that
swapped W_Q and W_K or transposed W_V would still match; the perturbation makes every block of
every gradient generic. The configuration is the ``golden`` preset (the default model and data
with B = 16 prompts from T_tr) unless ``config`` names another one.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.golden import check_dtype
from refimpl.core.rng import make_rng, spawn
from refimpl.li2024.config import Config, preset
from refimpl.li2024.data import make_instance, sample_batch
from refimpl.li2024.model import forward, init_params, loss_and_grads

PERTURBATION = 0.05
TRAJECTORY_STEPS = 10
KINK_MARGIN = 1e-6  # resample if a ReLU input or a hinge margin is this close to its kink


def golden_arrays(seed: int, dtype: str = "float64", *, config: Config | None = None) -> tuple[dict, dict]:
    """The arrays of the golden file of ``seed`` (spec L §7; keys in the module docstring).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Drives the instance, the initialisation, its perturbation and the batch.
    dtype : {"float64", "float32"}
        The dtype of every float array; the computation runs in it.
    config : refimpl.li2024.config.Config, optional
        Default: the ``golden`` preset (the default model and data, B = 16 prompts from T_tr);
        otherwise this configuration's batch size and options are used.

    Returns
    -------
    config_dict : dict
        ``preset`` (the preset's name or None), the configuration's fields and ``perturbation``.
    arrays : dict of numpy.ndarray
        ``param/W_Q``, ``param/W_K`` (m_b, d), ``param/W_V`` (m_a, d), ``param/W_O`` (m, m_a),
        ``param/a`` (m,); ``input/P`` (B, d, l+1), ``input/z`` (B,); ``output/F`` (B,),
        ``output/attn`` (B, J), ``output/loss`` (); ``grad/W_Q`` … ``grad/W_O`` shaped like their
        parameters; ``trajectory/lr`` (), ``trajectory/loss`` (10,), the loss before each of 10
        full-batch GD steps on the stored batch.
    """
    check_dtype(dtype)
    if config is None:
        name, cfg = "golden", preset("golden")
    elif isinstance(config, Config):
        name, cfg = None, config
    else:
        raise TypeError(f"config must be None or a refimpl.li2024 Config, got {type(config).__name__}")
    rng = make_rng(seed)
    inst_rng, init_rng, pert_rng, data_rng = spawn(rng, 4)
    inst = make_instance(cfg.data, inst_rng)
    params = init_params(cfg, init_rng)
    for k in ("W_Q", "W_K", "W_V"):
        params[k] = params[k] + PERTURBATION * pert_rng.standard_normal(params[k].shape)
    params = {k: v.astype(dtype) for k, v in params.items()}
    for _ in range(100):
        batch = sample_batch(inst, cfg.train.batch_size, data_rng, tasks="train")
        P, z = batch["P"].astype(dtype), batch["z"].astype(dtype)
        F, cache = forward(params, {"P": P}, cfg)
        if np.min(np.abs(cache["h"])) > KINK_MARGIN and np.min(np.abs(1 - z * F)) > KINK_MARGIN:
            break
    else:  # pragma: no cover - practically unreachable
        raise RuntimeError("could not draw a golden batch away from the ReLU/hinge kinks")
    b = {"P": P, "z": z}
    loss, grads = loss_and_grads(params, b, cfg)

    lr = cfg.train.lr
    traj = np.zeros(TRAJECTORY_STEPS, dtype=dtype)
    p = {k: v.copy() for k, v in params.items()}
    for t in range(TRAJECTORY_STEPS):  # full-batch GD on the stored batch, loss before each step
        traj[t], g = loss_and_grads(p, b, cfg)
        for k, gk in g.items():
            p[k] = p[k] - lr * gk

    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({"input/P": P, "input/z": z})
    arrays.update({"output/F": F, "output/attn": cache["attn"], "output/loss": np.array(loss, dtype=dtype)})
    arrays.update({f"grad/{k}": v for k, v in grads.items()})
    arrays.update({"trajectory/lr": np.array(lr, dtype=dtype), "trajectory/loss": traj})
    config = {"preset": name, **cfg.to_dict(), "perturbation": PERTURBATION}
    return config, arrays
