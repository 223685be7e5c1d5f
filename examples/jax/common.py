"""What every JAX example shares: functional SGD and Adam (no optax) and the jitted training
step.

    init, update = adam(1e-3, (0.9, 0.999), 1e-8)
    step = make_train_step(loss, update, **options)    # jax.jit, parameter and optimiser buffers donated
    train, opt_state = dict(params), init(params)
    train, opt_state, value = step(train, opt_state, fixed, batch)

``train`` holds the parameters being trained, ``fixed`` the others (merged into one dict for the
loss); ``loss(params, batch, **options)`` returns ``(loss, outputs)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sgd(lr):
    """θ ← θ − lr·g; the state is empty."""

    def init(params):
        return ()

    def update(params, grads, state):
        return {k: params[k] - lr * grads[k] for k in params}, state

    return init, update


def adam(lr, betas=(0.9, 0.999), eps=1e-8):
    """Adam as ``torch.optim.Adam`` computes it: m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g²,
    θ ← θ − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε)."""
    b1, b2 = betas

    def init(params):
        zeros = {k: jnp.zeros_like(v) for k, v in params.items()}
        return jnp.zeros((), jnp.int32), zeros, {k: jnp.zeros_like(v) for k, v in params.items()}

    def update(params, grads, state):
        t, m, v = state
        t = t + 1
        new_p, new_m, new_v = {}, {}, {}
        for k, g in grads.items():
            dt = params[k].dtype
            new_m[k] = b1 * m[k] + (1 - b1) * g
            new_v[k] = b2 * v[k] + (1 - b2) * g * g
            m_hat = new_m[k] / (1 - b1 ** t).astype(dt)
            v_hat = new_v[k] / (1 - b2 ** t).astype(dt)
            new_p[k] = params[k] - lr * m_hat / (jnp.sqrt(v_hat) + eps)
        return new_p, (t, new_m, new_v)

    return init, update


def make_train_step(loss, update, /, **options):
    """``step(train, opt_state, fixed, batch) -> (train, opt_state, loss)``: value_and_grad of
    ``loss`` with respect to ``train`` and the optimiser update, one ``jax.jit``; the buffers of
    ``train`` and ``opt_state`` are donated (updated in place)."""

    def step(train, opt_state, fixed, batch):
        def f(t):
            return loss({**fixed, **t}, batch, **options)

        (value, _), grads = jax.value_and_grad(f, has_aux=True)(train)
        train, opt_state = update(train, grads, opt_state)
        return train, opt_state, value

    return jax.jit(step, donate_argnums=(0, 1))


def make_value_and_grad(loss, /, **options):
    """``vg(train, fixed, batch) -> ((loss, outputs), grads)``, jitted (no update)."""

    def f(train, fixed, batch):
        return loss({**fixed, **train}, batch, **options)

    return jax.jit(jax.value_and_grad(f, has_aux=True))
