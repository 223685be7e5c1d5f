"""FLOP counts of one training step (forward, backward, update) of the algorithm refimpl runs.

A multiply-add counts 2 FLOPs. Products are counted in the order the reference code evaluates
them (the NumPy path and the Numba kernels use the same orders); softmax exponentials, ReLU masks
and other elementwise work are counted at one FLOP per arithmetic operation and listed separately
in :func:`breakdown`. The counts assume every prompt contributes to the backward pass (at
initialisation the hinge is active for all prompts; li2024's Numba kernel skips prompts with
zF ≥ 1, so late in training it does less work than counted here).

The counts themselves live with each benchmark problem (``benchmarks/problems/<name>.py``,
``flops(config)``); this module dispatches by name through the registry. The competitors (torch,
jax) may evaluate the same model with more FLOPs (e.g. full score matrices); the benchmark
reports every backend's rate against this count of *our* algorithm, so GFLOP/s compares wall
time on a common unit of work.
"""

from __future__ import annotations


def breakdown(problem: str, config: dict) -> dict:
    """{"matmul": FLOPs in matrix products, "elementwise": other FLOPs} of one step of benchmark
    problem ``problem`` (one of ``refimpl.models.bench_problems()``) at ``config``."""
    from refimpl.benchmarks.problems import load, names

    if problem not in names():
        raise ValueError(f"unknown benchmark problem {problem!r}; allowed: {list(names())}")
    return load(problem).flops(config)


def step_flops(problem: str, config: dict) -> int:
    """Total FLOPs of one training step (matrix products + elementwise)."""
    b = breakdown(problem, config)
    return int(b["matmul"] + b["elementwise"])
