"""What every PyTorch example shares: a module whose tensors carry the paper's names, the
optimiser, and the training step.

    model = Li2024(params)                                   # params: dict of NumPy arrays
    opt = make_optimizer(model.parameters(), {"name": "sgd", "lr": 0.5})
    loss = train_step(model.compute_loss, opt, batch)        # batch: dict of tensors
    loss = train_step(torch.compile(model.compute_loss), opt, batch)   # the compiled variant
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class PaperModule(nn.Module):
    """An ``nn.Module`` holding the paper's tensors under the paper's names (``W_Q``, ``Q``, ...).

    ``params``: dict of NumPy arrays (copied; the tensors keep their dtype); the names in
    ``trainable`` become ``nn.Parameter``, the others buffers (fixed, no gradient)."""

    def __init__(self, params: dict, trainable):
        super().__init__()
        for name, value in params.items():
            tensor = torch.tensor(np.asarray(value))
            if name in trainable:
                self.register_parameter(name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)

    def paper_arrays(self, grads: bool = False) -> dict:
        """The parameters (``grads=False``: and the buffers) or their gradients as NumPy arrays."""
        out = {k: (p.grad if grads else p).detach().numpy().copy() for k, p in self.named_parameters()}
        if not grads:
            out.update({k: b.detach().numpy().copy() for k, b in self.named_buffers()})
        return out


def make_optimizer(parameters, spec: dict):
    """``torch.optim.SGD`` or ``torch.optim.Adam`` from ``spec`` = {"name": "sgd", "lr"} or
    {"name": "adam", "lr", "betas", "eps"}; ``fused=True``: one kernel per parameter group
    (CPU fused SGD and Adam exist since torch 2.4)."""
    if spec["name"] == "sgd":
        return torch.optim.SGD(parameters, lr=spec["lr"], fused=True)
    if spec["name"] == "adam":
        return torch.optim.Adam(parameters, lr=spec["lr"], betas=tuple(spec["betas"]), eps=spec["eps"], fused=True)
    raise ValueError(f"optimizer name must be 'sgd' or 'adam', got {spec['name']!r}")


def train_step(compute_loss, optimizer, batch) -> torch.Tensor:
    """One step: forward, ``loss.backward()``, ``optimizer.step()``; returns the loss before it."""
    optimizer.zero_grad(set_to_none=True)
    loss, _ = compute_loss(batch)
    loss.backward()
    optimizer.step()
    return loss
