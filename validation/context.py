"""The context a validation module's ``run(ctx)`` gets: profile, figures, the cache, progress.

``ctx.cached(name, config, fn, *, code=None, exclusive=False)`` is the one way a module computes
something expensive:

- ``name``: a label (``"li2024/train"``); ``config``: everything (JSON-able) the result depends on
  besides code; ``fn``: a zero-argument callable computing it.
- ``code``: the refimpl packages the result depends on. Default: derived from ``fn``
  (:mod:`refimpl.validation.codedeps`): the packages whose modules ``fn`` reaches and what they
  import, plus the bytecode of the validation-level functions it reaches. So two modules that
  request the same computation share one entry, and editing a figure leaves every entry cached.
- ``exclusive=True``: a timing-sensitive computation (wall-clock budgets): a Dask run executes it
  with nothing else running. Serially it makes no difference.

This class is the serial (in-process) context: ``fn()`` runs inline at the call. A Dask run uses
:class:`refimpl.validation.plan.PlanContext` instead, whose ``cached`` declares the work and
returns a placeholder until the value exists (see :mod:`refimpl.validation.plan`).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from refimpl.core.io import atomic_savefig
from refimpl.validation.cache import Cache, Entry, make_entry
from refimpl.validation.codedeps import CodeIndex

_INDEX: CodeIndex | None = None


def default_index() -> CodeIndex:
    """A code index for contexts made outside a run (tests, notebooks); built once per process."""
    global _INDEX
    if _INDEX is None:
        _INDEX = CodeIndex.build()
    return _INDEX


class Context:
    """What a validation module gets: the profile, where to write, the cache, progress bars.

    ``code`` (tests) replaces the code part of every key by a fixed string; ``cache_dir``
    defaults to ``<out_dir>/.cache``; ``cache`` and ``index`` let one run share its cache state
    and code snapshot across modules."""

    def __init__(self, paper: str, profile: str, out_dir, *, use_cache: bool = True,
                 progress: bool | None = None, code: str | None = None, cache_dir=None,
                 cache: Cache | None = None, index: CodeIndex | None = None):
        self.paper = paper
        self.profile = profile
        self.out_dir = Path(out_dir)
        self.cache = cache if cache is not None else Cache(Path(cache_dir) if cache_dir else self.out_dir / ".cache",
                                                           use_cache=use_cache)
        self.cache_dir = self.cache.root
        self.use_cache = self.cache.use_cache
        self.progress = progress
        self.code_override = code
        self.index = index
        self.cache_hits = 0
        self.cache_misses = 0

    def _index(self) -> CodeIndex:
        if self.index is None:
            self.index = default_index()
        return self.index

    def figure_path(self, name: str) -> Path:
        """Path for a PNG (``name`` without extension), prefixed by the paper."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / f"{self.paper}_{name}.png"

    def save_figure(self, fig, name: str) -> str:
        """Save a matplotlib figure atomically as ``<paper>_<name>.png``; returns the file name."""
        import matplotlib.pyplot as plt

        path = self.figure_path(name)
        atomic_savefig(path, fig, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path.name

    def entry(self, name: str, config: Any, fn: Callable[[], Any] | None = None, *, code=None,
              exclusive: bool = False) -> Entry:
        """The cache entry (key, file stem, code hashes) of ``cached(name, config, fn, code=...)``."""
        return make_entry(name, config, fn if fn is not None else _nothing, self._index(), code=code,
                          override=self.code_override, exclusive=exclusive)

    def cache_key(self, name: str, config: Any, fn: Callable[[], Any] | None = None, *, code=None) -> str:
        return self.entry(name, config, fn, code=code).key

    def cached(self, name: str, config: Any, fn: Callable[[], Any], *, code=None, exclusive: bool = False) -> Any:
        """``fn()``, stored under a hash of (name, config, the code it depends on) and reused when
        present (module docstring)."""
        entry = self.entry(name, config, fn, code=code, exclusive=exclusive)
        found, value = self.cache.load(entry)
        if found:
            self.cache_hits += 1
            return value
        t0 = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - t0
        self.cache.store(entry, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), seconds)
        self.cache_misses += 1
        return value


def _nothing():  # the fn of a key computed without one (cache_key(name, config))
    return None
