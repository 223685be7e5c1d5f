"""Data adapters: the prompts of spec Y and spec L as token sequences for the spec-T transformer.

A spec-T model reads X (B, T, d_in), one row per token, and writes one number per token
(read-out "all") or one number for the last token (read-out "last").

Glossary (paper symbol → code name, shape):

==============  ===============  ==============  ==============================================
symbol          code             shape           meaning
==============  ===============  ==============  ==============================================
Ṽ = (v_1..v_K)  ``V_all``        (d, K)          spec Y2 dictionary, every prompt the same tokens
y_k             ``y_all``        (B, K)          spec Y1 labels of all K tokens
N               ``N``                            spec Y4 tokens 1..N carry their label
E = (E^P, E^Q)  ``X``            (B, K, d+1)     spec Y4 embedding, one token ṽ_k = [v_k; y_k or 0]
                                                 per row (the transpose of the paper's columns)
P               ``batch["P"]``   (B, d, l+1)     spec L5 prompt (columns: contexts, query last)
                ``X``            (B, l+1, d)     its transpose: one token per row, query last
z               ``z``            (B,)            spec L query label ±1 (the target)
==============  ===============  ==============  ==============================================

Spec Y [C, spec Y §8]: each column of E is one token through a linear read-in, no causal mask, a
read-out at every position; the target is the label of every token (y_all), the first N of which
the model can copy from its input. Spec L: the query is the last token (causal mask: it sees every
context; read-out at the last position), its label rows are zero, and the target is z.
"""

from __future__ import annotations

import numpy as np

from refimpl.core.arrays import check_array, is_int


def yang_tokens(V_all, y_all, N: int) -> tuple[np.ndarray, np.ndarray]:
    """Spec Y4 prompts as tokens: X (B, K, d+1) with X[b, k] = [v_k; y_k] for k < N and
    [v_k; 0] for the K − N query tokens; target (B, K) = y_all (predict every label).

    ``V_all`` (d, K) unit tokens, ``y_all`` (B, K) labels of all K tokens (spec Y1), ``N`` the
    number of labelled prompt tokens, 1 ≤ N ≤ K. The labels of tokens N+1..K never enter X."""
    V_all = check_array("V_all", V_all, ndim=2)
    d, K = V_all.shape
    y_all = check_array("y_all", y_all, ndim=2)
    if y_all.shape[1] != K:
        raise ValueError(f"y_all must have shape (B, K = {K}), got {y_all.shape}")
    if not (is_int(N) and 1 <= N <= K):
        raise ValueError(f"N must be an int with 1 ≤ N ≤ K = {K}, got {N!r}")
    B = y_all.shape[0]
    X = np.empty((B, K, d + 1), dtype=np.result_type(V_all, y_all))  # (B, K, d+1)
    X[:, :, :d] = V_all.T[None]  # spec Y4: token rows v_k (every prompt the same tokens)
    X[:, :N, d] = y_all[:, :N]  # spec Y4: E^P = [V; yᵀ]
    X[:, N:, d] = 0.0  # spec Y4: E^Q = [v_{N+1}..v_K; 0]
    return X, y_all.copy()


def li_tokens(batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """Spec L5 prompts as tokens: X (B, l+1, d) = Pᵀ (context tokens, then the query token last,
    whose label rows are 0) and the target z (B,) ±1.

    ``batch``: a dict with ``P`` (B, d, l+1) and ``z`` (B,), as made by
    :func:`refimpl.li2024.data.sample_batch`."""
    if not hasattr(batch, "keys") or "P" not in batch or "z" not in batch:
        raise ValueError("batch must be a dict with 'P' (B, d, l+1) and 'z' (B,)")
    P = check_array("batch['P']", batch["P"], ndim=3)
    z = check_array("batch['z']", batch["z"], shape=(P.shape[0],))
    if not np.all(np.abs(z) == 1):
        raise ValueError("batch['z'] must hold labels ±1")
    X = np.ascontiguousarray(P.transpose(0, 2, 1))  # (B, l+1, d): row i = column i of P (spec L5)
    return X, z.copy()


def li_token_roles(batch: dict) -> dict:
    """Per-token metadata for the attention measurements of spec L16 / E7.

    Returns boolean masks over the l+1 tokens (query last, always False in every mask):
    ``same`` (B, l+1) a context whose relevant pattern is the query's; ``other`` (B, l+1) a context
    whose pattern is neither of the task's two patterns; ``context`` (B, l+1) every context token.
    Under uniform attention over the l contexts, ``same`` has expected mass α'/2."""
    pattern = np.asarray(batch["pattern"])  # (B, l+1) relevant-pattern index, query last
    task = np.asarray(batch["task"])  # (B, 2)
    if pattern.ndim != 2 or task.shape != (pattern.shape[0], 2):
        raise ValueError(f"batch['pattern'] must be (B, l+1) and batch['task'] (B, 2), got {pattern.shape} and {task.shape}")
    l = pattern.shape[1] - 1
    context = np.zeros(pattern.shape, dtype=bool)
    context[:, :l] = True
    same = context & (pattern == pattern[:, l:])  # (B, l+1)
    other = context & (pattern != task[:, :1]) & (pattern != task[:, 1:])  # (B, l+1)
    return {"same": same, "other": other, "context": context}
