"""Huang, Cheng, Liang 2023 (spec H4, H5) in PyTorch: one softmax-attention head over the N
context tokens, the per-prompt squared loss; autograd.

    ŷ = Σ_i softmax_i(x_iᵀ Q x_q) y_i,  loss = mean_b ½ (ŷ_b − y_q,b)²

Parameter ``Q`` (d, d); batch ``X`` (B, N, d), ``xq`` (B, d), ``y`` (B, N), ``yq`` (B,).
``attend_to_query``: the query token joins the softmax (with label 0).
"""

from __future__ import annotations

import torch

from .common import PaperModule


class Huang2023(PaperModule):
    def __init__(self, params, *, loss="sample", attend_to_query=False):
        if loss != "sample":
            raise ValueError(f"this example implements loss='sample' only, got loss={loss!r}")
        super().__init__({"Q": params["Q"]}, ("Q",))
        self.attend_to_query = attend_to_query

    def forward(self, X, xq, y):
        N = X.shape[1]
        keys = torch.cat([X, xq[:, None, :]], dim=1) if self.attend_to_query else X  # (B, J, d)
        attn = torch.softmax(torch.einsum("bjd,bd->bj", keys, xq @ self.Q.T), dim=-1)  # (B, J)
        return (attn[:, :N] * y).sum(-1), attn  # ŷ (B,): the query token carries label 0

    def compute_loss(self, batch):
        y_hat, attn = self(batch["X"], batch["xq"], batch["y"])
        return (0.5 * (y_hat - batch["yq"]) ** 2).mean(), {"attn": attn, "y_hat": y_hat}


Model = Huang2023
