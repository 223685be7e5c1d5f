"""refimpl's own backends ("numpy", "numba") behind the benchmark Runner interface
(``loss_and_grads()``, ``step()``, ``params()``); the step is ``problems.reference_step``."""

from __future__ import annotations

BACKENDS = ("numpy", "numba")


def available() -> bool:
    return True


def make_runner(problem, variant: str):
    from refimpl.benchmarks.problems import reference_step

    if variant not in BACKENDS:
        raise ValueError(f"refimpl backend must be one of {BACKENDS}, got {variant!r}")
    return reference_step(problem, variant)
