"""Work declared up front: the planning side of a Dask validation run (issue 14).

A module's ``run(ctx)`` is ordinary code calling ``ctx.cached(name, config, fn)``. To send the
computations to Dask workers without rewriting the modules, the runner runs each module with a
:class:`PlanContext`, whose ``cached``

- returns the value when the cache has it, and otherwise
- records a :class:`Task` (the entry and ``fn``) and returns a :class:`Pending` placeholder.

A ``Pending`` raises :class:`NotReady` on *any* use — attribute, item, iteration, arithmetic,
comparison, ``bool``, ``len``, ``str``, ``float``, NumPy conversion, hashing — so a module runs up
to the first value it really needs and stops there, having declared every computation it asked
for on the way (a loop requesting one run per seed declares them all before touching any).
``NotReady`` derives from ``BaseException``, so a module's ``except Exception`` cannot swallow it.

Tasks run on workers through :func:`execute`. Inside a task, ``ctx`` is a :class:`WorkerContext`
(the planning context pickles into one): a nested ``ctx.cached`` (a check that trains through
``fit``) returns the value if the cache (or the client, which ships it) has it, else records the
nested task and returns a ``Pending`` of this attempt. When the task touches such a placeholder it
stops and reports the nested tasks it needs; the client runs those and then re-runs the task. A
task touching a placeholder captured from the planning pass (a stale closure) is dropped; the next
planning of its module records it again with real values. Workers never write the cache: a task
returns the pickled value (checked to contain no placeholder) and the client stores it.

:func:`fingerprint` is what the client compares across workers before submitting anything.
"""

from __future__ import annotations

import io
import os
import pickle
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refimpl.validation.cache import Entry, make_entry
from refimpl.validation.codedeps import CodeIndex
from refimpl.validation.context import Context


class NotReady(BaseException):
    """Raised by any use of a :class:`Pending`: the value is not computed yet."""

    def __init__(self, pending: Pending):
        super().__init__(object.__getattribute__(pending, "_name"))
        self.pending = pending


def _raise(self, *args, **kwargs):
    raise NotReady(self)


class Pending:
    """Placeholder for a cached value that is not computed yet; any use raises :class:`NotReady`.

    ``repr`` is the one harmless operation (for debuggers and error messages). It pickles (closures
    that capture it can be shipped), and the planner notices it wherever it is pickled."""

    __slots__ = ("_key", "_name", "_origin")

    def __init__(self, key: str, name: str, origin: str):
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_origin", origin)

    def __reduce__(self):
        return (Pending, (self._key, self._name, self._origin))

    def __repr__(self):
        return f"<Pending {self._name} {self._key[:8]}>"

    def __getattr__(self, name):
        raise NotReady(self)

    __hash__ = _raise


_DUNDERS = """
setattr delattr dir bool len length_hint iter next reversed contains getitem setitem delitem missing
call str format bytes fspath float int index complex round trunc floor ceil
eq ne lt le gt ge neg pos abs invert enter exit aenter aexit await aiter anext
array array_ufunc array_function
add radd iadd sub rsub isub mul rmul imul matmul rmatmul imatmul truediv rtruediv itruediv
floordiv rfloordiv ifloordiv mod rmod imod divmod rdivmod pow rpow ipow lshift rlshift ilshift
rshift rrshift irshift and rand iand or ror ior xor rxor ixor
""".split()
for _d in _DUNDERS:
    setattr(Pending, f"__{_d}__", _raise)
del _d


