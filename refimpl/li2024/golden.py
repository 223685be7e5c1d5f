"""Golden vectors for spec L (§7): one batch, its outputs, gradients and a 10-step GD trajectory.

Keys: ``param/W_Q, W_K, W_V, W_O, a`` · ``input/P`` (B, d, l+1), ``input/z`` (B,) ·
``output/F`` (B,), ``output/attn`` (B, J), ``output/loss`` () mean hinge ·
``grad/W_Q, W_K, W_V, W_O`` · ``trajectory/lr`` (), ``trajectory/loss`` (10,): full-batch GD on the
stored batch from the stored parameters, the loss before each step. Configurations with
``train_a`` add ``grad/a`` (and GD moves a too); pruned ones add ``input/keep`` (m,), the 0/1 mask
of spec L9 (F = Σ_i keep_i a_i Relu(h_i); ∇a = keep ⊙ Σ_b g_b r_b).

[C] The stored parameters are the L8 initialisation with independent N(0, 0.05²) perturbations of
W_Q, W_K and W_V. At the bare initialisation W_Q = W_K and W_V = I, so an implementation that
swapped W_Q and W_K or transposed W_V would still match; the perturbation makes every block of
every gradient generic. The batch is drawn with every ReLU input and hinge margin at least 1e-6
from its kink (implementations may choose any subgradient there), except where a configuration
puts exact kinks on purpose.

The golden suite (:data:`CONFIGS`, ``golden_arrays(seed, dtype, config=NAME)``): ``default`` is
the ``golden`` preset (the default model and data, B = 16 prompts from T_tr); the others use the
small sizes of the ``tiny`` preset (d = 16, m = 16, l = 8, B = 8) and change one option each:

===================  =======================================================================
name                 what it exercises
===================  =======================================================================
``default``          softmax over the l context columns, a fixed, no pruning, Relu'(0) = 0
``attend_to_query``  the query column joins the softmax normalisation (J = l + 1 columns)
``train_a``          a is trained: ``grad/a``, and the trajectory moves a
``pruned``           a pruning mask ``input/keep`` (every third row of W_O pruned), a trained:
                     the mask enters F, every gradient, and ∇a (pruned entries 0)
``relu_kink_0``      exact ReLU kinks: rows 1, 6, 11 of W_O are zero, so h = 0 there for every
                     prompt; Relu'(0) = 0 (``relu_at_zero`` 0, torch.relu's convention): those
                     rows get no gradient
``relu_kink_1``      the same kinks with Relu'(0) = 1 (``relu_at_zero`` 1): they do
===================  =======================================================================

``config`` may also be a :class:`refimpl.li2024.config.Config` (its batch size and options are
used; no mask, no kinks).
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
KINK_ROWS = (1, 6, 11)  # rows of W_O zeroed by the relu_kink configurations (m = 16)

_SMALL = dict(data=dict(d_x=12, d_y=4, M1=6, M2=6, l_train=8, l_test=8), model=dict(m=16),
              train=dict(batch_size=8))


def _small(**model) -> Config:
    return preset("golden").replace(data=_SMALL["data"], model={**_SMALL["model"], **model}, train=_SMALL["train"])


#: the golden suite: name -> (Config, options the file exercises beyond the Config: keep, kinks)
CONFIGS: dict[str, dict] = {
    "default": dict(cfg=None, covers="attend_to_query=False, train_a=False, no mask (golden preset, d=40, m=100)"),
    "attend_to_query": dict(cfg=lambda: _small(attend_to_query=True), covers="attend_to_query=True"),
    "train_a": dict(cfg=lambda: _small(train_a=True), covers="train_a=True (grad/a)"),
    "pruned": dict(cfg=lambda: _small(train_a=True), keep=True, covers="keep mask (input/keep), train_a=True"),
    "relu_kink_0": dict(cfg=lambda: _small(), kinks=True, covers="exact ReLU kinks, relu_at_zero=0"),
    "relu_kink_1": dict(cfg=lambda: _small(relu_at_zero=1.0), kinks=True, covers="exact ReLU kinks, relu_at_zero=1"),
}


def suite_config(name: str) -> Config:
    """The :class:`Config` of suite configuration ``name`` (``ValueError`` for an unknown name)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown li2024 golden configuration {name!r}; allowed: {list(CONFIGS)}")
    make = CONFIGS[name]["cfg"]
    return preset("golden") if make is None else make()


