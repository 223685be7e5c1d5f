"""Spec T: a reference multi-layer transformer (post-/pre-norm, ReLU/GELU, causal mask, learned
positions) with hand-written NumPy backward passes, Adam/SGD, and golden vectors.

Modules: ``config`` (TransformerConfig, presets), ``blocks`` (forward/backward pairs),
``model`` (init_params, forward, backward, loss_and_grads, predict), ``train`` (Adam training
loops; the optimisers live in ``refimpl.core.optim``),
``golden`` (the golden export). Nothing is computed at import time.
"""

from refimpl.core.optim import SGD, Adam
from refimpl.transformer.config import TransformerConfig, preset
from refimpl.transformer.model import (
           backward,
           forward,
           init_params,
           loss_and_grads,
           predict,
)

__all__ = ["TransformerConfig", "preset", "init_params", "forward", "backward", "loss_and_grads",
           "predict", "Adam", "SGD"]
