"""Yang et al. 2024 (spec Y5, Y7) in PyTorch: H heads of softmax attention over the N prompt
tokens, each read out through a weight vector, the sample squared loss; autograd.

    Â = Σ_h softmax_over_i(v_iᵀ Q_h v_k) diag(w_h)   (N, K)
    ŷ = Âᵀ y,  loss = (1/2K) mean_b Σ_k (ŷ_k − y_k)²

Parameters ``Q`` (H, d, d) and ``w`` (H, K); batch ``V_all`` (d, K) (the dictionary, the
prompt's N tokens first), ``y`` (B, N) and ``y_all`` (B, K).

``loss="population"``: the closed form of spec Y7 (the expectation over tasks and noise) instead;
batch ``V_all``, ``Z_all`` (m, K) (the representations), ``N`` and ``tau``:

    Z̄² = ZᵀZ + mτ I_N,  A = [I_N, (Z̄²)⁻¹ Zᵀ Z̃_{>N}]  (N, K)  (a_k = e_k for k ≤ N)
    L = (1/2K) Σ_k ‖Z̄(â_k − a_k)‖² + L*,  L* = (1/2K) Σ_{k>N} (‖z_k‖² + mτ − (Zᵀz_k)ᵀ a_k)
"""

from __future__ import annotations

import torch

from .common import PaperModule

LOSSES = ("sample", "population")


class Yang2024(PaperModule):
    def __init__(self, params, *, loss="sample"):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got loss={loss!r}")
        super().__init__({k: params[k] for k in ("Q", "w")}, ("Q", "w"))
        self.population = loss == "population"

    def forward(self, V_all, N):
        """Â (N, K) and the attention S (H, N, K)."""
        V = V_all[:, :N]  # (d, N) the prompt tokens (keys)
        S = torch.softmax(V.T @ self.Q @ V_all, dim=1)  # (H, N, K)  softmax over the N tokens
        return (S * self.w[:, None, :]).sum(0), S  # Σ_h S_h diag(w_h)

    def compute_loss(self, batch):
        if self.population:
            return self.population_loss(batch)
        y, y_all = batch["y"], batch["y_all"]  # (B, N), (B, K)
        A_hat, S = self(batch["V_all"], y.shape[1])
        y_hat = y @ A_hat  # (B, K)
        loss = ((y_hat - y_all) ** 2).sum() / (2 * y_all.shape[1] * y.shape[0])
        return loss, {"A_hat": A_hat, "S": S}

    def population_loss(self, batch):
        """Spec Y7; the outputs add the optimal A (N, K) and L* (constants: no gradient)."""
        Z_all, tau, N = batch["Z_all"], batch["tau"], int(batch["N"])
        m, K = Z_all.shape
        A_hat, S = self(batch["V_all"], N)
        with torch.no_grad():
            Z = Z_all[:, :N]  # (m, N)
            Zbar2 = Z.T @ Z + m * tau * torch.eye(N, dtype=Z.dtype)  # (N, N)
            rhs = Z.T @ Z_all[:, N:]  # (N, K − N)  Zᵀ z_k for k > N
            A_rest = torch.linalg.solve(Zbar2, rhs)  # (N, K − N)
            A = torch.cat([torch.eye(N, dtype=Z.dtype), A_rest], dim=1)  # (N, K)
            c = (Z_all[:, N:] ** 2).sum(0) + m * tau - (rhs * A_rest).sum(0)  # (K − N,)  c'_k
            L_star = c.sum() / (2 * K)
        D = A_hat - A  # (N, K)
        excess = (D * (Zbar2 @ D)).sum() / (2 * K)  # (1/2K) Σ_k ‖Z̄ d_k‖²
        return excess + L_star, {"A_hat": A_hat, "S": S, "A": A, "L_star": L_star}


Model = Yang2024
