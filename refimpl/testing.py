"""Check another implementation (PyTorch, JAX, NumPy, ...) against refimpl's golden vectors.

::

    from refimpl.testing import golden, assert_matches
    g = golden("li2024", seed=0, dtype="float32")    # {"param/W_Q": ..., "input/P": ..., "meta/...": ...}
    cand = my_model(g)                                # {"output/F": tensor, "grad/W_Q": tensor, ...}
    assert_matches(cand, g)                           # AssertionError with a per-key table if wrong

:func:`golden` builds the arrays of a golden file in memory (the same arrays
``refimpl golden export MODEL --seed S --dtype D --out FILE`` writes, plus its ``meta/*`` keys).
A float32 golden holds float32 inputs and parameters and outputs computed from them in float32.

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

import numpy as np

from refimpl import models
from refimpl.core.golden import DEFAULT_SECTIONS, check_dtype, compare, golden_payload

__all__ = ["golden", "assert_matches", "golden_fixture", "golden_arrays_function"]


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


def golden(model: str, config=None, seed: int = 0, dtype: str = "float64") -> dict[str, np.ndarray]:
    """The golden arrays of ``model`` for ``seed`` and ``dtype``: a dict ``"<section>/<name>" -> array``
    with the ``meta/*`` keys of format version 2, exactly what ``refimpl golden export`` writes.

    ``config`` is passed to the model's ``golden_arrays`` (``None``: its golden configuration).
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
    cfg, arrays = fn(int(seed), dtype) if config is None else fn(int(seed), dtype, config=config)
    return golden_payload(model=model, seed=int(seed), dtype=dtype, config=cfg, arrays=arrays)


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
