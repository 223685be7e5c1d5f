"""The one place that configures Numba for the whole project (DESIGN.md, "Numba").

Every kernel is decorated with :func:`njit` from here, so the options are uniform:

- ``cache=True``: compiled machine code is stored and reused by later processes, so only the first
  run pays compilation. Where it is stored: ``NUMBA_CACHE_DIR`` if set and writable, else beside
  the source (``__pycache__``), else Numba's user-wide cache folder. A read-only install used by
  another user (no writable package folder, no writable ``NUMBA_CACHE_DIR`` or home) falls back to
  a private folder under the system temp directory, with one warning; if nothing at all is
  writable, kernels compile without caching (one warning). Importing never fails for want of a
  cache folder.
  A cached kernel is reused only while the source of EVERY refimpl module that defines kernels is
  unchanged (:func:`_kernel_sources_hash`): Numba's own check looks at the kernel's file alone,
  so a kernel that inlines or calls a function from another file (e.g. ``core/vmath.py``) would
  otherwise keep its stale machine code after that file is edited.
- ``fastmath=False``: a reference implementation does not trade bits for speed.
- ``error_model="numpy"``: division by zero gives inf/nan as in NumPy instead of raising.

``NUMBA_DISABLE_JIT=1`` turns every kernel into plain Python (the coverage leg); the tests pass
either way.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import numba

JIT_OPTIONS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)

_CACHE_DECISION: bool | None = None  # decided once, on the first kernel definition


def _writable_dir(path) -> bool:
    """True if ``path`` exists (or can be created) and a file can be created in it."""
    try:
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=p).close()
        return True
    except OSError:
        return False


def _user_wide_cache_dir() -> str:
    from numba.misc.appdirs import AppDirs

    return AppDirs(appname="numba", appauthor=False).user_cache_dir


_STAMPS_INSTALLED = False


def _kernel_sources_hash() -> str:
    """SHA-256 of every refimpl source file that defines Numba kernels (mentions ``njit``)."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        data = path.read_bytes()
        if b"njit" in data:
            h.update(str(path.relative_to(root)).encode())
            h.update(data)
    return h.hexdigest()


def _install_dependency_stamps() -> None:
    """Make Numba's cache stamp of every refimpl kernel include :func:`_kernel_sources_hash`.

    Numba validates a cached kernel by the stamp of its own source file; the locators installed
    here (ahead of Numba's, for files inside the refimpl package only) add the hash of all kernel
    sources to that stamp, so editing any of them recompiles every kernel that may depend on it."""
    global _STAMPS_INSTALLED
    if _STAMPS_INSTALLED:
        return
    from numba.core import caching

    root = str(Path(__file__).resolve().parents[1])
    deps = _kernel_sources_hash()

    def with_deps(base):
        class Locator(base):
            def get_source_stamp(self):
                return (super().get_source_stamp(), deps)

            @classmethod
            def from_function(cls, py_func, py_file):
                if not str(Path(py_file).resolve()).startswith(root):
                    return None
                return super().from_function(py_func, py_file)

        Locator.__name__ = f"Refimpl{base.__name__}"
        return Locator

    ours = [with_deps(c) for c in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                                   caching.UserWideCacheLocator)]
    caching.CacheImpl._locator_classes = ours + [c for c in caching.CacheImpl._locator_classes]
    _STAMPS_INSTALLED = True


def cache_enabled() -> bool:
    """Decide (once) whether and where kernels are cached; see the module docstring."""
    global _CACHE_DECISION
    if _CACHE_DECISION is not None:
        return _CACHE_DECISION
    configured = numba.config.CACHE_DIR
    if configured and _writable_dir(configured):
        _CACHE_DECISION = True
        return True
    in_tree = Path(__file__).resolve().parent / "__pycache__"
    if not configured and (_writable_dir(in_tree) or _writable_dir(_user_wide_cache_dir())):
        _CACHE_DECISION = True
        return True
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    fallback = Path(tempfile.gettempdir()) / f"refimpl-numba-cache-{uid}"
    why = (f"NUMBA_CACHE_DIR={configured!r} is not writable" if configured
           else "neither the package folder nor the user cache folder is writable")
    if _writable_dir(fallback):
        numba.config.CACHE_DIR = str(fallback)
        warnings.warn(f"refimpl: {why}; caching compiled kernels in {fallback}", RuntimeWarning, stacklevel=3)
        _CACHE_DECISION = True
    else:
        warnings.warn(f"refimpl: {why}, nor is {fallback}; kernels are compiled without caching",
                      RuntimeWarning, stacklevel=3)
        _CACHE_DECISION = False
    return _CACHE_DECISION


def njit(fn=None, **overrides):
    """``numba.njit`` with the project's options; ``overrides`` (e.g. ``parallel=True``) on top.

    Use a ``parallel=True`` override only where a benchmark shows it wins on the 2-core target, and
    only behind an explicit choice of the caller (the ``"numba_parallel"`` backends): the prompts
    (yang2024: the heads) split into one chunk per Numba thread (``numba.set_num_threads`` /
    ``NUMBA_NUM_THREADS``), each chunk's results kept apart and then reduced in a fixed order, so a
    given thread count always gives the same bits. A kernel that calls BLAS inside ``prange`` runs
    under :func:`blas_single_threaded`.
    """
    options = {**JIT_OPTIONS, **overrides}
    if options.get("cache"):
        options["cache"] = cache_enabled()
        if options["cache"]:
            _install_dependency_stamps()
    if fn is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(fn)


_BLAS_LIBS: list | None = None


def _blas_libs() -> list:
    """threadpoolctl's controllers of every loaded BLAS (NumPy's and the one Numba's ``np.dot``
    calls, SciPy's ``cython_blas``), found once."""
    global _BLAS_LIBS
    if _BLAS_LIBS is None:
        import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS Numba calls, so it is found)
        from threadpoolctl import ThreadpoolController

        _BLAS_LIBS = list(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _BLAS_LIBS


@contextlib.contextmanager
def blas_single_threaded():
    """Run the block with every BLAS limited to one thread (restored afterwards).

    For ``parallel=True`` kernels that call BLAS (``np.dot``) from inside a ``prange`` loop: each
    Numba thread's products then run on that thread alone, never nested in a multi-threaded BLAS.
    Cheap (a few ctypes calls); the BLAS libraries are found on first use."""
    changed = []
    for lib in _blas_libs():
        n = lib.get_num_threads()
        if n != 1:
            lib.set_num_threads(1)
            changed.append((lib, n))
    try:
        yield
    finally:
        for lib, n in changed:
            lib.set_num_threads(n)


def jit_disabled() -> bool:
    """True when ``NUMBA_DISABLE_JIT`` is set (kernels then run as plain Python)."""
    return bool(numba.config.DISABLE_JIT)
