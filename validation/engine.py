"""The Dask engine of ``refimpl validate --workers N | --scheduler ADDRESS | --scheduler-file FILE``.

Only this module imports ``distributed``; a run without those options never imports it.

How a run goes (the "passes" of issue 14, made event-driven so workers are never idle while a
pass drains):

1. **Check the workers.** Before anything is submitted, every worker reports its
   :func:`~refimpl.validation.plan.fingerprint` (refimpl code version, Python, NumPy, Numba);
   any difference stops the run with one line. Each task also carries the client's code version
   and a worker that joins later with other code refuses it.
2. **Plan.** Each module's ``run(ctx)`` runs on the client with a
   :class:`~refimpl.validation.plan.PlanContext`: cached values come back, missing ones are
   recorded as tasks, and the module stops at the first placeholder it needs.
3. **Execute.** Recorded tasks are submitted, deduplicated by cache key across modules (a run
   requested by six modules runs once; the Dask key is the cache entry's name and key, so two
   clients sharing a scheduler share the computation too). A task that needs nested computations
   reports them; they are submitted at once and the task re-runs when they are done, with their
   values. When every task a module was waiting for has finished, the module is planned again;
   a search (L13d's shortest trainable length) thus advances step by step while the other
   modules' tasks keep the workers busy.
4. **Finish.** A module whose planning run completes — every value it asked for cached — has
   produced its claims and figures (the run is a normal run with all values cached). When all
   modules have, the runner writes the report.

The client is the only cache writer: a task returns its value's bytes, the client writes them
atomically with a sidecar (:mod:`refimpl.validation.cache`). Tasks flagged ``exclusive``
(wall-clock measurements) are submitted only when nothing else of this run is running (first,
when the cluster is idle: at the start, so what depends on them need not wait for the end), and
nothing else (not even planning on the client) starts until they finish. A worker lost mid-task
(killed, out of memory) is recovered by Dask, which reschedules its tasks (``retries=2`` besides);
a task that raises stops the run with the worker's traceback, like the serial run would.

Local clusters (``--workers N``) have N worker processes with one thread each; BLAS, OpenMP and
Numba are pinned to one thread in the workers' environment before they start, and Numba caches
compiled kernels in a node-local folder (``NUMBA_CACHE_DIR`` if set, else
``<tmp>/refimpl-numba-cache-<uid>``). Workers of an existing cluster are configured by whoever
started them (use ``--nthreads 1`` and the same variables).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field

from distributed import Client, LocalCluster, WorkerPlugin, wait

from refimpl.validation import plan
from refimpl.validation.plan import ContextSpec, NotReady, PlanContext, Task, contains_pending, execute, fingerprint

PIN_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
           "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")
SCATTER_BYTES = 1 << 20  # task payloads above this go to the workers by scatter, not in the graph


class EngineError(ValueError):
    """A Dask run cannot start (no workers, workers running other code); one-line message."""


class TaskError(RuntimeError):
    """A computation failed on a worker."""


def numba_cache_dir() -> str:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"refimpl-numba-cache-{uid}")


def worker_env() -> dict[str, str]:
    """The environment of local workers: one thread everywhere, a node-local Numba cache."""
    return {**{k: "1" for k in PIN_ENV}, "NUMBA_CACHE_DIR": numba_cache_dir()}


@contextlib.contextmanager
def local_client(n_workers: int, *, processes: bool = True):
    """A ``LocalCluster`` of ``n_workers`` single-threaded workers and its client."""
    import dask

    if not isinstance(n_workers, int) or isinstance(n_workers, bool) or n_workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {n_workers!r}")
    # Dask's default MALLOC_TRIM_THRESHOLD_ is left out: any explicit glibc trim threshold turns off
    # glibc's dynamic mmap threshold, so every array above 128 KiB is mmapped and unmapped again and
    # page-faulted on each use (60 training steps of the 3-layer GPT-2: 1.0 M minor page faults
    # instead of 0.25 M, 6.4 s instead of 4.5 s)
    env = {**{k: str(v) for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
              if k != "MALLOC_TRIM_THRESHOLD_"},
           **worker_env()}
    # NUMBA_NUM_THREADS reaches the workers only through the nannies' `env` (set in the worker
    # process before it imports Numba), never this process's environment: a nanny restarting a
    # worker re-applies the pre-spawn environment here, and a Numba whose thread pool is already
    # running raises "Cannot set NUMBA_NUM_THREADS ..." at its next compilation if it changed.
    pre_spawn = {k: v for k, v in env.items() if k != "NUMBA_NUM_THREADS"}
    saved = {k: os.environ.get(k) for k in pre_spawn}

    def restore():
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    # Dask applies distributed.nanny.pre-spawn-environ to os.environ before spawning a worker (and
    # values already in os.environ win over the config): set ours for the spawn, restore after
    os.environ.update(pre_spawn)
    # Ctrl-C in a terminal reaches the whole process group: workers ignore it (the client handles
    # it and closes the cluster). Ignored at spawn (inherited through exec, so Python and asyncio
    # install no handler), and by a plugin in workers that a nanny restarts later.
    old_sigint = _ignore_sigint()
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn,
                              "distributed.scheduler.allowed-failures": 3}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                                   dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                                   silence_logs=logging.ERROR,
                                   **({"env": env} if processes else {}))
    finally:
        restore()
        _restore_sigint(old_sigint)
    client = Client(cluster)
    try:
        if processes:
            client.register_plugin(IgnoreSigint(), name="refimpl-ignore-sigint")
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        with contextlib.suppress(Exception):
            cluster.close()
        restore()  # a worker restarted by its nanny re-applied the spawn environment


def _ignore_sigint():
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


def _restore_sigint(old) -> None:
    import signal

    if old is not None:
        signal.signal(signal.SIGINT, old)


class IgnoreSigint(WorkerPlugin):
    """Workers of a local cluster ignore SIGINT (Ctrl-C is the client's to handle)."""

    def setup(self, worker):
        _ignore_sigint()


@contextlib.contextmanager
def remote_client(scheduler: str | None = None, scheduler_file: str | None = None, *, wait_s: float = 60):
    """A client of an existing cluster (``--scheduler`` or ``--scheduler-file``); connecting uses
    Dask's timeout (``distributed.comm.timeouts.connect``), then up to ``wait_s`` for a worker."""
    try:
        client = Client(scheduler_file=scheduler_file) if scheduler_file else Client(scheduler)
    except (OSError, TimeoutError, ValueError) as exc:
        where = scheduler or f"of {scheduler_file}"
        raise EngineError(f"cannot connect to the Dask scheduler {where}: {type(exc).__name__}: {exc}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=wait_s)
        except TimeoutError:
            raise EngineError(f"the Dask cluster at {client.scheduler.address} has no workers "
                              f"(waited {wait_s:g} s)") from None
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()


def check_workers(client) -> dict:
    """Every worker's fingerprint equals the client's, or :class:`EngineError` (nothing submitted)."""
    mine = fingerprint()
    try:
        theirs = client.run(plan.fingerprint)  # by module path: each worker runs its own code
    except Exception as exc:
        raise EngineError(f"the Dask workers cannot run refimpl: {type(exc).__name__}: {exc}") from None
    if not theirs:
        raise EngineError("the Dask cluster has no workers")
    for addr, fp in sorted(theirs.items()):
        for k, v in mine.items():
            if fp.get(k) != v:
                raise EngineError(f"Dask worker {addr} runs a different {k.replace('_', ' ')} ({fp.get(k)}) from this "
                                  f"client ({v}); refusing to submit: install the same refimpl on every worker")
    return mine


def _guarded_execute(fn_blob, deps, expect: str):
    """:func:`execute` after checking this worker's code version against the client's."""
    from refimpl.validation.codedeps import code_version

    global _MY_VERSION
    if _MY_VERSION is None:
        _MY_VERSION = code_version()
    if _MY_VERSION != expect:
        return ("error", f"worker code version {_MY_VERSION} differs from the client's {expect}")
    return execute(fn_blob, deps)


_MY_VERSION = None


@dataclass
class Job:
    """One validation module in a Dask run."""

    paper: str
    mod: object
    name: str
    status: str = "new"  # new | blocked | done
    waiting: set = field(default_factory=set)
    planned_at: int = -1
    claims: list | None = None
    compute_s: float = 0.0
    run_s: float = 0.0


@dataclass
class _TS:
    task: Task
    status: str  # queued | running | waiting | done | held | dropped
    job: Job | None
    attempt: int = 0
    asked: tuple = ()
    waiting_on: set = field(default_factory=set)
    parents: set = field(default_factory=set)
    last_missing: frozenset | None = None
    last_done: int = -1
    counted: bool = False


FINISHED = ("done", "held", "dropped")


class Engine:
    """Runs validation modules on a Dask client (module docstring)."""

    def __init__(self, client, *, cache, index, out_dir, profile, progress, log, local: bool, override=None,
                 desc: str = "validate"):
        self.client = client
        self.cache = cache
        self.index = index
        self.out_dir = out_dir
        self.profile = profile
        self.progress = progress
        self.log = log
        # workers of a local cluster read finished entries from the cache folder themselves
        # (read-only); elsewhere, and under --no-cache, the client ships the values a task needs
        self.ship = not (local and cache.use_cache)
        self.override = override
        self.desc = desc  # the progress bar's label
        self.tasks: dict[str, _TS] = {}
        self.queue: deque = deque()
        self.xqueue: deque = deque()
        self.running: dict = {}  # dask key -> (future, cache key, scattered)
        self.exclusive_running = False
        self.done_count = 0
        self.bar = None
        self.version = None

    # ---- planning ---------------------------------------------------------------------------
    def _spec(self, paper):
        return ContextSpec(paper, self.profile, self.index, self.override,
                           None if self.ship else str(self.cache.root))

    def record(self, task: Task, job: Job) -> None:
        """Called by :class:`PlanContext` for every computation a module asks for that is missing."""
        job.waiting.add(task.key)
        self._add(task, job)

    def _add(self, task: Task, job: Job | None, parent: str | None = None) -> _TS:
        ts = self.tasks.get(task.key)
        if ts is not None and ts.status not in ("held", "dropped"):
            return ts
        if ts is None and self.cache.available(task.entry):
            ts = self.tasks[task.key] = _TS(task, "done", job)  # nested, and cached already
            return ts
        ts = self.tasks[task.key] = _TS(task, "held" if task.captured else "queued", job,
                                       attempt=ts.attempt if ts else 0, counted=ts.counted if ts else False)
        if ts.status == "queued":
            self._enqueue(ts)
        return ts

    def _enqueue(self, ts: _TS) -> None:
        ts.status = "queued"
        (self.xqueue if ts.task.entry.exclusive else self.queue).append(ts.task.key)
        if not ts.counted and self.bar is not None:
            ts.counted = True
            self.bar.total += 1
            self.bar.refresh()

    def _ready(self, job: Job) -> bool:
        if job.status == "new":
            return True
        return job.status == "blocked" and all(self.tasks[k].status in FINISHED for k in job.waiting)

    def _plan(self, job: Job) -> None:
        if job.status == "blocked" and job.planned_at == self.done_count:
            stuck = sorted(self.tasks[k].task.entry.name for k in job.waiting)
            raise RuntimeError(f"{job.paper}/{job.name}: no progress (waiting for {stuck}); please report this")
        ctx = PlanContext(job.paper, self.profile, self.out_dir, planner=self, module=job, spec=self._spec(job.paper),
                          cache=self.cache, index=self.index, code=self.override)
        job.waiting = set()
        job.planned_at = self.done_count
        t0 = time.perf_counter()
        try:
            claims = job.mod.run(ctx)
            blocked = bool(contains_pending(claims))  # claims built from placeholders (never used)
        except NotReady:
            blocked = True
        if blocked:
            _close_figures()
            job.status = "blocked"
            if not job.waiting:
                raise RuntimeError(f"{job.paper}/{job.name} stopped on a value no computation produces") from None
            return
        job.run_s = time.perf_counter() - t0
        job.claims = claims
        job.status = "done"
        self._log(f"[{job.paper}] {job.name} ({self.profile}) done")

    # ---- execution --------------------------------------------------------------------------
    def _submit(self) -> None:
        if self.exclusive_running:
            return
        if not self.running and self.xqueue:  # the cluster is idle: an exclusive task goes first
            self._submit_one(self.tasks[self.xqueue.popleft()])
            self.exclusive_running = True
            return
        while self.queue:
            self._submit_one(self.tasks[self.queue.popleft()])
        if not self.running and self.xqueue:
            self._submit_one(self.tasks[self.xqueue.popleft()])
            self.exclusive_running = True

    def _submit_one(self, ts: _TS) -> None:
        ts.attempt += 1
        entry = ts.task.entry
        dask_key = entry.stem if ts.attempt == 1 else f"{entry.stem}~{ts.attempt}"
        deps = {}
        if self.ship:
            for k in ts.asked:
                other = self.tasks.get(k)
                if other is not None and other.status == "done":
                    blob = self.cache.load_bytes(other.task.entry)
                    if blob is not None:
                        deps[k] = blob
        payload = ts.task.fn_blob
        scattered = None
        if len(payload) + sum(map(len, deps.values())) > SCATTER_BYTES:
            scattered = self.client.scatter([payload, deps], hash=False)
            payload, deps = scattered
        fut = self.client.submit(_guarded_execute, payload, deps, self.version, key=dask_key, retries=2, pure=False)
        ts.status = "running"
        self.running[dask_key] = (fut, entry.key, scattered)

    def _finish(self, ts: _TS) -> None:
        for p in list(ts.parents):
            parent = self.tasks[p]
            parent.waiting_on.discard(ts.task.key)
            if parent.status == "waiting" and not parent.waiting_on:
                self._enqueue(parent)
        ts.parents.clear()

    def _nested(self, tasks, ts: _TS) -> list[_TS]:
        return [self._add(t, ts.job) for t in tasks]

    def _handle(self, fut) -> None:
        _, key, scattered = self.running.pop(fut.key)
        ts = self.tasks[key]
        name = ts.task.entry.name
        if ts.task.entry.exclusive:
            self.exclusive_running = False
        if fut.status != "finished":
            exc = fut.exception() if fut.status == "error" else "cancelled"
            raise TaskError(f"{name}: the computation was lost on the Dask cluster ({type(exc).__name__}: {exc})")
        res = fut.result()
        fut.release()
        del scattered
        kind = res[0]
        if kind == "error":
            raise TaskError(f"{name} failed on a Dask worker:\n{res[1]}")
        if kind == "ok":
            _, blob, seconds, nested, asked = res
            self.cache.store(ts.task.entry, blob, seconds)
            ts.status = "done"
            ts.asked = tuple(asked)
            self.done_count += 1
            if ts.job is not None:
                ts.job.compute_s += seconds
            if self.bar is not None:
                self.bar.update(1)
            self._nested(nested, ts)
            self._finish(ts)
        elif kind == "missing":
            _, nested, asked = res
            ts.asked = tuple(asked)
            kids = self._nested(nested, ts)
            missing = frozenset(k.task.key for k in kids)
            if missing == ts.last_missing and ts.last_done == self.done_count:
                raise RuntimeError(f"{name}: no progress on its nested computations {sorted(k.task.entry.name for k in kids)}")
            ts.last_missing, ts.last_done = missing, self.done_count
            ts.waiting_on = {k.task.key for k in kids if k.status not in FINISHED}
            for k in ts.waiting_on:
                self.tasks[k].parents.add(key)
            if ts.waiting_on:
                ts.status = "waiting"
            else:
                self._enqueue(ts)
        elif kind == "stale":
            _, nested, asked = res
            ts.status = "dropped"
            self._nested(nested, ts)
            self._finish(ts)
        else:  # pragma: no cover
            raise TaskError(f"{name}: unexpected task result {kind!r}")

    def _log(self, msg: str) -> None:
        if self.bar is not None and not self.bar.disable:
            self.bar.write(msg)
        else:
            self.log(msg)

    def run(self, jobs: list[Job]) -> None:
        """Plan and execute ``jobs`` until every module has produced its claims."""
        from tqdm.auto import tqdm

        self.version = check_workers(self.client)["code_version"]
        self.bar = tqdm(total=0, unit="task", desc=self.desc, disable=self.progress is False, dynamic_ncols=True)
        try:
            while True:
                if not self.exclusive_running:
                    for job in jobs:
                        if job.status != "done" and self._ready(job):
                            self._plan(job)
                self._submit()
                if not self.running:
                    if all(j.status == "done" for j in jobs):
                        break
                    if self.queue or self.xqueue or any(self._ready(j) for j in jobs if j.status != "done"):
                        continue
                    waiting = sorted(ts.task.entry.name for ts in self.tasks.values() if ts.status not in FINISHED)
                    raise RuntimeError(f"validation stuck with nothing running; waiting: {waiting}")
                done, _ = wait([f for f, _, _ in self.running.values()], return_when="FIRST_COMPLETED")
                for fut in done:
                    self._handle(fut)
        finally:
            self.bar.close()
            for fut, _, _ in self.running.values():
                with contextlib.suppress(Exception):
                    fut.cancel()
            self.running.clear()


def _close_figures() -> None:
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
