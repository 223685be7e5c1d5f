"""Yang, Huang, Liang, Chi 2024 (spec Y): multi-head softmax attention learning templates in context.

Public API::

    from refimpl import yang2024 as Y
    cfg = Y.preset("small")
    V_all, Z_all = Y.make_dictionary(cfg.K, cfg.d, cfg.m, seed=0)             # spec Y2
    params = Y.init_params(cfg.H, cfg.d, cfg.K, seed=1)                         # spec Y6
    batch = {"V_all": V_all, "Z_all": Z_all, "N": cfg.N, "tau": cfg.tau}
    loss, grads = Y.loss_and_grads(params, batch, backend="numba")             # spec Y7, Y8
    traj = Y.run_gd(params, batch, eta_Q=1.0, gamma=1.0, steps=8000)           # spec Y9, Y11
    from refimpl.yang2024 import checks                                         # spec Y10–Y14
"""

from refimpl.yang2024.config import Config, preset
from refimpl.yang2024.data import (
    embedding,
    make_dictionary,
    sample_prompts,
    sample_tasks,
)
from refimpl.yang2024.model import (
    PARAM_NAMES,
    backward,
    forward,
    full_layer_predict,
    init_params,
    loss_and_grads,
    predict,
)
from refimpl.yang2024.population import (
    Population,
    population,
    ridge_lambda,
    ridge_predict,
)
from refimpl.yang2024.train import Trajectory, run_adam, run_gd

__all__ = [
    "Config", "preset",
    "embedding", "make_dictionary", "sample_prompts", "sample_tasks",
    "PARAM_NAMES", "backward", "forward", "full_layer_predict", "init_params", "loss_and_grads", "predict",
    "Population", "population", "ridge_lambda", "ridge_predict",
    "Trajectory", "run_adam", "run_gd",
]
