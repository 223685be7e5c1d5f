"""Li, Wang, Lu, Cui, Chen, ICML 2024 (spec L): one-layer transformer, softmax attention + ReLU MLP.

Public API::

    from refimpl import li2024
    cfg = li2024.preset("default")
    inst = li2024.make_instance(cfg.data, seed=0)
    params = li2024.init_params(cfg, seed=1)
    batch = li2024.sample_batch(inst, 64, rng)            # {"P": (B, d, l+1), "z": (B,), ...}
    loss, grads = li2024.loss_and_grads(params, batch, backend="numba")
    result = li2024.train(cfg, seed=0)
"""

from refimpl.li2024.config import Config, DataConfig, ModelConfig, TrainConfig, preset
from refimpl.li2024.data import Instance, make_instance, sample_batch
from refimpl.li2024.model import PARAM_NAMES, backward, forward, init_params, loss_and_grads, predict
from refimpl.li2024.train import TrainResult, evaluate, train

__all__ = [
    "Config", "DataConfig", "ModelConfig", "TrainConfig", "preset",
    "Instance", "make_instance", "sample_batch",
    "PARAM_NAMES", "init_params", "forward", "backward", "loss_and_grads", "predict",
    "train", "evaluate", "TrainResult",
]
