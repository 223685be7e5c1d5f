"""The reduced population loss of Huang, Cheng, Liang 2023 (spec H7, H8 (b)) in PyTorch:
gradient descent on the K × K matrix C over M Monte-Carlo count vectors; autograd.

    α_{k→m}(n) = n_m e^{C_{m,k}} / Σ_j n_j e^{C_{j,k}}        (query feature k, count vector n)
    L(C) = Σ_k p_k Σ_c weight_c ½ [(1 − α_{k→k})² + Σ_{m≠k} α_{k→m}²]

Parameter ``C`` (K, K); batch ``p`` (K,), ``counts`` (M, K), ``weights`` (M,).
``attend_to_query``: the query token adds e^{C_{k,k}} to the normalisation.
"""

from __future__ import annotations

import torch

from .common import PaperModule


class ReducedC(PaperModule):
    def __init__(self, params, *, attend_to_query=False):
        super().__init__({"C": params["C"]}, ("C",))
        self.attend_to_query = attend_to_query

    def alpha(self, counts):
        """α (K, M, K): [k, c, m] = α_{k→m} for query feature k and count vector c."""
        logits = self.C.T  # (K, K) [k, m] = C_{m,k}
        e = torch.exp(logits - logits.max(dim=1, keepdim=True).values.detach())  # stable e^{C_{m,k}}
        num = counts[None, :, :] * e[:, None, :]  # (K, M, K)  n_m e^{C_{m,k}}
        den = num.sum(dim=2, keepdim=True)  # (K, M, 1)
        if self.attend_to_query:
            den = den + torch.diagonal(e)[:, None, None]
        return num / den

    def compute_loss(self, batch):
        alpha = self.alpha(batch["counts"])
        eye = torch.eye(alpha.shape[0], dtype=alpha.dtype)
        Lk = (0.5 * ((alpha - eye[:, None, :]) ** 2).sum(2)) @ batch["weights"]  # (K,)
        return batch["p"] @ Lk, {"Lk": Lk}

    def outputs(self, batch):
        """The loss's outputs and E_n[α] (K, K), a report that training does not need."""
        _, out = self.compute_loss(batch)
        return {**out, "Ealpha": torch.einsum("kcm,c->km", self.alpha(batch["counts"]), batch["weights"])}


Model = ReducedC
