"""The competitors: the PyTorch and JAX examples (``refimpl.examples``) behind the runner
interface the harness and the parity tests use (``loss_and_grads()``, ``outputs()``, ``step()``,
``params()``, ``reset()``), started from a benchmark :class:`~refimpl.benchmarks.problems.Problem`.

A competitor of problem P exists when ``examples/<library>/<P>.py`` does; it is found by name
(nothing here lists models). Variants: torch "eager" and "compile" (``torch.compile`` of
``model.compute_loss``: forward and backward through AOTAutograd; the fused optimiser step stays
eager), jax "jit" (one ``jax.jit`` of value_and_grad and the update, buffers donated). Forms:
the example's ``FORMS`` (li2024: "naive", "matched").

torch and jax are imported only when a runner is made: importing this module imports neither.
"""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np

#: library -> its variants; the backend names are f"{library}_{variant}" (+ f"_{form}" for a
#: form other than the first)
LIBRARIES = {"torch": ("eager", "compile"), "jax": ("jit",)}


def example_module_name(library: str, problem: str) -> str:
    return f"refimpl.examples.{library}.{problem}"


def has_example(library: str, problem: str) -> bool:
    """True when ``examples/<library>/<problem>.py`` exists (the library itself is not imported)."""
    try:
        return importlib.util.find_spec(example_module_name(library, problem)) is not None
    except ModuleNotFoundError:
        return False


def library_importable(library: str) -> bool:
    """True when ``library`` can be found on the path (not imported)."""
    try:
        return importlib.util.find_spec(library) is not None
    except (ValueError, ModuleNotFoundError):
        return False


def _pick(module, form: str, default_name: str):
    forms = getattr(module, "FORMS", None)
    if forms is None:
        if form:
            raise ValueError(f"{module.__name__} has one form; got form {form!r}")
        return getattr(module, default_name)
    if not form:
        return next(iter(forms.values()))
    if form not in forms:
        raise ValueError(f"unknown form {form!r} of {module.__name__}; allowed: {list(forms)}")
    return forms[form]


class TorchRunner:
    """``Model(params, **options)`` of ``examples/torch/<problem>.py``, trained with
    ``common.make_optimizer`` (fused SGD / Adam) and ``common.train_step``."""

    def __init__(self, problem, variant: str = "eager", form: str = ""):
        import torch

        from refimpl.examples.torch import common

        if variant not in LIBRARIES["torch"]:
            raise ValueError(f"variant must be one of {list(LIBRARIES['torch'])}, got {variant!r}")
        self.problem, self.variant = problem, variant
        self._torch, self._common = torch, common
        self._factory = _pick(importlib.import_module(example_module_name("torch", problem.name)), form, "Model")
        self._batch = {k: torch.from_numpy(v.copy()) for k, v in problem.array_batch().items()}
        self.model = self._factory(problem.params, **problem.options)
        missing = sorted(set(problem.trainable) - {k for k, _ in self.model.named_parameters()}
                         - set(self.model.paper_arrays(grads=False)))
        if missing:
            raise ValueError(f"the torch model has no tensors {missing} (the problem's trainable parameters)")
        self.compute_loss = torch.compile(self.model.compute_loss) if variant == "compile" else self.model.compute_loss
        self._initial = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.reset()

    def reset(self) -> None:
        """Back to the initial parameters (copied in place, so a compiled function stays valid)
        and a fresh optimiser."""
        with self._torch.no_grad():
            for k, v in self.model.state_dict().items():
                v.copy_(self._initial[k])
        self.opt = self._common.make_optimizer(self.model.parameters(), self.problem.optimizer)

    def loss_and_grads(self) -> tuple[float, dict]:
        """Loss and gradients (NumPy, keyed like refimpl) at the current parameters; no update."""
        self.opt.zero_grad(set_to_none=True)
        loss, _ = self.compute_loss(self._batch)
        loss.backward()
        grads = self.model.paper_arrays(grads=True)
        return float(loss.item()), {k: grads[k] for k in self.problem.trainable}

    def outputs(self) -> dict:
        """Forward outputs at the current parameters (NumPy, keyed like refimpl's)."""
        with self._torch.no_grad():
            fn = getattr(self.model, "outputs", None)
            out = fn(self._batch) if fn is not None else self.model.compute_loss(self._batch)[1]
        return {k: v.detach().numpy().copy() for k, v in out.items()}

    def step(self) -> None:
        """One training step: forward, backward, optimiser update (synchronous on CPU)."""
        self._common.train_step(self.compute_loss, self.opt, self._batch)

    def params(self) -> dict:
        return self.model.paper_arrays(grads=False)


