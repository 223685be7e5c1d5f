"""Benchmark problems: one fixed training step each, the same inputs for every backend.

A benchmark problem is a module of this package named as in the registry
(``refimpl.models.bench_problems()``; each registered model lists its problems in
``ModelInfo.bench``), so a new problem is one module plus its name in the registry line: the
harness, the FLOP table, the parity tests and the command line find it from there.

A :class:`Problem` holds the initial parameters, one fixed batch, the loss options and the
optimiser of one problem at one size, as NumPy arrays of one dtype keyed exactly like refimpl's
loss function. refimpl's paths (:func:`reference_step`, one per backend of the model in the
registry) and the competitors (``refimpl.examples``, through ``benchmarks/competitors.py``) all
start from it, so losses, gradients and trajectories can be compared number by number before
anything is timed.

What a problem module provides
------------------------------
``DEFAULT_SIZES``      the paper-default sizes (issue 6); keyword sizes override them
``SMALL``              small sizes (parity tests, ``refimpl bench --sizes small``)
``OPTIONS``            {option: allowed values, default first}: the spec options that change
                       the math and may be overridden (``make_problem(..., options=...)``)
``build(sizes, rng, dtype, options) -> Problem``
                       the problem at ``sizes`` (every size given), drawn from ``rng``, with the
                       ``options`` overrides (validated); arrays in float64 (cast afterwards)
``loss_and_grads(problem, params, backend, *, check, outputs) -> (loss, grads, outputs)``
                       refimpl's loss, gradients and forward outputs (``outputs``: a dict keyed
                       like the examples' outputs, or None when not asked for)
``flops(config) -> {"matmul", "elementwise"}``
                       FLOPs of one step of the algorithm refimpl runs (``benchmarks/flops.py``)

and optionally ``LARGE`` (sizes for the multi-thread rows: a batch large enough that a second
core could help), ``SCALING`` / ``SCALING_BASE`` (scaling curves: the size that varies and its
values, and sizes held fixed), ``FORMS`` ({form: label} when the examples write the model in
more than one way; the first is the default), ``DTYPES`` (when not both), ``BACKENDS`` (when
the problem's algorithm has kernels for only some of its model's registered backends),
``UNIDENTIFIED`` (suffixes of parameter names the loss does not depend on: their gradients are
rounding noise and their Adam trajectories are not comparable), ``own_trainer(problem, steps,
backend)`` (the model's own training loop on the problem, for the parity tests) and
``fit_scaling(size, x, t)`` (extra fits of a scaling curve).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from refimpl import models
from refimpl.core.arrays import check_choice, is_int, require
from refimpl.core.rng import make_rng

DTYPES = ("float64", "float32")


@dataclass
class Problem:
    """One problem's training step at one size: everything a backend needs, as NumPy arrays.

    ``name``: the benchmark problem; ``model``: the registered model it belongs to. ``params``,
    ``batch``: what refimpl's loss of the problem takes (non-array batch entries, such as
    yang2024's N, are for refimpl only; the examples read sizes off the arrays). ``options``: the
    keyword arguments of the examples' ``Model`` / ``loss`` (the spec options that change the
    math, plus structural sizes such as the transformer's n_heads). ``optimizer``:
    ``{"name": "sgd", "lr"}`` or ``{"name": "adam", "lr", "betas", "eps"}``. ``trainable``: the
    parameters the optimiser updates (the others, e.g. li2024's ``a``, stay fixed).
    """

    name: str
    model: str
    config: dict
    params: dict
    batch: dict
    options: dict
    optimizer: dict
    dtype: str = "float64"
    trainable: tuple = field(default=())

    def copy_params(self) -> dict:
        """A fresh copy of the initial parameters (runners must not mutate ``params``)."""
        return {k: v.copy() for k, v in self.params.items()}

    def array_batch(self) -> dict:
        """The batch entries that are arrays (what the examples take)."""
        return {k: v for k, v in self.batch.items() if isinstance(v, np.ndarray)}


def names() -> tuple[str, ...]:
    """Every benchmark problem, in registry order."""
    return models.bench_problems()


def load(name: str) -> ModuleType:
    """The module of benchmark problem ``name`` (``ValueError`` listing the problems otherwise)."""
    check_choice("problem", name, names())
    return importlib.import_module(f"{__name__}.{name}")


def model_of(name: str) -> models.ModelInfo:
    """The registry entry of the model benchmark problem ``name`` belongs to."""
    check_choice("problem", name, names())
    return next(info for info in models.REGISTRY.values() if name in info.bench)


def backends(name: str) -> tuple[str, ...]:
    """refimpl's backends for problem ``name``: its model's ``backends`` in the registry, or the
    subset the problem module declares in ``BACKENDS`` (an algorithm of the model that has no
    kernel for one of them, e.g. huang2023_C has no parallel kernel), in the registry's order."""
    registered = tuple(model_of(name).backends)
    own = getattr(load(name), "BACKENDS", None)
    if own is None:
        return registered
    unknown = [b for b in own if b not in registered]
    require(not unknown, f"problem {name!r}: BACKENDS {unknown} are not backends of {model_of(name).name}")
    return tuple(b for b in registered if b in own)


def dtypes(name: str) -> tuple[str, ...]:
    return tuple(getattr(load(name), "DTYPES", DTYPES))


def forms(name: str) -> dict:
    """{form: label} of the competitors of ``name``; one unnamed form when the module has none."""
    return dict(getattr(load(name), "FORMS", {"": ""}))


def sizes_of(name: str, which: str = "paper") -> dict | None:
    """The sizes called ``which``: "paper" (DEFAULT_SIZES), "small" (SMALL), "large" (LARGE, or
    None when the problem has no large rows)."""
    check_choice("sizes", which, ("paper", "small", "large"))
    mod = load(name)
    return {"paper": mod.DEFAULT_SIZES, "small": mod.SMALL, "large": getattr(mod, "LARGE", None)}[which]


def _check_sizes(name: str, mod: ModuleType, sizes: dict) -> dict:
    allowed = mod.DEFAULT_SIZES
    unknown = sorted(set(sizes) - set(allowed))
    if unknown:
        raise ValueError(f"unknown size(s) {unknown} for problem {name!r}; allowed: {list(allowed)}")
    out = {**allowed, **sizes}
    for k, v in out.items():
        require(is_int(v) and v >= 1, f"size {k} must be an int ≥ 1, got {v!r}")
    return {k: int(v) for k, v in out.items()}


def _same_value(v, allowed) -> bool:
    """v is one of ``allowed`` with the same kind (True is not 1, 1 is 1.0)."""
    return any(v == a and isinstance(v, (bool, np.bool_)) == isinstance(a, (bool, np.bool_)) for a in allowed)


def _check_options(name: str, mod: ModuleType, options) -> dict:
    if options is None:
        return {}
    if not hasattr(options, "keys"):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - set(mod.OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for problem {name!r}; allowed: {list(mod.OPTIONS)}")
    for k, v in options.items():
        allowed = mod.OPTIONS[k]
        kind = " (a bool)" if all(isinstance(a, bool) for a in allowed) else ""
        require(_same_value(v, allowed), f"option {k} of problem {name!r} must be one of {list(allowed)}{kind}, got {v!r}")
    return dict(options)


def make_problem(name: str, dtype: str = "float64", seed: int = 0, *, options: dict | None = None,
                 **sizes) -> Problem:
    """Benchmark problem ``name`` at its paper-default sizes, or at ``sizes``.

    ``dtype``: "float64" or "float32" (everything is drawn in float64 and then cast, so the
    float32 problem holds the rounded float64 numbers). ``seed``: every draw comes from it (same
    seed, identical problem). ``options``: overrides of the problem's ``OPTIONS``. Sizes: the
    keys of the module's ``DEFAULT_SIZES``.
    """
    mod = load(name)
    check_choice("dtype", dtype, DTYPES)
    s = _check_sizes(name, mod, sizes)
    opts = _check_options(name, mod, options)
    prob = mod.build(s, make_rng(seed), dtype, opts)
    dt = np.dtype(dtype)
    prob.params = {k: np.ascontiguousarray(v, dtype=dt) for k, v in prob.params.items()}
    prob.batch = {
        k: (np.ascontiguousarray(v, dtype=dt) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
        for k, v in prob.batch.items()
    }
    prob.dtype = dtype
    return prob


def option_cases(name: str) -> list[dict]:
    """The defaults ({}) and every other value of every option, one at a time (parity tests)."""
    cases = [{}]
    for k, allowed in load(name).OPTIONS.items():
        cases += [{k: v} for v in allowed[1:]]
    return cases


def reference_loss_and_grads(problem: Problem, params: dict, backend: str = "numpy", *, check: bool = True,
                             outputs: bool = True):
    """refimpl's ``(loss, grads, outputs)`` of ``problem`` at ``params`` on ``backend``."""
    check_choice("backend", backend, backends(problem.name))
    return load(problem.name).loss_and_grads(problem, params, backend, check=check, outputs=outputs)


def flops(name: str, config: dict) -> dict:
    """{"matmul", "elementwise"} FLOPs of one step of problem ``name`` at ``config``."""
    return load(name).flops(config)


class ReferenceStep:
    """refimpl's training step on a problem: loss and gradients on ``backend`` (one of the
    model's registered backends), then the optimiser update (``refimpl.core.optim``: SGD, or
    Adam in torch's form, fused on backend "numba"). The runner interface the competitors share:
    ``loss_and_grads()``, ``outputs()``, ``step()``, ``params()``, ``reset()``.
    """

    def __init__(self, problem: Problem, backend: str = "numpy"):
        check_choice("backend", backend, backends(problem.name))
        check_choice("optimizer['name']", problem.optimizer["name"], ("sgd", "adam"))
        self.problem, self.backend = problem, backend
        self._fn = load(problem.name).loss_and_grads
        self.reset()

    def reset(self) -> None:
        """Back to the initial parameters and a fresh optimiser state."""
        from refimpl.core.optim import SGD, Adam

        opt = self.problem.optimizer
        self._p = self.problem.copy_params()
        self._opt = (SGD(opt["lr"]) if opt["name"] == "sgd"
                     else Adam(opt["lr"], tuple(opt["betas"]), opt["eps"], backend=_adam_backend(self.backend)))
        self._checked = False  # refimpl validates the inputs on the first call only

    def loss_and_grads(self) -> tuple[float, dict]:
        loss, g, _ = self._fn(self.problem, self._p, self.backend, check=not self._checked, outputs=False)
        self._checked = True
        return float(loss), g

    def outputs(self) -> dict:
        return self._fn(self.problem, self._p, self.backend, check=True, outputs=True)[2]

    def step(self) -> float:
        """One step; returns the loss before the update."""
        loss, g = self.loss_and_grads()
        self._opt.step(self._p, {k: g[k] for k in self.problem.trainable})
        return loss

    __call__ = step

    def params(self) -> dict:
        return {k: v.copy() for k, v in self._p.items()}


def _adam_backend(backend: str) -> str:
    from refimpl.core.optim import BACKENDS

    return backend if backend in BACKENDS else "numpy"


def reference_step(problem: Problem, backend: str = "numpy") -> ReferenceStep:
    """refimpl's step on ``problem`` as a callable (see :class:`ReferenceStep`)."""
    return ReferenceStep(problem, backend)

