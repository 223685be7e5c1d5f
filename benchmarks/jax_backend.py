"""JAX competitor: each model written as a JAX user would write it from the paper.

``jax.numpy`` with the standard attention formulation (scores, ``jax.nn.softmax``, weighted sum
of values), ``jax.value_and_grad`` for the gradients and ``jax.jit`` of the whole training step
(forward, backward and a functional SGD / Adam update; optax is not assumed). Adam uses
torch.optim.Adam's formula (bias-corrected moments, p ← p − lr·m̂/(√v̂ + ε)). The one variant is
``"jit"``; the first call of ``step`` compiles (the harness times it separately).

float64 needs ``jax_enable_x64``: ``make_runner`` sets it (never at import time); float32
problems stay float32 because every array is created with an explicit dtype. Threads are the
caller's business (XLA_FLAGS before jax is imported).

jax is imported lazily inside the functions: importing this module never imports jax.
"""

from __future__ import annotations

import numpy as np

from refimpl.benchmarks.problems import Problem

VARIANTS = ("jit",)


def available() -> bool:
    """True when jax can be imported."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# the models (spec L7/L10, Y5/Y7, H4/H5, H7); p: trainable params, c: fixed params + batch
# --------------------------------------------------------------------------------------------
def li2024_loss(p, c, *, attend_to_query=False, relu_at_zero=0.0, train_a=False):
    """Mean hinge loss of F(Ψ; P) = aᵀ Relu(W_O Σ_i W_V p_i attn_i) (spec L7, L10)."""
    import jax
    import jax.numpy as jnp

    a = p["a"] if train_a else c["a"]
    P, z = c["P"], c["z"]  # (B, d, l+1), (B,)
    l = P.shape[2] - 1
    X = jnp.swapaxes(P, 1, 2)  # (B, l+1, d) tokens as rows, query last
    context, query = X[:, :l], X[:, l]  # (B, l, d), (B, d)
    keys_in = X if attend_to_query else context
    q = query @ p["W_Q"].T  # (B, m_b)
    k = keys_in @ p["W_K"].T  # (B, J, m_b)
    v = context @ p["W_V"].T  # (B, l, m_a)
    scores = jnp.einsum("bjm,bm->bj", k, q)  # (B, J)  (W_K p_i)ᵀ W_Q p_q
    attn = jax.nn.softmax(scores, axis=-1)  # (B, J)
    out = jnp.einsum("bi,bim->bm", attn[:, :l], v)  # (B, m_a)  Σ_i attn_i W_V p_i
    h = out @ p["W_O"].T  # (B, m)
    r = jax.nn.relu(h) if relu_at_zero == 0 else jnp.where(h >= 0, h, 0.0)
    F = r @ a  # (B,)
    loss = jnp.mean(jax.nn.relu(1 - z * F))  # hinge; jax.nn.relu has derivative 0 at 0
    return loss, {"F": F, "attn": attn}


def yang2024_loss(p, c, *, loss="sample"):
    """(1/2K)·mean_b Σ_k (ŷ_k − y_k)², ŷ = Âᵀ y, Â = Σ_h softmax(Vᵀ Q_h Ṽ) diag(w_h) (spec Y5, Y7)."""
    import jax
    import jax.numpy as jnp

    if loss != "sample":
        raise ValueError(f"the jax competitor implements loss='sample' only, got loss={loss!r}")
    V_all, y, y_all = c["V_all"], c["y"], c["y_all"]  # (d, K), (B, N), (B, K)
    N, K = y.shape[1], V_all.shape[1]
    V = V_all[:, :N]  # (d, N)
    scores = V.T @ p["Q"] @ V_all  # (H, N, K)
    S = jax.nn.softmax(scores, axis=1)  # (H, N, K)
    A_hat = jnp.sum(S * p["w"][:, None, :], axis=0)  # (N, K)
    y_hat = y @ A_hat  # (B, K)
    val = jnp.sum((y_hat - y_all) ** 2) / (2 * K * y.shape[0])
    return val, {"A_hat": A_hat, "S": S}


def huang2023_loss(p, c, *, loss="sample", attend_to_query=False):
    """Mean of ½(ŷ − y_q)², ŷ = Σ_i softmax_i(x_iᵀ Q x_q) y_i (spec H4, H5)."""
    import jax
    import jax.numpy as jnp

    if loss != "sample":
        raise ValueError(f"the jax competitor implements loss='sample' only, got loss={loss!r}")
    X, xq, y, yq = c["X"], c["xq"], c["y"], c["yq"]
    N = X.shape[1]
    keys = jnp.concatenate([X, xq[:, None, :]], axis=1) if attend_to_query else X  # (B, J, d)
    scores = jnp.einsum("bjd,bd->bj", keys, xq @ p["Q"].T)  # (B, J)
    attn = jax.nn.softmax(scores, axis=-1)
    y_hat = jnp.sum(attn[:, :N] * y, axis=-1)  # (B,)
    return jnp.mean(0.5 * (y_hat - yq) ** 2), {"attn": attn, "y_hat": y_hat}


def huang2023_C_loss(p, c, *, attend_to_query=False):
    """L(C) = Σ_k p_k E_n ½[(1 − α_{k→k})² + Σ_{m≠k} α_{k→m}²], α_{k→m} ∝ n_m e^{C_{m,k}} (spec H7, H8 (b))."""
    import jax
    import jax.numpy as jnp

    C, prob, counts, weights = p["C"], c["p"], c["counts"], c["weights"]
    K = C.shape[0]
    logits = C.T  # (K, K) [k, m] = C_{m,k}
    e = jnp.exp(logits - jax.lax.stop_gradient(logits.max(axis=1, keepdims=True)))  # (K, K)
    num = counts[None, :, :] * e[:, None, :]  # (K, M, K)  n_m e^{C_{m,k}}
    den = num.sum(axis=2, keepdims=True)  # (K, M, 1)
    if attend_to_query:  # the query column adds e^{C_{k,k}}
        den = den + jnp.diagonal(e)[:, None, None]
    alpha = num / den  # (K, M, K)
    eye = jnp.eye(K, dtype=C.dtype)
    ell = 0.5 * jnp.sum((alpha - eye[:, None, :]) ** 2, axis=2)  # (K, M)
    Lk = ell @ weights
    return prob @ Lk, {"Lk": Lk, "Ealpha": jnp.einsum("kcm,c->km", alpha, weights)}


LOSSES = {"li2024": li2024_loss, "yang2024": yang2024_loss, "huang2023": huang2023_loss,
          "huang2023_C": huang2023_C_loss}


# --------------------------------------------------------------------------------------------
# runner
# --------------------------------------------------------------------------------------------
def _sgd(lr):
    def init(params):
        return ()

    def update(params, grads, state):
        return {k: params[k] - lr * grads[k] for k in params}, state

    return init, update


def _adam(lr, betas, eps):
    """Functional Adam with torch.optim.Adam's formula (bias corrections in the parameters' dtype)."""
    import jax.numpy as jnp

    b1, b2 = betas

    def init(params):
        m = {k: jnp.zeros_like(v) for k, v in params.items()}
        v = {k: jnp.zeros_like(x) for k, x in params.items()}  # distinct buffers (both are donated)
        return (jnp.zeros((), jnp.int32), m, v)

    def update(params, grads, state):
        t, m, v = state
        t = t + 1
        new_p, new_m, new_v = {}, {}, {}
        for k in params:
            dt = params[k].dtype
            bc1 = (1 - b1 ** t).astype(dt)
            bc2 = (1 - b2 ** t).astype(dt)
            new_m[k] = b1 * m[k] + (1 - b1) * grads[k]
            new_v[k] = b2 * v[k] + (1 - b2) * grads[k] * grads[k]
            new_p[k] = params[k] - lr * (new_m[k] / bc1) / (jnp.sqrt(new_v[k] / bc2) + eps)
        return new_p, (t, new_m, new_v)

    return init, update


class Runner:
    """One model's training step in JAX (``jax.jit`` of value_and_grad + update); see ``make_runner``."""

    def __init__(self, problem: Problem, variant: str = "jit"):
        import jax
        import jax.numpy as jnp

        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}")
        if problem.model not in LOSSES:
            raise ValueError(f"unknown model {problem.model!r}; allowed: {list(LOSSES)}")
        jax.config.update("jax_enable_x64", True)  # float64 arrays need it; float32 stays explicit
        self.problem, self.variant = problem, variant
        dt = jnp.dtype(problem.dtype)
        self._dtype = dt
        self._p = {k: jnp.asarray(problem.params[k], dtype=dt) for k in problem.trainable}
        const = {k: jnp.asarray(v, dtype=dt) for k, v in problem.params.items() if k not in problem.trainable}
        for k, v in problem.batch.items():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                const[k] = jnp.asarray(v, dtype=dt)
        self._const = const
        opt = problem.optimizer
        if opt["name"] == "sgd":
            init, update = _sgd(opt["lr"])
        elif opt["name"] == "adam":
            init, update = _adam(opt["lr"], tuple(opt["betas"]), opt["eps"])
        else:
            raise ValueError(f"optimizer name must be 'sgd' or 'adam', got {opt['name']!r}")
        self._state = init(self._p)
        fn = LOSSES[problem.model]
        options = dict(problem.options)
        if problem.model == "li2024":
            options["train_a"] = "a" in problem.trainable

        def loss_fn(p, c):
            return fn(p, c, **options)

        vg = jax.value_and_grad(loss_fn, has_aux=True)

        def step(p, state, c):
            (loss, _), grads = vg(p, c)
            p, state = update(p, grads, state)
            return p, state, loss

        self._step = jax.jit(step, donate_argnums=(0, 1))
        self._vg = jax.jit(vg)

    def loss_and_grads(self) -> tuple[float, dict]:
        """Loss and gradients (numpy, keyed like refimpl) at the current parameters; no update."""
        (loss, _), grads = self._vg(self._p, self._const)
        return float(loss), {k: np.array(v) for k, v in grads.items()}

    def outputs(self) -> dict:
        """Forward outputs at the current parameters (numpy, keyed like refimpl's)."""
        (_, out), _ = self._vg(self._p, self._const)
        return {k: np.array(v) for k, v in out.items()}

    def step(self) -> None:
        """One jitted training step; blocks until the new parameters are computed."""
        self._p, self._state, loss = self._step(self._p, self._state, self._const)
        loss.block_until_ready()
        for v in self._p.values():
            v.block_until_ready()

    def params(self) -> dict:
        """Current parameters as numpy arrays (copies), the fixed ones included."""
        out = {k: np.array(v) for k, v in self._p.items()}
        for k in self.problem.params:
            if k not in out:
                out[k] = np.array(self._const[k])
        return out


def make_runner(problem: Problem, variant: str = "jit") -> Runner:
    """A JAX runner for ``problem`` (``variant`` "jit")."""
    return Runner(problem, variant)