def golden_arrays(seed: int, dtype: str = "float64", *, config: Config | str | None = None) -> tuple[dict, dict]:
    """The arrays of the golden file of ``seed`` (spec L §7; keys in the module docstring).

    Parameters
    ----------
    seed : int or numpy.random.Generator
        Drives the instance, the initialisation, its perturbation and the batch.
    dtype : {"float64", "float32"}
        The dtype of every float array; the computation runs in it.
    config : str or config object, optional
        A suite configuration by name (:data:`CONFIGS`, listed by ``refimpl golden suite --list``;
        None or ``"default"`` is the default file), or a configuration object.
        The default file uses the ``golden`` preset (the default model and data, B = 16 prompts from T_tr);
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
    keep_mask = kinks = False
    if config is None:
        name, cfg = "golden", preset("golden")
    elif isinstance(config, str):
        cfg = suite_config(config)
        name = "golden" if config == "default" else config
        keep_mask, kinks = CONFIGS[config].get("keep", False), CONFIGS[config].get("kinks", False)
    elif isinstance(config, Config):
        name, cfg = None, config
    else:
        raise TypeError(f"config must be None, a configuration name or a refimpl.li2024 Config, "
                        f"got {type(config).__name__}")
    rng = make_rng(seed)
    inst_rng, init_rng, pert_rng, data_rng = spawn(rng, 4)
    inst = make_instance(cfg.data, inst_rng)
    params = init_params(cfg, init_rng)
    for k in ("W_Q", "W_K", "W_V"):
        params[k] = params[k] + PERTURBATION * pert_rng.standard_normal(params[k].shape)
    params = {k: v.astype(dtype) for k, v in params.items()}
    m = params["W_O"].shape[0]
    live = np.ones(m, dtype=bool)  # rows whose ReLU input must stay away from 0
    if kinks:
        params["W_O"][list(KINK_ROWS)] = 0.0  # h_i = 0 exactly for every prompt, in any precision
        live[list(KINK_ROWS)] = False
    keep = None
    if keep_mask:
        keep = (np.arange(m) % 3 != 0).astype(dtype)  # (m,) spec L9: rows 0, 3, 6, ... pruned
        live &= keep != 0  # a pruned row's ReLU input is never used
    for _ in range(100):
        batch = sample_batch(inst, cfg.train.batch_size, data_rng, tasks="train")
        P, z = batch["P"].astype(dtype), batch["z"].astype(dtype)
        F, cache = forward(params, {"P": P}, cfg, keep=keep)
        if np.min(np.abs(cache["h"][:, live])) > KINK_MARGIN and np.min(np.abs(1 - z * F)) > KINK_MARGIN:
            break
    else:  # pragma: no cover - practically unreachable
        raise RuntimeError("could not draw a golden batch away from the ReLU/hinge kinks")
    b = {"P": P, "z": z}
    loss, grads = loss_and_grads(params, b, cfg, keep=keep)

    lr = cfg.train.lr
    traj = np.zeros(TRAJECTORY_STEPS, dtype=dtype)
    p = {k: v.copy() for k, v in params.items()}
    for t in range(TRAJECTORY_STEPS):  # full-batch GD on the stored batch, loss before each step
        traj[t], g = loss_and_grads(p, b, cfg, keep=keep)
        for k, gk in g.items():
            p[k] = p[k] - lr * gk

    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({"input/P": P, "input/z": z})
    if keep is not None:
        arrays["input/keep"] = keep
    arrays.update({"output/F": F, "output/attn": cache["attn"], "output/loss": np.array(loss, dtype=dtype)})
    arrays.update({f"grad/{k}": v for k, v in grads.items()})
    arrays.update({"trajectory/lr": np.array(lr, dtype=dtype), "trajectory/loss": traj})
    config_dict = {"preset": name, **cfg.to_dict(), "perturbation": PERTURBATION}
    if kinks:
        config_dict["zero_rows_of_W_O"] = list(KINK_ROWS)
    return config_dict, arrays
