"""The model registry and the one contract every model package keeps.

A model is one package under ``refimpl/`` plus one line in :data:`REGISTRY`. The command line
(``refimpl train | golden``), the golden suite, the benchmark harness, the FLOP table and the
contract tests (``tests/test_contract.py``) all iterate over this registry; none of them lists
model names of its own.

The contract
------------
Every registered package exposes these public names, with the same meaning everywhere:

``preset(name, **overrides) -> cfg``
    A named, validated, frozen configuration (``PRESETS`` lists the names); ``overrides`` replace
    fields (a nested config takes ``section={...}``). Unknown names and bad values raise
    ``ValueError`` naming the field and what is allowed. Every package has a ``"tiny"`` preset
    (seconds-long runs, used by the contract tests).
``init_params(cfg, seed, dtype=np.float64) -> params``
    The paper's initialisation as a dict of arrays keyed by the paper's names (``PARAM_NAMES``).
``make_data(cfg, seed) -> data``
    The fixed objects of the data model (patterns and tasks, a dictionary of tokens, orthonormal
    features, a teacher network): everything that does not change from prompt to prompt.
``sample_batch(data, n, rng, **options) -> batch``
    ``n`` fresh prompts drawn with the explicit ``numpy.random.Generator`` ``rng``: a dict holding
    the model's inputs and targets (and metadata such as pattern indices).
``forward(params, inputs, cfg) -> (out, cache)``
    The model output for ``inputs`` (a batch dict; keys the model does not read are ignored) and
    a cache for ``backward``. ``cache["attn"]`` holds the attention probabilities.
``backward(dout, cache) -> grads``
    Gradients of ``Σ dout ⊙ out`` with respect to every trained parameter, keyed like the params.
``loss_and_grads(params, batch, cfg, backend="numpy", *, check=True, return_aux=False)``
    ``(loss, grads)`` (or ``(loss, grads, aux)``) of the configured loss; ``backend`` is one of the
    model's backends: ``"numpy"`` (the readable reference), ``"numba"`` (fused kernels, one
    thread) and, where listed, ``"numba_parallel"`` (the same kernels with the prompts, or
    yang2024's heads, split over Numba's threads, for large batches; deterministic for a given
    thread count). ``check=False``
    skips input validation (trusted hot loops): the result is unchecked, but the kernels still
    check the shapes they index (O(1)), so a wrong-shaped array raises ``ValueError`` and is never
    read out of bounds.
``predict(params, inputs, cfg) -> out``
    ``forward`` without the cache.
``train(cfg, seed, *, backend=..., progress=None, ...) -> Trajectory``
    The paper's training procedure from ``init_params`` and ``make_data`` drawn from ``seed``;
    returns the shared :class:`refimpl.core.trajectory.Trajectory` record.
``golden_arrays(seed, dtype="float64", *, config=None) -> (config_dict, arrays)``
    The arrays of the model's golden file (``param/*``, ``input/*``, ``output/*``, ``grad/*``,
    ``trajectory/*``).

Extras (population dynamics, reduced forms, ridge limits, pruning) stay extras: public, documented,
outside the contract. Imports flow one way: ``refimpl.core`` <- model packages <- this registry,
``refimpl.experiments`` <- ``refimpl.validation``, ``refimpl.benchmarks``, ``refimpl.cli``
(checked by import-linter, ``setup.cfg``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

CONTRACT = (
    "preset", "init_params", "make_data", "sample_batch", "forward", "backward", "loss_and_grads",
    "predict", "train", "golden_arrays", "PARAM_NAMES", "PRESETS",
)


@dataclass(frozen=True)
class ModelInfo:
    """One registered model: where it lives and what it can do."""

    name: str  # registry key, also the golden files' ``meta/model``
    module: str  # the package implementing the contract
    title: str  # the paper or spec it implements
    backends: tuple = ("numpy",)  # values of ``loss_and_grads(..., backend=)``
    dtypes: tuple = ("float64", "float32")
    losses: tuple = ()  # values of the config's loss field, if the model has several
    bench: tuple = ()  # benchmark problems (``refimpl.benchmarks.problems.<name>``)
    options: dict = field(default_factory=dict)  # config fields that change the math -> their values
    test_sizes: dict = field(default_factory=dict)  # size fields -> small values the contract tests draw
    steps_field: str | None = "steps"  # the config field holding the number of training steps
    #                                    (None: ``train(..., steps=N)`` takes it as a keyword)
    metric: str = "loss"  # the headline metric of ``refimpl sweep`` (a records/history series of train)

    def load(self) -> ModuleType:
        """The model package (imported on first use; nothing is computed at import)."""
        return importlib.import_module(self.module)


REGISTRY: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo("li2024", "refimpl.li2024", "Li, Wang, Lu, Cui, Chen, ICML 2024 (spec L)",
                  backends=("numpy", "numba", "numba_parallel"), losses=("hinge",), bench=("li2024",),
                  steps_field="train.steps",
                  metric="unseen/error",
                  options={"model.attend_to_query": (False, True), "model.train_a": (False, True),
                           "model.relu_at_zero": (0.0, 1.0)},
                  test_sizes={"data.l_train": (1, 2, 5), "data.d_y": (1, 4), "model.m": (1, 3, 16),
                              "model.m_a": (None, 3), "model.m_b": (None, 2)}),
        ModelInfo("yang2024", "refimpl.yang2024", "Yang, Huang, Liang, Chi, NeurIPS 2024 (spec Y)",
                  backends=("numpy", "numba", "numba_parallel"), losses=("population", "sample"),
                  bench=("yang2024",), metric="excess",
                  options={"loss": ("population", "sample")},
                  test_sizes={"H": (1, 2, 5), "N": (1, 3, 7), "d": (1, 3), "m": (1, 2)}),
        ModelInfo("huang2023", "refimpl.huang2023", "Huang, Cheng, Liang 2023 (spec H)",
                  backends=("numpy", "numba", "numba_parallel"), losses=("sample", "Ew"),
                  bench=("huang2023", "huang2023_C"), metric="L",
                  options={"loss": ("sample", "Ew"), "attend_to_query": (False, True)},
                  test_sizes={"N": (1, 2, 6), "K": (2, 3, 4)}),
        ModelInfo("transformer", "refimpl.transformer", "multi-layer reference transformer (spec T)",
                  backends=("numpy", "numba"), steps_field=None, losses=("squared", "hinge"), bench=("transformer",),
                  metric="eval_loss",
                  options={"norm": ("pre", "post"), "activation": ("gelu", "relu"), "causal": (False, True),
                           "positions": ("none", "learned"), "readout": ("all", "last"),
                           "loss": ("squared", "hinge")},
                  test_sizes={"n_layers": (1, 2), "n_heads": (1, 2), "d_model": (4, 8), "d_ff": (3, 12)}),
    )
}


def names() -> tuple[str, ...]:
    """The registered model names, in registry order."""
    return tuple(REGISTRY)


def get(name: str) -> ModelInfo:
    """The registry entry of ``name``; ``ValueError`` listing the allowed names otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; allowed: {list(REGISTRY)}")
    return REGISTRY[name]


def load(name: str) -> ModuleType:
    """The package of model ``name``."""
    return get(name).load()


def bench_problems() -> tuple[str, ...]:
    """Every benchmark problem of every registered model, in registry order."""
    return tuple(p for info in REGISTRY.values() for p in info.bench)
