"""Li, Wang, Lu, Cui, Chen, ICML 2024 (spec L): one-layer transformer, softmax attention + ReLU MLP.

The model contract (``refimpl/models.py``)::

    from refimpl import li2024
    cfg = li2024.preset("default")                      # or preset("tiny", **{"data.alpha": 0.4})
    inst = li2024.make_data(cfg, seed=0)                # patterns, q, task sets (spec L1–L6)
    params = li2024.init_params(cfg, seed=1)            # {"W_Q", "W_K", "W_V", "W_O", "a"}
    batch = li2024.sample_batch(inst, 64, rng)          # {"P": (B, d, l+1), "z": (B,), ...}
    F, cache = li2024.forward(params, batch, cfg)       # cache["attn"]: the attention σ
    loss, grads = li2024.loss_and_grads(params, batch, cfg, backend="numba")
    traj = li2024.train(cfg, seed=0)                    # a refimpl.core.trajectory.Trajectory

Extras: ``make_instance`` (an instance from any generator), ``evaluate`` / ``metrics.measure``
(test-time error, hinge, attention), ``pruning`` (spec L9 masks), ``classical`` (the E3
baselines), ``checks`` (the claims of spec L13–L17).
"""

from refimpl.li2024.config import PRESETS, Config, DataConfig, ModelConfig, TrainConfig, preset
from refimpl.li2024.data import Instance, make_data, make_instance, prompt_rng, sample_batch
from refimpl.li2024.golden import golden_arrays
from refimpl.li2024.metrics import evaluate
from refimpl.li2024.model import PARAM_NAMES, backward, forward, init_params, loss_and_grads, predict
from refimpl.li2024.train import train

__all__ = [
    "Config", "DataConfig", "ModelConfig", "TrainConfig", "preset", "PRESETS",
    "Instance", "make_data", "make_instance", "prompt_rng", "sample_batch",
    "PARAM_NAMES", "init_params", "forward", "backward", "loss_and_grads", "predict",
    "train", "evaluate", "golden_arrays",
]
