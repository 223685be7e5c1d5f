"""Model of spec Y (Yang, Huang, Liang, Chi 2024): H-head softmax attention on a fixed dictionary.

Glossary (paper symbol → code name, shape); K tokens, N prompt tokens, H heads, B prompts:

=============  ============  ============  ================================================
symbol         code          shape         meaning
=============  ============  ============  ================================================
Q_h            ``Q``         (H, d, d)     merged key-query of head h (spec Y5)
w_h            ``w``         (H, K)        output weights of head h, one per token (spec Y5)
Ṽ              ``V_all``     (d, K)        all tokens v_1..v_K (spec Y2)
V              ``V``         (d, N)        prompt tokens v_1..v_N
Vᵀ Q_h Ṽ       ``P``         (H, N, K)     attention scores (keys: prompt, queries: all)
S_h            ``S``         (H, N, K)     softmax over the N rows of each column (spec Y5)
Â              ``A_hat``     (N, K)        Σ_h S_h diag(w_h) (spec Y5)
y              ``y``         (B, N)        labels of the prompt tokens
ŷ              ``y_hat``     (B, K)        Âᵀ y: predictions for all K tokens (spec Y5)
=============  ============  ============  ================================================

Two losses: ``loss="population"`` is the closed form L(θ) of spec Y7 (batch: V_all, Z_all, N,
tau); ``loss="sample"`` is (1/2K)·mean_b Σ_k (ŷ_k − y_k)² over sampled prompts (batch: V_all,
y (B, N), y_all (B, K)), the Monte-Carlo version of the same loss (spec Y1, Y7).
"""

from __future__ import annotations

import numpy as np

from refimpl.core.arrays import check_array, check_choice
from refimpl.core.ops import softmax_backward, softmax_forward
from refimpl.core.rng import make_rng
from refimpl.yang2024.population import Population, excess_and_grad, population

PARAM_NAMES = ("Q", "w")
BACKENDS = ("numpy", "numba")
LOSSES = ("population", "sample")


