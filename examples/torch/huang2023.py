"""Huang, Cheng, Liang 2023 (spec H4, H5) in PyTorch: one softmax-attention head over the N
context tokens, the per-prompt squared loss; autograd.

    ŷ = Σ_i softmax_i(x_iᵀ Q x_q) y_i,  loss = mean_b ½ (ŷ_b − y_q,b)²

Parameter ``Q`` (d, d); batch ``X`` (B, N, d), ``xq`` (B, d), ``y`` (B, N), ``yq`` (B,).
``attend_to_query``: the query token joins the softmax (with label 0). ``loss="Ew"``: the same
loss with the task vector w integrated in closed form (E wwᵀ = I, spec H6),
mean_b ½‖u_b‖², u = Σ_{i≤N} attn_i x_i − x_q (the batch needs no labels).
"""

from __future__ import annotations

import torch

from .common import PaperModule


class Huang2023(PaperModule):
    def __init__(self, params, *, loss="sample", attend_to_query=False):
        if loss not in ("sample", "Ew"):
            raise ValueError(f"loss must be 'sample' or 'Ew', got loss={loss!r}")
        super().__init__({"Q": params["Q"]}, ("Q",))
        self.attend_to_query, self.ew = attend_to_query, loss == "Ew"

    def attention(self, X, xq):
        """The attention (B, J) of the query over the N prompt tokens (and itself)."""
        keys = torch.cat([X, xq[:, None, :]], dim=1) if self.attend_to_query else X  # (B, J, d)
        return torch.softmax(torch.einsum("bjd,bd->bj", keys, xq @ self.Q.T), dim=-1)  # (B, J)

    def forward(self, X, xq, y):
        attn = self.attention(X, xq)
        return (attn[:, : X.shape[1]] * y).sum(-1), attn  # ŷ (B,): the query token carries label 0

    def compute_loss(self, batch):
        if self.ew:
            return self.ew_loss(batch)
        y_hat, attn = self(batch["X"], batch["xq"], batch["y"])
        return (0.5 * (y_hat - batch["yq"]) ** 2).mean(), {"attn": attn, "y_hat": y_hat}

    def ew_loss(self, batch):
        """mean_b ½‖u_b‖², u = Σ_{i≤N} attn_i x_i − x_q (spec H6: the loss with w integrated out)."""
        X, xq = batch["X"], batch["xq"]
        attn = self.attention(X, xq)
        u = torch.einsum("bi,bid->bd", attn[:, : X.shape[1]], X) - xq  # (B, d)
        return (0.5 * (u**2).sum(-1)).mean(), {"attn": attn, "u": u}


Model = Huang2023
