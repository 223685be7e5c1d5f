"""Huang, Cheng, Liang 2023 (spec H): in-context convergence of one-layer softmax attention.

The model contract (``refimpl/models.py``)::

    import numpy as np
    from refimpl import huang2023 as H
    cfg = H.preset("tiny")                                   # or "golden_h10", "balanced", ...
    params = H.init_params(cfg, seed=0)                      # {"Q": 0 (d, d)}  spec H4 [C]
    data = H.make_data(cfg, seed=0)                          # features V (d, K), p, N  spec H1
    batch = H.sample_batch(data, 64, np.random.default_rng(1))   # {X, xq, w, y, yq, idx, kq}
    y_hat, cache = H.forward(params, batch, cfg)             # spec H4
    loss, grads = H.loss_and_grads(params, batch, cfg, backend="numba")   # spec H5–H6
    traj = H.train(cfg, seed=0)                              # GD on the population loss, spec H7–H8

Extras: the population dynamics (``population.run_gd`` on C, spec H7–H8, ``run_gd_full_Q``),
the phase trackers (``dynamics.detect_events``, spec H12), the attention alone
(``attention_forward``), the literal full-matrix form (``full_matrix_predict``)::

    traj = H.population.run_gd(H.population.exact(cfg.p(), cfg.N), cfg.eta, cfg.steps)
    events = H.dynamics.detect_events(traj, k=1)
"""

from refimpl.huang2023 import dynamics, population
from refimpl.huang2023.config import LOSSES, POPULATIONS, PRESETS, Config, feature_probabilities, preset
from refimpl.huang2023.data import (
    Data,
    embedding,
    make_data,
    make_features,
    prompts_from_counts,
    sample_batch,
    sample_prompts,
)
from refimpl.huang2023.golden import golden_arrays
from refimpl.huang2023.model import (
    BACKENDS,
    PARAM_NAMES,
    attention_forward,
    backward,
    forward,
    full_matrix_predict,
    init_params,
    loss_and_grads,
    predict,
    readout_forward,
)
from refimpl.huang2023.train import train

__all__ = [
    "dynamics", "population",
    "LOSSES", "POPULATIONS", "PRESETS", "Config", "feature_probabilities", "preset",
    "Data", "embedding", "make_data", "make_features", "prompts_from_counts", "sample_batch", "sample_prompts",
    "golden_arrays",
    "BACKENDS", "PARAM_NAMES", "attention_forward", "backward", "forward", "full_matrix_predict", "init_params",
    "loss_and_grads", "predict", "readout_forward",
    "train",
]