def init_params(H: int, d: int, K: int, seed=0, *, beta: float = 1.0) -> dict:
    """Spec Y6: w⁰ = 0, Q_h⁰ entries i.i.d. N(0, β²)."""
    for name, v in (("H", H), ("d", d), ("K", K)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an int ≥ 1, got {v!r}")
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    rng = make_rng(seed)
    return {"Q": beta * rng.standard_normal((H, d, d)), "w": np.zeros((H, K))}


def check_params(params, d: int | None = None, K: int | None = None) -> dict:
    if not hasattr(params, "keys") or "Q" not in params or "w" not in params:
        raise ValueError("params must be a dict with keys 'Q' (H, d, d) and 'w' (H, K)")
    Q = check_array("params['Q']", params["Q"], shape=(None, d, d))
    if Q.shape[1] != Q.shape[2]:
        raise ValueError(f"params['Q'] must have shape (H, d, d), got {Q.shape}")
    w = check_array("params['w']", params["w"], shape=(Q.shape[0], K))
    return {"Q": Q, "w": w}


def _check_N(N, K):
    N = np.asarray(N)
    if N.shape != () or not np.issubdtype(N.dtype, np.integer) or not 1 <= int(N) <= K:
        raise ValueError(f"batch['N'] must be an int with 1 ≤ N ≤ K = {K}, got {N!r}")
    return int(N)


# --------------------------------------------------------------------------------------------
# forward / backward (NumPy reference path)
# --------------------------------------------------------------------------------------------
def forward(Q, w, V_all, N: int):
    """Â (N, K) of spec Y5 and a cache for :func:`backward`."""
    V = V_all[:, :N]  # (d, N)  prompt tokens
    P = (V.T @ Q) @ V_all  # (H, N, K)  spec Y5: Vᵀ Q_h Ṽ (N×d first: N d² + N d K flops per head)
    S, sm_cache = softmax_forward(P, axis=1)  # (H, N, K)  spec Y5: softmax over the N rows
    A_hat = np.einsum("hnk,hk->nk", S, w)  # (N, K)  spec Y5: Â = Σ_h S_h diag(w_h)
    return A_hat, dict(V=V, V_all=V_all, S=S, w=w, sm_cache=sm_cache)


def backward(dA_hat, cache) -> dict:
    """Gradients {Q (H, d, d), w (H, K)} of Σ dA_hat ⊙ Â (spec Y8)."""
    S, w, V, V_all = cache["S"], cache["w"], cache["V"], cache["V_all"]
    # Â = Σ_h S_h diag(w_h)  →  ∂/∂w_{h,k} = s_kᵀ dâ_k,  ∂/∂S_h = dÂ diag(w_h)             spec Y8
    dw = np.einsum("hnk,nk->hk", S, dA_hat)  # (H, K)
    dS = dA_hat[None, :, :] * w[:, None, :]  # (H, N, K)
    # S = softmax(P) over rows: dP = S ⊙ (dS − Σ_n S dS) = (diag(s) − s sᵀ) ds per column       spec Y8
    dP = softmax_backward(dS, cache["sm_cache"])  # (H, N, K)
    # P = Vᵀ Q_h Ṽ  →  ∇_{Q_h} = V dP_h Ṽᵀ                                                    spec Y8
    dQ = V @ (dP @ V_all.T)  # (H, d, d)
    return {"Q": dQ, "w": dw}


def predict(A_hat, y) -> np.ndarray:
    """ŷ = Âᵀ y (spec Y5): y (N,) → (K,), y (B, N) → (B, K)."""
    return np.asarray(y) @ A_hat


def sample_loss(A_hat, y, y_all):
    """(1/2K) mean_b Σ_k (ŷ_k − y_k)² and ∂/∂Â (N, K) (spec Y7 before the expectation)."""
    B, K = y_all.shape
    r = y @ A_hat - y_all  # (B, K)  ŷ − y
    return float(np.sum(r * r) / (2 * K * B)), y.T @ r / (K * B)  # (N, K)


def loss_and_grads(params, batch, backend: str = "numpy", *, loss: str = "population",
                   pop: Population | None = None, check: bool = True, return_aux: bool = False):
    """Loss and {∇Q, ∇w} (spec Y7, Y8).

    ``params``: {Q (H, d, d), w (H, K)}. ``batch`` (spec §7 input names): V_all (d, K), N ();
    for ``loss="population"`` also Z_all (m, K), tau () — or pass precomputed ``pop``; for
    ``loss="sample"`` y (B, N) and y_all (B, K). ``backend``: "numpy" or "numba".
    Returns ``(loss, grads)`` or ``(loss, grads, aux)`` with aux = {"A_hat", "S"[, "pop"]}.
    """
    check_choice("backend", backend, BACKENDS)
    check_choice("loss", loss, LOSSES)
    if not hasattr(batch, "keys"):
        raise TypeError(f"batch must be a dict, got {type(batch).__name__}")
    if check:
        if "V_all" not in batch or "N" not in batch:
            raise ValueError("batch must hold V_all (d, K) and N ()")
        V_all = check_array("batch['V_all']", batch["V_all"], ndim=2)
        d, K = V_all.shape
        N = _check_N(batch["N"], K)
        params = check_params(params, d, K)
    else:
        V_all, N = batch["V_all"], int(batch["N"])
        K = V_all.shape[1]
    Q, w = params["Q"], params["w"]
    if backend == "numba":
        from refimpl.yang2024.kernels import attention_backward, attention_forward

        A_hat, S = attention_forward(Q, w, V_all, N)
    else:
        A_hat, cache = forward(Q, w, V_all, N)
        S = cache["S"]
    aux = {"A_hat": A_hat, "S": S}
    if loss == "population":
        if pop is None:
            if "Z_all" not in batch or "tau" not in batch:
                raise ValueError("loss='population' needs batch['Z_all'] (m, K) and batch['tau'] (or pop=)")
            Z_all = check_array("batch['Z_all']", batch["Z_all"], shape=(None, K)) if check else batch["Z_all"]
            pop = population(Z_all, N, float(batch["tau"]))
        excess, dA = excess_and_grad(A_hat, pop)  # spec Y7, Y8: R = Z̄²(Â − A)/K
        val = excess + pop.L_star
        aux["pop"] = pop
        aux["excess"] = excess
    else:
        if "y" not in batch or "y_all" not in batch:
            raise ValueError("loss='sample' needs batch['y'] (B, N) and batch['y_all'] (B, K)")
        y_all = check_array("batch['y_all']", batch["y_all"], shape=(None, K)) if check else batch["y_all"]
        y = check_array("batch['y']", batch["y"], shape=(y_all.shape[0], N)) if check else batch["y"]
        val, dA = sample_loss(A_hat, y, y_all)
    if backend == "numba":
        dQ, dw = attention_backward(dA, S, w, V_all, N)
        grads = {"Q": dQ, "w": dw}
    else:
        grads = backward(dA, cache)
    if return_aux:
        return val, grads, aux
    return val, grads


# --------------------------------------------------------------------------------------------
# the full W^Q, W^K, W^V, W^O multi-head layer (spec Y5), for tests
# --------------------------------------------------------------------------------------------
def full_layer_predict(W_Q, W_K, W_V, W_O, E, N: int) -> np.ndarray:
    """ŷ (K,) of the literal multi-head layer on E (d+1, K) (spec Y4–Y5).

    Head h: keys W^K_h E^P, queries W^Q_h E (all K columns), values W^V_h E^P (1, N);
    o_h = W^V_h E^P softmax_rows((W^K_h E^P)ᵀ W^Q_h E) (1, K); ŷ = W^O (o_1, …, o_H) with
    W^O (K, HK) acting on the concatenated head outputs.
    """
    H = W_Q.shape[0]
    EP = E[:, :N]  # (d+1, N)
    outs = []
    for h in range(H):
        scores = (W_K[h] @ EP).T @ (W_Q[h] @ E)  # (N, K)
        S_h, _ = softmax_forward(scores, axis=0)  # (N, K)
        outs.append((W_V[h] @ EP @ S_h).ravel())  # (K,)
    return W_O @ np.concatenate(outs)  # (K,)
