"""The one place that configures Numba for the whole project (DESIGN.md, "Numba").

Every kernel is decorated with :func:`njit` from here, so the options are uniform:

- ``cache=True``: compiled machine code is stored beside the source (``__pycache__``) and reused by
  later processes, so only the first run of a fresh checkout pays compilation.
- ``fastmath=False``: a reference implementation does not trade bits for speed.
- ``error_model="numpy"``: division by zero gives inf/nan as in NumPy instead of raising.

``NUMBA_DISABLE_JIT=1`` turns every kernel into plain Python (the coverage leg); the tests pass
either way.
"""

from __future__ import annotations

import numba

JIT_OPTIONS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)


def njit(fn=None, **overrides):
    """``numba.njit`` with the project's options; ``overrides`` (e.g. ``parallel=True``) on top.

    Use a ``parallel=True`` override only where a benchmark shows it wins on the 2-core target.
    """
    options = {**JIT_OPTIONS, **overrides}
    if fn is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(fn)


def jit_disabled() -> bool:
    """True when ``NUMBA_DISABLE_JIT`` is set (kernels then run as plain Python)."""
    return bool(numba.config.DISABLE_JIT)
