"""Yang, Huang, Liang, Chi 2024 (spec Y): multi-head softmax attention learning templates in context.

The model contract (:mod:`refimpl.models`)::

    import numpy as np
    from refimpl import yang2024 as Y
    cfg = Y.preset("small")                                   # K=12, N=4, d=5, m=3, H=8, tau=0.1
    data = Y.make_data(cfg, seed=0)                           # spec Y2: {V_all, Z_all, N, tau}
    params = Y.init_params(cfg, seed=1)                       # spec Y6: Q ~ N(0, β²), w = 0
    loss, grads = Y.loss_and_grads(params, data, cfg, "numba")                    # Y7 closed form, Y8
    batch = Y.sample_batch(data, 256, np.random.default_rng(2))                   # spec Y1: prompts y
    y_hat = Y.predict(params, batch, cfg)                                          # spec Y5: ŷ = yÂ
    loss, grads = Y.loss_and_grads(params, batch, cfg.replace(loss="sample"))      # minibatch loss
    traj = Y.train(cfg.replace(steps=8000), seed=0)                                # spec Y9: GD, Y11
    traj.records["step"], traj.records["excess"], traj.extra["L_star"]

Extras: the attention pair θ → Â (``attention_forward``, ``attention_backward``), the closed-form
constants (``population``), the ridge predictors of Y12–Y13 (``ridge_predict``, ``ridge_lambda``),
the literal multi-head layer (``full_layer_predict``), GD and Adam from given parameters
(``run_gd``, ``run_adam``), explicit-size sampling (``make_dictionary``, ``sample_prompts``,
``sample_tasks``, ``embedding``) and the claim checks (``refimpl.yang2024.checks``, spec Y10–Y14).
"""

from refimpl.yang2024.config import PRESETS, Config, preset
from refimpl.yang2024.data import (
    embedding,
    make_data,
    make_dictionary,
    sample_batch,
    sample_prompts,
    sample_tasks,
)
from refimpl.yang2024.golden import golden_arrays
from refimpl.yang2024.model import (
    PARAM_NAMES,
    attention_backward,
    attention_forward,
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
from refimpl.yang2024.train import run_adam, run_gd, train

__all__ = [
    "Config", "PRESETS", "preset",
    "embedding", "make_data", "make_dictionary", "sample_batch", "sample_prompts", "sample_tasks",
    "golden_arrays",
    "PARAM_NAMES", "attention_backward", "attention_forward", "backward", "forward", "full_layer_predict",
    "init_params", "loss_and_grads", "predict",
    "Population", "population", "ridge_lambda", "ridge_predict",
    "run_adam", "run_gd", "train",
]
