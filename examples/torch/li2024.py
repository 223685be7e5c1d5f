"""Li et al. 2024 (spec L7, L10) in PyTorch: one softmax-attention layer, a two-layer ReLU MLP,
the hinge loss; autograd for the gradients.

    F(Ψ; P) = aᵀ Relu(W_O Σ_{i≤l} W_V p_i attn_i),  attn = softmax_i((W_K p_i)ᵀ W_Q p_q)
    loss = mean_b max{0, 1 − z_b F_b}

Two forms of the same function (``FORMS``):

- :class:`Li2024` ("naive"): the formula in the order a user writes it: query, keys and values
  of every token, scores, softmax, weighted sum of the values.
- :class:`Li2024Matched` ("matched"): refimpl's contraction order, s = Cᵀ(W_Kᵀ u) and
  v = W_V(C σ), which never forms the per-token keys and values (fewer FLOPs when l·m_b > d).

Options: ``attend_to_query`` (the query column joins the softmax normalisation; the values stay
the l context columns), ``train_a`` (a is a parameter, otherwise a buffer), ``relu_at_zero``
(the derivative of Relu at 0: 0 as ``torch.relu``, or 1).
"""

from __future__ import annotations

import torch

from .common import PaperModule


class Li2024(PaperModule):
    """The model with its parameters ``W_Q`` (m_b, d), ``W_K`` (m_b, d), ``W_V`` (m_a, d),
    ``W_O`` (m, m_a), ``a`` (m,)."""

    def __init__(self, params, *, attend_to_query=False, train_a=False, relu_at_zero=0.0):
        trainable = ("W_Q", "W_K", "W_V", "W_O") + (("a",) if train_a else ())
        super().__init__({k: params[k] for k in ("W_Q", "W_K", "W_V", "W_O", "a")}, trainable)
        self.attend_to_query, self.relu_at_zero = attend_to_query, relu_at_zero

    def relu(self, h):
        return torch.relu(h) if self.relu_at_zero == 0 else torch.where(h >= 0, h, torch.zeros_like(h))

    def forward(self, P):
        """F (B,) and the attention (B, J) of prompts P (B, d, l+1), query in the last column."""
        l = P.shape[2] - 1
        X = P.transpose(1, 2)  # (B, l+1, d) tokens as rows
        context, query = X[:, :l], X[:, l]  # (B, l, d), (B, d)
        keys_in = X if self.attend_to_query else context  # (B, J, d) what the softmax runs over
        q = query @ self.W_Q.T  # (B, m_b)      W_Q p_q
        k = keys_in @ self.W_K.T  # (B, J, m_b) W_K p_i
        v = context @ self.W_V.T  # (B, l, m_a) W_V p_i
        attn = torch.softmax(torch.einsum("bjm,bm->bj", k, q), dim=-1)  # (B, J)
        out = torch.einsum("bi,bim->bm", attn[:, :l], v)  # (B, m_a)  Σ_i attn_i W_V p_i
        F = self.relu(out @ self.W_O.T) @ self.a  # (B,)
        return F, attn

    def compute_loss(self, batch):
        F, attn = self(batch["P"])
        loss = torch.relu(1 - batch["z"] * F).mean()  # hinge; torch.relu has derivative 0 at the kink
        return loss, {"F": F, "attn": attn}


class Li2024Matched(Li2024):
    """The same model in refimpl's contraction order (the algebra-matched competitor)."""

    def forward(self, P):
        l = P.shape[2] - 1
        C, p_q = P[:, :, :l], P[:, :, l]  # (B, d, l), (B, d)
        keys = P if self.attend_to_query else C  # (B, d, J)
        u = p_q @ self.W_Q.T  # (B, m_b)  u = W_Q p_q
        s = torch.einsum("bdj,bd->bj", keys, u @ self.W_K)  # (B, J)  s = Cᵀ (W_Kᵀ u)
        attn = torch.softmax(s, dim=-1)
        cbar = torch.einsum("bdi,bi->bd", C, attn[:, :l])  # (B, d)  c̄ = C σ
        F = self.relu((cbar @ self.W_V.T) @ self.W_O.T) @ self.a  # v = W_V c̄, F = aᵀ Relu(W_O v)
        return F, attn


Model = Li2024
FORMS = {"naive": Li2024, "matched": Li2024Matched}
