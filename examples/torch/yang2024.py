"""Yang et al. 2024 (spec Y5, Y7) in PyTorch: H heads of softmax attention over the N prompt
tokens, each read out through a weight vector, the sample squared loss; autograd.

    Â = Σ_h softmax_over_i(v_iᵀ Q_h v_k) diag(w_h)   (N, K)
    ŷ = Âᵀ y,  loss = (1/2K) mean_b Σ_k (ŷ_k − y_k)²

Parameters ``Q`` (H, d, d) and ``w`` (H, K); batch ``V_all`` (d, K) (the dictionary, the
prompt's N tokens first), ``y`` (B, N) and ``y_all`` (B, K).
"""

from __future__ import annotations

import torch

from .common import PaperModule


class Yang2024(PaperModule):
    def __init__(self, params, *, loss="sample"):
        if loss != "sample":
            raise ValueError(f"this example implements loss='sample' only, got loss={loss!r}")
        super().__init__({k: params[k] for k in ("Q", "w")}, ("Q", "w"))

    def forward(self, V_all, N):
        """Â (N, K) and the attention S (H, N, K)."""
        V = V_all[:, :N]  # (d, N) the prompt tokens (keys)
        S = torch.softmax(V.T @ self.Q @ V_all, dim=1)  # (H, N, K)  softmax over the N tokens
        return (S * self.w[:, None, :]).sum(0), S  # Σ_h S_h diag(w_h)

    def compute_loss(self, batch):
        y, y_all = batch["y"], batch["y_all"]  # (B, N), (B, K)
        A_hat, S = self(batch["V_all"], y.shape[1])
        y_hat = y @ A_hat  # (B, K)
        loss = ((y_hat - y_all) ** 2).sum() / (2 * y_all.shape[1] * y.shape[0])
        return loss, {"A_hat": A_hat, "S": S}


Model = Yang2024
