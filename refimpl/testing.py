"""Check another implementation (PyTorch, JAX, NumPy, ...) against refimpl's golden vectors.

::

    from refimpl.testing import golden, assert_matches
    g = golden("li2024", seed=0, dtype="float32")    # {"param/W_Q": ..., "input/P": ..., "meta/...": ...}
    cand = my_model(g)                                # {"output/F": tensor, "grad/W_Q": tensor, ...}
    assert_matches(cand, g)                           # AssertionError with a per-key table if wrong

:func:`golden` builds the arrays of a golden file in memory (the same arrays
``refimpl golden export MODEL --seed S --dtype D --out FILE`` writes, plus its ``meta/*`` keys).
A float32 golden holds float32 inputs and parameters and outputs computed from them in float32.

The golden suite: ``golden(model, config=NAME)`` selects one of the model's named configurations,
which together exercise every option of the model (:func:`suite` lists them with what each covers;
``None`` is ``"default"``). The repository commits them for seed 0 in float64 and float32
(``tests/data/golden/<model>-<config>-<dtype>.npz``, written by ``refimpl golden suite --out DIR``
= :func:`write_suite`) and checks that the current code reproduces every file bit for bit
(:func:`check_suite`, ``refimpl golden suite --out DIR --check``). docs/golden.md has the table.

:func:`assert_matches` checks the candidate's ``output/*``, ``grad/*`` and ``trajectory/*`` keys
(``sections=`` to choose; the params and inputs are what the candidate was given, so it need not
return them). A candidate is a dict of NumPy arrays, torch tensors (detached and moved to the
CPU for you; torch is never imported by refimpl) or JAX arrays, or the path of an ``.npz`` file.

Default tolerances
------------------
An entry passes when ``|cand − ref| ≤ atol + rtol·|ref|``, with

==========  ================================  ================================
precision   output, grad                      trajectory (errors accumulate)
==========  ================================  ================================
float64     rtol 1e-9, atol 1e-12·scale(key)  rtol 1e-7, atol 1e-10·scale(key)
float32     rtol 1e-5, atol 1e-5·scale(key)   rtol 1e-4, atol 1e-4·scale(key)
==========  ================================  ================================

- precision: the least precise float dtype among the candidate's checked arrays (a float32 model
  whose trajectory was collected as Python floats is still float32), float32 whenever the
  reference is float32, or ``dtype=`` if given;
- ``scale(key)``: the largest finite ``|ref|`` of the key; for an array key at least 0.1 × the
  largest finite ``|ref|`` among the array keys of its section (a key that is zero up to rounding,
  such as the transformer's ∇b_K, holds rounding noise of its section's scale).

Why these numbers (measured on correct implementations, seeds 0–19, ``tests/test_testing.py``):
a correct candidate's largest error is ≤ 2e-15 (float64) and ≤ 2e-6 (float32) of its key's largest
entry (li2024: torch, refimpl's Numba path and its NumPy path in float32; transformer: torch, 10
Adam steps included), at most 0.1 of the tolerance, while single entries that are small through
cancellation err by up to 0.14 of themselves in float32 (so a relative tolerance alone cannot
work) and one absolute tolerance cannot fit every key (torch's float32 default atol 1e-5 is 6% of
li2024's largest ∇W_K entry). Deliberately wrong models (W_Q and W_K swapped, W_V transposed,
softmax over the wrong axis, a learning rate 1% off) fail in both precisions.

``rtol``/``atol`` replace the defaults for every key (``atol`` absolute), ``per_key={key: (rtol,
atol)}`` for single keys. Tolerances must be finite and ≥ 0. Nothing passes by accident: a missing
key or shape mismatch fails naming the key; non-finite reference entries match only the same value
(NaN only NaN, +inf only +inf); a non-finite candidate entry fails where the reference is finite;
complex, bool, string and object candidates raise ``TypeError`` naming the key (never cast); a
check that compares no key raises ``ValueError``. The rule lives in :mod:`refimpl.core.golden`
(``compare``), which the command line ``refimpl golden compare`` uses too.

pytest
------
:func:`golden_fixture` makes a fixture (pytest is imported only when it is called)::

    # conftest.py
    from refimpl.testing import golden_fixture
    li_golden = golden_fixture("li2024", dtype="float32")      # fixture named li_golden

    # test_mine.py
    def test_my_model(li_golden):
        assert_matches(my_model(li_golden), li_golden)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refimpl import models
from refimpl.core.golden import DEFAULT_SECTIONS, DTYPES, bit_diff, check_dtype, compare, golden_payload, load_npz

__all__ = ["golden", "assert_matches", "golden_fixture", "golden_arrays_function", "suite", "SuiteEntry",
           "write_suite", "check_suite", "SUITE_SEED"]

SUITE_SEED = 0  # the seed of the committed golden suite (tests/data/golden)


def golden_arrays_function(model: str):
    """The ``golden_arrays(seed, dtype, *, config=None)`` of registered model ``model``.

    The contract (``refimpl.models``) puts it at package level; while a model package does not
    re-export it yet, it is taken from the package's ``golden`` module (this is the one place that
    knows).
    """
    info = models.get(model)
    fn = getattr(info.load(), "golden_arrays", None)
    if fn is None:
        fn = importlib.import_module(f"{info.module}.golden").golden_arrays
    return fn


def golden_configs(model: str) -> dict[str, dict]:
    """The named configurations of ``model``'s golden suite (its golden module's ``CONFIGS``:
    name -> {"covers": what it exercises, ...}), ``"default"`` first; a model whose golden module
    has no ``CONFIGS`` has the one configuration ``"default"``."""
    info = models.get(model)
    module = importlib.import_module(f"{info.module}.golden")
    return getattr(module, "CONFIGS", {"default": {"covers": "the model's golden configuration"}})


@dataclass(frozen=True)
class SuiteEntry:
    """One configuration of the golden suite: ``golden(model, config=config, ...)``."""

    model: str
    config: str
    covers: str  # the options it exercises, in words

    def file_name(self, dtype: str) -> str:
        """``<model>-<config>-<dtype>.npz``, the name of its file in the committed suite."""
        return f"{self.model}-{self.config}-{check_dtype(dtype)}.npz"


def suite(model: str | None = None) -> list[SuiteEntry]:
    """Every configuration of the golden suite (of ``model``, or of every registered model, in
    registry order): together they exercise every option of every model (docs/golden.md)."""
    names = models.names() if model is None else (models.get(model).name,)
    return [SuiteEntry(m, name, spec.get("covers", "")) for m in names for name, spec in golden_configs(m).items()]


def golden(model: str, config=None, seed: int = 0, dtype: str = "float64") -> dict[str, np.ndarray]:
    """The golden arrays of ``model`` for ``seed`` and ``dtype``: a dict ``"<section>/<name>" -> array``
    with the ``meta/*`` keys of format version 2, exactly what ``refimpl golden export`` writes.

    ``config``: ``None`` (the model's golden configuration, the same as ``"default"``), the name
    of a configuration of the golden suite (:func:`suite`; ``ValueError`` listing them for an
    unknown name), or a configuration object of the model, passed to its ``golden_arrays``. A
    named configuration is recorded in ``meta/config`` as ``"golden_config"``.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer ≥ 0, got {seed!r}")
    if not isinstance(dtype, str):
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            raise ValueError(f"dtype must be one of ['float64', 'float32'], got {dtype!r}") from None
    check_dtype(dtype)
    fn = golden_arrays_function(model)
    if isinstance(config, str) and config not in golden_configs(model):
        raise ValueError(f"unknown golden configuration {config!r} of {model}; allowed: {list(golden_configs(model))}")
    default = config is None or (isinstance(config, str) and config == "default")
    cfg, arrays = fn(int(seed), dtype) if default else fn(int(seed), dtype, config=config)
    if config is None or isinstance(config, str):
        cfg = {**cfg, "golden_config": config or "default"}
    return golden_payload(model=model, seed=int(seed), dtype=dtype, config=cfg, arrays=arrays)


def write_suite(out, *, model_names=None, dtypes=DTYPES, seed: int = SUITE_SEED) -> list[Path]:
    """Write the golden suite: one file ``<model>-<config>-<dtype>.npz`` per configuration of
    :func:`suite` and dtype into folder ``out`` (atomically; ``refimpl golden suite --out DIR``).
    Returns the paths written."""
    from refimpl.core.io import atomic_savez

    out = Path(out)
    paths = []
    for e in (x for m in (model_names or models.names()) for x in suite(m)):
        for dtype in dtypes:
            paths.append(atomic_savez(out / e.file_name(dtype), golden(e.model, e.config, seed=seed, dtype=dtype)))
    return paths


def parse_suite_name(name: str) -> tuple[str, str, str]:
    """``(model, config, dtype)`` of a suite file name ``<model>-<config>-<dtype>.npz``."""
    stem = name[:-4] if name.endswith(".npz") else name
    parts = stem.split("-")
    if len(parts) != 3 or parts[2] not in DTYPES:
        raise ValueError(f"{name!r} is not a golden suite file name <model>-<config>-<dtype>.npz")
    return parts[0], parts[1], parts[2]


def check_suite(folder, *, seed: int = SUITE_SEED) -> dict[str, list[str]]:
    """Regenerate every file of the golden suite in memory and compare it bit for bit with the one
    in ``folder`` (:func:`refimpl.core.golden.bit_diff`; ``meta/refimpl`` ignored). Returns
    ``{file name: differences}`` for every file that is missing, extra (not in :func:`suite`) or
    differs; an empty dict means the current code reproduces the suite exactly."""
    folder = Path(folder)
    expected = {e.file_name(dt): (e, dt) for e in suite() for dt in DTYPES}
    problems = {}
    present = {p.name for p in folder.glob("*.npz")}
    for name in sorted(present - set(expected)):
        problems[name] = ["not a configuration of the suite (refimpl.testing.suite())"]
    for name, (e, dtype) in expected.items():
        if name not in present:
            problems[name] = ["missing: regenerate with `refimpl golden suite --out DIR`"]
            continue
        diff = bit_diff(load_npz(folder / name), golden(e.model, e.config, seed=seed, dtype=dtype))
        if diff:
            problems[name] = diff
    return problems


def assert_matches(candidate, golden, *, sections=DEFAULT_SECTIONS, rtol=None, atol=None, per_key=None,
                   dtype=None) -> None:
    """Raise ``AssertionError`` unless ``candidate`` matches ``golden`` on ``sections``.

    ``candidate``: dict of arrays/tensors or an ``.npz`` path; ``golden``: the dict :func:`golden`
    returns or a golden file. Tolerances: module docstring. The message names the first wrong key
    and tabulates every checked key (status, max abs and rel error, worst index with the reference
    and candidate values there, tolerance used). Bad arguments raise ``ValueError``/``TypeError``.
    """
    res = compare(golden, candidate, sections=sections, rtol=rtol, atol=atol, per_key=per_key, dtype=dtype)
    if res.ok:
        return
    first = res.first_failure
    raise AssertionError(
        f"candidate does not match golden {res.reference}: first wrong key {first.key} ({first.status}); "
        f"{len(res.failed_keys)} of {len(res.rows)} checked keys wrong\n{res.table()}"
    )


def golden_fixture(model: str, *, config=None, seed: int = 0, dtype: str = "float64", scope: str = "session",
                   name: str | None = None):
    """A pytest fixture returning ``golden(model, config, seed, dtype)`` (computed once per ``scope``).

    Assign it in a ``conftest.py`` or test module; the fixture takes the name it is assigned to
    (or ``name``). Imports pytest when called, so this module works without pytest installed.
    """
    import pytest

    check_dtype(dtype)
    models.get(model)

    def _golden():
        return golden(model, config=config, seed=seed, dtype=dtype)

    return pytest.fixture(scope=scope, name=name)(_golden)