def contains_pending(obj) -> set[str]:
    """Keys of the placeholders inside ``obj`` (found by pickling it; empty if none)."""
    found: set[str] = set()

    class _Finder(pickle.Pickler):
        def reducer_override(self, o):
            if type(o) is Pending:
                found.add(object.__getattribute__(o, "_key"))
            return NotImplemented

    try:
        _Finder(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except NotReady:  # pragma: no cover - reducer_override sees Pending first
        raise
    except Exception:
        pass  # not picklable: nothing to find this way
    return found


def dumps_value(value) -> bytes:
    """``pickle.dumps(value)`` (the serial path's bytes), refusing values holding a placeholder."""

    class _Checker(pickle.Pickler):
        def reducer_override(self, o):
            if type(o) is Pending:
                raise NotReady(o)
            return NotImplemented

    buf = io.BytesIO()
    _Checker(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buf.getvalue()


def dumps_fn(fn) -> tuple[bytes, frozenset]:
    """``fn`` cloudpickled for a worker, and the keys of the placeholders its closure captures."""
    import cloudpickle

    found: set[str] = set()

    class _Pickler(cloudpickle.Pickler):
        def reducer_override(self, o):
            if type(o) is Pending:
                found.add(object.__getattribute__(o, "_key"))
            return super().reducer_override(o)

    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(fn)
    return buf.getvalue(), frozenset(found)


@dataclass
class Task:
    """A computation to run: its entry, ``fn`` cloudpickled, and the placeholders ``fn`` captured
    (a task capturing placeholders is held back: it could only fail)."""

    entry: Entry
    fn_blob: bytes
    captured: frozenset = frozenset()

    @property
    def key(self) -> str:
        return self.entry.key


@dataclass
class ContextSpec:
    """What a worker needs to rebuild a context: plain data."""

    paper: str
    profile: str
    index: CodeIndex
    override: str | None
    cache_dir: str | None  # None: workers do not read the cache (the client ships values)


class PlanContext(Context):
    """The planning context of a Dask run (module docstring). ``planner.record(task, module)``
    receives every computation the module asks for that the cache does not have."""

    def __init__(self, paper, profile, out_dir, *, planner, module, spec: ContextSpec, **kwargs):
        super().__init__(paper, profile, out_dir, progress=False, **kwargs)
        self.planner = planner
        self.module = module
        self.spec = spec
        self.token = uuid.uuid4().hex

    def __reduce__(self):
        return (WorkerContext, (self.spec,))

    def cached(self, name: str, config: Any, fn, *, code=None, exclusive: bool = False) -> Any:
        entry = self.entry(name, config, fn, code=code, exclusive=exclusive)
        found, value = self.cache.load(entry)
        if found:
            self.cache_hits += 1
            return value
        self.cache_misses += 1
        blob, captured = dumps_fn(fn)
        self.planner.record(Task(entry, blob, captured), self.module)
        return Pending(entry.key, name, self.token)


# ---- the worker side ----------------------------------------------------------------------------

_local = threading.local()


@dataclass
class Attempt:
    """One execution of one task on a worker: the values the client shipped, and what the task
    asked for that nobody has computed yet."""

    token: str
    deps: dict  # key -> pickled value
    asked: set = field(default_factory=set)
    missing: dict = field(default_factory=dict)  # key -> wire task


class WorkerContext(Context):
    """``ctx`` inside a task on a worker (what a :class:`PlanContext` unpickles into)."""

    def __init__(self, spec: ContextSpec):
        super().__init__(spec.paper, spec.profile, spec.cache_dir or ".", progress=False, code=spec.override,
                         index=spec.index, cache_dir=spec.cache_dir or os.devnull)
        self.spec = spec

    def __reduce__(self):
        return (WorkerContext, (self.spec,))

    def figure_path(self, name):  # pragma: no cover - a task must not draw
        raise RuntimeError("figures are drawn by the module's run(ctx), not inside ctx.cached computations")

    def cached(self, name: str, config: Any, fn, *, code=None, exclusive: bool = False) -> Any:
        attempt: Attempt | None = getattr(_local, "attempt", None)
        if attempt is None:
            raise RuntimeError("a worker context used outside a task")
        entry = make_entry(name, config, fn, self.spec.index, code=code, override=self.spec.override,
                           exclusive=exclusive)
        attempt.asked.add(entry.key)
        if entry.key in attempt.deps:
            return pickle.loads(attempt.deps[entry.key])
        if self.spec.cache_dir is not None:
            try:
                return pickle.loads((Path(self.spec.cache_dir) / f"{entry.stem}.pkl").read_bytes())
            except Exception:  # absent or unreadable: the client computes it
                pass
        if entry.key not in attempt.missing:
            blob, captured = dumps_fn(fn)
            attempt.missing[entry.key] = Task(entry, blob, captured)
        return Pending(entry.key, name, attempt.token)


def execute(fn_blob: bytes, deps: dict) -> tuple:
    """Run one task on a worker. Returns

    - ``("ok", value_bytes, seconds, nested_tasks)``: the value, pickled (the client stores it);
    - ``("missing", nested_tasks)``: it needs nested computations first (then it is re-run);
    - ``("stale", nested_tasks)``: it touched a placeholder captured at planning (dropped);
    - ``("error", text)``: ``fn`` raised; the text is the worker's traceback.

    Exceptions never escape (Dask's retries are kept for lost workers)."""
    attempt = Attempt(uuid.uuid4().hex, dict(deps or {}))
    _local.attempt = attempt
    try:
        try:
            fn = pickle.loads(fn_blob)
            t0 = time.perf_counter()
            value = fn()
            seconds = time.perf_counter() - t0
            blob = dumps_value(value)
        except NotReady as exc:
            origin = object.__getattribute__(exc.pending, "_origin")
            kind = "missing" if origin == attempt.token else "stale"
            return (kind, list(attempt.missing.values()), sorted(attempt.asked))
        except Exception:
            return ("error", traceback.format_exc())
        return ("ok", blob, seconds, list(attempt.missing.values()), sorted(attempt.asked))
    finally:
        _local.attempt = None


def fingerprint() -> dict:
    """Code and library versions of this process; the client refuses workers that differ."""
    import platform

    import numba
    import numpy

    from refimpl.validation.codedeps import code_version

    return {"code_version": code_version(), "python": platform.python_version(), "numpy": numpy.__version__,
            "numba": numba.__version__}


def pinning() -> dict:
    """Thread settings of this process (checked by the tests of the local cluster)."""
    import numba
    from threadpoolctl import threadpool_info

    return {"blas": [p.get("num_threads") for p in threadpool_info()], "numba": numba.config.NUMBA_NUM_THREADS,
            "numba_cache_dir": numba.config.CACHE_DIR,
            "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
