"""JAX implementations of the models (``jax.numpy``, ``jax.value_and_grad``, ``jax.jit``); see
``refimpl.examples``. Importing this package does not import jax; each model file does.

float64 needs ``jax.config.update("jax_enable_x64", True)`` before the first array is made (a
JAX user's program does it at start-up; the benchmark harness does it in its runner)."""
