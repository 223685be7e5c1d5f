"""PyTorch competitor: each model written as a PyTorch user would write it from the paper.

Tensors, the standard attention formulation (scores, ``torch.softmax``, weighted sum of values),
autograd ``.backward()`` and ``torch.optim.SGD`` / ``torch.optim.Adam`` — none of refimpl's
hand-derived gradients or fused-kernel algebra. Variants: ``"eager"``, and ``"compile"``
(``torch.compile`` of the loss function, forward and backward through AOTAutograd; the optimiser
step stays eager). Threads are left to the caller (``torch.set_num_threads``).

Each loss function returns ``(loss, outputs)``; the outputs are keyed like refimpl's (see
``problems.reference_loss_and_grads``) so the parity tests compare them too. Outputs that are not
intermediates of the loss (huang2023_C's E_n[α]) are computed only for ``outputs()``, not in the
timed step.

torch is imported lazily inside the functions: importing this module never imports torch.
"""

from __future__ import annotations

import numpy as np

from refimpl.benchmarks.problems import Problem

VARIANTS = ("eager", "compile")


def available() -> bool:
    """True when torch can be imported."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# the models (spec L7/L10, Y5/Y7, H4/H5, H7)
# --------------------------------------------------------------------------------------------
def li2024_loss(p, batch, *, attend_to_query=False, relu_at_zero=0.0, train_a=False):
    """Mean hinge loss of F(Ψ; P) = aᵀ Relu(W_O Σ_i W_V p_i attn_i) (spec L7, L10)."""
    import torch

    P, z = batch["P"], batch["z"]  # (B, d, l+1), (B,)
    l = P.shape[2] - 1
    X = P.transpose(1, 2)  # (B, l+1, d) tokens as rows, query last
    context, query = X[:, :l], X[:, l]  # (B, l, d), (B, d)
    keys_in = X if attend_to_query else context  # columns the softmax runs over
    q = query @ p["W_Q"].T  # (B, m_b)        query projection W_Q p_q
    k = keys_in @ p["W_K"].T  # (B, J, m_b)   key projections W_K p_i
    v = context @ p["W_V"].T  # (B, l, m_a)   value projections W_V p_i
    scores = torch.einsum("bjm,bm->bj", k, q)  # (B, J)   (W_K p_i)ᵀ W_Q p_q
    attn = torch.softmax(scores, dim=-1)  # (B, J)
    out = torch.einsum("bi,bim->bm", attn[:, :l], v)  # (B, m_a)  Σ_i attn_i W_V p_i
    h = out @ p["W_O"].T  # (B, m)
    r = torch.relu(h) if relu_at_zero == 0 else torch.where(h >= 0, h, torch.zeros_like(h))
    F = r @ p["a"]  # (B,)
    loss = torch.relu(1 - z * F).mean()  # hinge max{0, 1 − zF}, derivative 0 at the kink
    return loss, {"F": F, "attn": attn}


def yang2024_loss(p, batch, *, loss="sample"):
    """Sample loss (1/2K)·mean_b Σ_k (ŷ_k − y_k)², ŷ = Âᵀ y, Â = Σ_h softmax(Vᵀ Q_h Ṽ) diag(w_h)
    (spec Y5, Y7 before the expectation)."""
    import torch

    if loss != "sample":
        raise ValueError(f"the torch competitor implements loss='sample' only, got loss={loss!r}")
    V_all, N, y, y_all = batch["V_all"], batch["N"], batch["y"], batch["y_all"]  # (d, K), N, (B, N), (B, K)
    K = V_all.shape[1]
    V = V_all[:, :N]  # (d, N)  prompt tokens (keys)
    scores = V.T @ p["Q"] @ V_all  # (H, N, K)  v_iᵀ Q_h v_k
    S = torch.softmax(scores, dim=1)  # (H, N, K)  over the N prompt tokens
    A_hat = (S * p["w"][:, None, :]).sum(0)  # (N, K)  Σ_h S_h diag(w_h)
    y_hat = y @ A_hat  # (B, K)
    val = ((y_hat - y_all) ** 2).sum() / (2 * K * y.shape[0])
    return val, {"A_hat": A_hat, "S": S}


def huang2023_loss(p, batch, *, loss="sample", attend_to_query=False):
    """Mean of ½(ŷ − y_q)², ŷ = Σ_i softmax_i(x_iᵀ Q x_q) y_i (spec H4, H5)."""
    import torch

    if loss != "sample":
        raise ValueError(f"the torch competitor implements loss='sample' only, got loss={loss!r}")
    X, xq, y, yq = batch["X"], batch["xq"], batch["y"], batch["yq"]  # (B, N, d), (B, d), (B, N), (B,)
    N = X.shape[1]
    keys = torch.cat([X, xq[:, None, :]], dim=1) if attend_to_query else X  # (B, J, d)
    scores = torch.einsum("bjd,bd->bj", keys, xq @ p["Q"].T)  # (B, J)  x_jᵀ Q x_q
    attn = torch.softmax(scores, dim=-1)  # (B, J)
    y_hat = (attn[:, :N] * y).sum(-1)  # (B,)  the query column carries label 0
    val = (0.5 * (y_hat - yq) ** 2).mean()
    return val, {"attn": attn, "y_hat": y_hat}


def huang2023_C_loss(p, batch, *, attend_to_query=False, need_outputs=True):
    """Population loss L(C) = Σ_k p_k E_n ½[(1 − α_{k→k})² + Σ_{m≠k} α_{k→m}²] over the count
    vectors, α_{k→m} = n_m e^{C_{m,k}} / Σ_j n_j e^{C_{j,k}} (spec H7, H8 (b))."""
    import torch

    C, prob, counts, weights = p["C"], batch["p"], batch["counts"], batch["weights"]  # (K,K),(K,),(M,K),(M,)
    K = C.shape[0]
    logits = C.T  # (K, K) [k, m] = C_{m,k}: the logits of query feature k
    e = torch.exp(logits - logits.max(dim=1, keepdim=True).values.detach())  # (K, K) stable e^{C_{m,k}}
    num = counts[None, :, :] * e[:, None, :]  # (K, M, K)  n_m e^{C_{m,k}}
    den = num.sum(dim=2, keepdim=True)  # (K, M, 1)
    if attend_to_query:  # the query column adds e^{C_{k,k}} to the normalisation
        den = den + torch.diagonal(e)[:, None, None]
    alpha = num / den  # (K, M, K) attention masses α_{k→m}
    eye = torch.eye(K, dtype=C.dtype)
    ell = 0.5 * ((alpha - eye[:, None, :]) ** 2).sum(2)  # (K, M)  E_w ℓ per prompt
    Lk = ell @ weights  # (K,)
    val = prob @ Lk
    if not need_outputs:  # E_n[α] is a report, not part of the training step
        return val, {"Lk": Lk}
    return val, {"Lk": Lk, "Ealpha": torch.einsum("kcm,c->km", alpha, weights)}


LOSSES = {"li2024": li2024_loss, "yang2024": yang2024_loss, "huang2023": huang2023_loss,
          "huang2023_C": huang2023_C_loss}


# --------------------------------------------------------------------------------------------
# runner
# --------------------------------------------------------------------------------------------
class Runner:
    """One model's training step in PyTorch; see ``make_runner``."""

    def __init__(self, problem: Problem, variant: str = "eager"):
        import torch

        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}")
        if problem.model not in LOSSES:
            raise ValueError(f"unknown model {problem.model!r}; allowed: {list(LOSSES)}")
        self.problem, self.variant = problem, variant
        dt = {"float64": torch.float64, "float32": torch.float32}[problem.dtype]
        self._p = {
            k: torch.tensor(v, dtype=dt, requires_grad=k in problem.trainable)
            for k, v in problem.params.items()
        }
        self._batch = {
            k: (torch.tensor(v, dtype=dt) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
            for k, v in problem.batch.items()
        }
        self._trainable = [self._p[k] for k in problem.trainable]
        opt = problem.optimizer
        if opt["name"] == "sgd":
            self._opt = torch.optim.SGD(self._trainable, lr=opt["lr"])
        elif opt["name"] == "adam":
            self._opt = torch.optim.Adam(self._trainable, lr=opt["lr"], betas=tuple(opt["betas"]), eps=opt["eps"])
        else:
            raise ValueError(f"optimizer name must be 'sgd' or 'adam', got {opt['name']!r}")
        fn = LOSSES[problem.model]
        options = dict(problem.options)
        if problem.model == "li2024":
            options.pop("train_a", None)  # whether a trains is in problem.trainable

        self._fn, self._options = fn, dict(options)  # eager, all outputs: for outputs()
        if problem.model == "huang2023_C":
            options["need_outputs"] = False

        def loss_fn(p, batch):
            return fn(p, batch, **options)

        self._loss_fn = torch.compile(loss_fn) if variant == "compile" else loss_fn

    def _forward_backward(self):
        self._opt.zero_grad(set_to_none=True)
        loss, out = self._loss_fn(self._p, self._batch)
        loss.backward()
        return loss, out

    def loss_and_grads(self) -> tuple[float, dict]:
        """Loss and gradients (numpy, keyed like refimpl) at the current parameters; no update."""
        loss, _ = self._forward_backward()
        return float(loss.item()), {k: self._p[k].grad.detach().numpy().copy() for k in self.problem.trainable}

    def outputs(self) -> dict:
        """Forward outputs at the current parameters (numpy, keyed like refimpl's)."""
        import torch

        with torch.no_grad():
            _, out = self._fn(self._p, self._batch, **self._options)
        return {k: v.detach().numpy().copy() for k, v in out.items()}

    def step(self) -> None:
        """One training step: forward, backward, optimiser update (synchronous on CPU)."""
        self._forward_backward()
        self._opt.step()

    def params(self) -> dict:
        """Current parameters as numpy arrays (copies)."""
        return {k: v.detach().numpy().copy() for k, v in self._p.items()}


def make_runner(problem: Problem, variant: str = "eager") -> Runner:
    """A PyTorch runner for ``problem``: ``variant`` "eager" or "compile"."""
    return Runner(problem, variant)