class JaxRunner:
    """``loss(params, batch, **options)`` of ``examples/jax/<problem>.py`` through
    ``common.make_train_step`` (jit, donated buffers) and ``common.sgd`` / ``common.adam``.

    float64 needs ``jax_enable_x64``: the runner sets it (never at import time); float32
    problems stay float32 because every array is created with an explicit dtype."""

    def __init__(self, problem, variant: str = "jit", form: str = ""):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        from refimpl.examples.jax import common

        if variant not in LIBRARIES["jax"]:
            raise ValueError(f"variant must be one of {list(LIBRARIES['jax'])}, got {variant!r}")
        self.problem, self.variant = problem, variant
        self._jnp = jnp
        mod = importlib.import_module(example_module_name("jax", problem.name))
        loss = _pick(mod, form, "loss")
        opt = problem.optimizer
        if opt["name"] == "sgd":
            self._init, update = common.sgd(opt["lr"])
        elif opt["name"] == "adam":
            self._init, update = common.adam(opt["lr"], tuple(opt["betas"]), opt["eps"])
        else:
            raise ValueError(f"optimizer name must be 'sgd' or 'adam', got {opt['name']!r}")
        self._step = common.make_train_step(loss, update, **problem.options)
        self._vg = common.make_value_and_grad(loss, **problem.options)
        out_fn = getattr(mod, "outputs", None)
        self._outputs = (jax.jit(lambda p, b: out_fn(p, b, **problem.options)) if out_fn is not None else None)
        self._batch = {k: jnp.asarray(v) for k, v in problem.array_batch().items()}
        self._fixed = {k: jnp.asarray(v) for k, v in problem.params.items() if k not in problem.trainable}
        self.reset()

    def reset(self) -> None:
        """Back to the initial parameters (fresh buffers: the old ones were donated) and a fresh
        optimiser state."""
        self._train = {k: self._jnp.array(self.problem.params[k], copy=True) for k in self.problem.trainable}
        self._state = self._init(self._train)

    def loss_and_grads(self) -> tuple[float, dict]:
        (loss, _), grads = self._vg(self._train, self._fixed, self._batch)
        return float(loss), {k: np.array(v) for k, v in grads.items()}

    def outputs(self) -> dict:
        if self._outputs is not None:
            out = self._outputs({**self._fixed, **self._train}, self._batch)
        else:
            (_, out), _ = self._vg(self._train, self._fixed, self._batch)
        return {k: np.array(v) for k, v in out.items()}

    def step(self) -> None:
        """One jitted training step; blocks until the new parameters are computed."""
        self._train, self._state, loss = self._step(self._train, self._state, self._fixed, self._batch)
        loss.block_until_ready()
        for v in self._train.values():
            v.block_until_ready()

    def params(self) -> dict:
        out = {k: np.array(v) for k, v in self._train.items()}
        out.update({k: np.array(v) for k, v in self._fixed.items()})
        return out


RUNNERS = {"torch": TorchRunner, "jax": JaxRunner}


def make_runner(problem, library: str, variant: str, form: str = ""):
    """The runner of ``library``'s example of ``problem`` (``variant``, ``form``)."""
    if library not in RUNNERS:
        raise ValueError(f"unknown library {library!r}; allowed: {list(RUNNERS)}")
    if not has_example(library, problem.name):
        raise ValueError(f"no {library} example of problem {problem.name!r} (examples/{library}/{problem.name}.py)")
    return RUNNERS[library](problem, variant, form)
