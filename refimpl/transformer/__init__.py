"""Spec T: a reference multi-layer transformer (post-/pre-norm, ReLU/GELU, causal mask, learned
positions) with hand-written NumPy backward passes, Adam/SGD, and golden vectors.

The model contract of ``refimpl/models.py``: ``preset``/``PRESETS`` (``config``), ``init_params``,
``forward``, ``backward``, ``loss_and_grads``, ``predict``, ``PARAM_NAMES``, ``BACKENDS``
(``model``), ``make_data``/``sample_batch`` (``data``: the synthetic teacher task [C]), ``train``
(``train``: Adam, returns a ``Trajectory``), ``golden_arrays`` (``golden``). Extras:
``train.train_adam`` (Adam on any minibatch stream, by steps or wall-clock budget; what the papers'
deep-model experiments in ``refimpl.experiments`` use), ``model.predict_chunked``,
``model.param_shapes``. The optimisers live in ``refimpl.core.optim``. Nothing is computed at
import time.
"""

from refimpl.core.optim import SGD, Adam
from refimpl.transformer.config import PRESETS, TransformerConfig, preset
from refimpl.transformer.data import make_data, sample_batch
from refimpl.transformer.golden import golden_arrays
from refimpl.transformer.model import (
    BACKENDS,
    PARAM_NAMES,
    backward,
    forward,
    init_params,
    loss_and_grads,
    predict,
)
from refimpl.transformer.train import train, train_adam

__all__ = ["TransformerConfig", "PRESETS", "preset", "init_params", "make_data", "sample_batch", "forward",
           "backward", "loss_and_grads", "predict", "train", "train_adam", "golden_arrays", "PARAM_NAMES",
           "BACKENDS", "Adam", "SGD"]
