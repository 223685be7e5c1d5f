"""Huang, Cheng, Liang 2023 (spec H): in-context convergence of one-layer softmax attention.

Public API::

    from refimpl import huang2023 as H
    cfg = H.preset("golden_h10")
    V = H.make_features(cfg.dim, cfg.K, seed=0)
    batch = H.sample_prompts(V, cfg.p(), cfg.N, 64, seed=1)   # {X, xq, w, y, yq, ...}
    loss, grads = H.loss_and_grads({"Q": Q}, batch, backend="numba")
    traj = H.population.run_gd(H.population.exact(cfg.p(), cfg.N), cfg.eta, cfg.steps)  # spec H7–H8
    events = H.dynamics.detect_events(traj, k=1)                                      # spec H12
"""

from refimpl.huang2023 import dynamics, population
from refimpl.huang2023.config import Config, feature_probabilities, preset
from refimpl.huang2023.data import embedding, make_features, prompts_from_counts, sample_prompts
from refimpl.huang2023.model import (
    PARAM_NAMES,
    forward,
    full_matrix_predict,
    init_params,
    loss_and_grads,
    predict,
)

__all__ = [
    "dynamics", "population",
    "Config", "feature_probabilities", "preset",
    "embedding", "make_features", "prompts_from_counts", "sample_prompts",
    "PARAM_NAMES", "forward", "full_matrix_predict", "init_params", "loss_and_grads", "predict",
]
