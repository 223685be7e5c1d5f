"""The validation runner behind ``refimpl validate`` (DESIGN.md, "Validation").

Each module in ``validation/<paper>/`` defines ``run(ctx) -> list[Claim]`` (and optionally
``ORDER``, an int that sorts modules). The runner imports them, calls ``run`` with a context, and
writes into the output folder:

- ``report.md``: one table per paper — claim, spec reference, the paper's value, measured, expected,
  verdict, figure;
- ``report.html``: the same as one self-contained page, a card per claim (:mod:`refimpl.validation.html`);
- ``results.json``: the same claims with their numbers, the profile, seeds and software versions,
  everything both reports are drawn from (``refimpl report --from`` redraws them);
- the PNG figures the modules saved through ``ctx.save_figure``.

A run over some papers or modules merges into the folder's existing report
(:mod:`refimpl.validation.report`); a run of everything writes a fresh one. Expensive computations go through ``ctx.cached``
(:mod:`refimpl.validation.context`), stored in the cache folder (``--cache-dir``, default
``<out>/.cache``; :mod:`refimpl.validation.cache`) under a key that hashes the code they depend
on (:mod:`refimpl.validation.codedeps`), so a rerun reuses them and an interrupted run resumes.

Engines: without ``workers``/``scheduler``/``scheduler_file``/``client`` the modules run one after
the other in this process, every computation inline (``distributed`` is never imported). With
one of them the modules are planned on this process and their computations run on Dask workers
(:mod:`refimpl.validation.engine`). The results are the same bit for bit, up to the BLAS
thread count: Dask workers run BLAS on one thread, the serial run on the process's default, and a
BLAS-heavy result (yang2024/y13) can differ in its last bits between the two (the reported numbers
do not); a serial run with ``OMP_NUM_THREADS=1`` gives the workers' bytes exactly.

The output folder is checked and locked before any work (:mod:`refimpl.validation.outdir`).
Ctrl-C raises :class:`ValidationInterrupted` after the lock is released; every cache entry
written so far is kept, so running the same command again resumes.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import platform
import sys
import time
from pathlib import Path

from refimpl.core.claims import VERDICTS, Claim, verdict  # noqa: F401  (re-exported for modules)
from refimpl.validation import report as _report
from refimpl.validation.cache import Cache
from refimpl.validation.codedeps import CodeIndex, code_version  # noqa: F401  (re-exported)
from refimpl.validation.context import Context  # noqa: F401  (re-exported for modules and tests)
from refimpl.validation.jsonable import jsonable as _jsonable  # noqa: F401
from refimpl.validation.jsonable import strict as _strict  # noqa: F401
from refimpl.validation.outdir import LockHeld, OutputLock, check_dir  # noqa: F401

PROFILES = ("quick", "full")
OPT_IN = ("robustness",)  # groups a run covers only when named (--paper robustness), never by default


class ValidationInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: what was kept and how to resume, in one line (``str(exc)``)."""

    def __init__(self, written: int, total: int, cache_dir: Path):
        self.written, self.total, self.cache_dir = written, total, Path(cache_dir)
        super().__init__(f"interrupted: kept the {written} cache entr{'y' if written == 1 else 'ies'} this run wrote "
                         f"({total} in {cache_dir}); run the same command again to resume from them")


def available_papers() -> list[str]:
    from refimpl import validation

    return sorted(m.name for m in pkgutil.iter_modules(validation.__path__) if m.ispkg)


def discover(paper: str) -> list:
    """The validation modules of ``paper`` (``refimpl.validation.<paper>.*`` with a ``run``), in order."""
    papers = available_papers()
    if paper not in papers:
        raise ValueError(f"unknown paper {paper!r}; allowed: {papers}")
    pkg = importlib.import_module(f"refimpl.validation.{paper}")
    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"refimpl.validation.{paper}.{info.name}")
        if callable(getattr(mod, "run", None)):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def versions() -> dict:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("numpy", "scipy", "numba", "matplotlib", "sklearn"):
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            out[name] = None
    import refimpl

    out["refimpl"] = refimpl.__version__
    return out


def _short(mod) -> str:
    return mod.__name__.rsplit(".", 1)[-1]


def select(papers: list[str] | None, only: list[str] | None) -> tuple[dict, dict, dict]:
    """Validate the selection: ({paper: [modules to run]}, scope {paper: None | set}, order)."""
    allowed = available_papers()
    papers = [p for p in allowed if p not in OPT_IN] if not papers else list(papers)
    for p in papers:
        if p not in allowed:
            raise ValueError(f"unknown paper {p!r}; allowed: {allowed}")
    chosen, scope, order = {}, {}, {}
    for paper in papers:
        mods = discover(paper)
        names = [_short(m) for m in mods]
        order[paper] = names
        if only:
            unknown = [o for o in only if o not in names]
            if unknown:
                raise ValueError(f"unknown validation module(s) {unknown} for {paper}; allowed: {names}")
            mods = [m for m in mods if _short(m) in only]
            scope[paper] = {_short(m) for m in mods}
        else:
            scope[paper] = None
        chosen[paper] = mods
    return chosen, scope, order


def run_validation(papers: list[str] | None, profile: str, out_dir, *, use_cache: bool = True,
                   progress: bool | None = None, log=print, only: list[str] | None = None, cache_dir=None,
                   workers: int | None = None, scheduler: str | None = None, scheduler_file: str | None = None,
                   client=None) -> dict[str, list[Claim]]:
    """Run every module of ``papers`` (all when None; with ``only``, just the modules of those
    names), write (merge) report.md, report.html and results.json, and return this run's claims by paper.

    ``workers`` (a local Dask cluster of that many processes), ``scheduler`` / ``scheduler_file``
    (an existing cluster) or ``client`` (a ``distributed.Client``) run the computations on Dask."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILES)}, got {profile!r}")
    engines = [x for x in (workers, scheduler, scheduler_file, client) if x is not None]
    if len(engines) > 1:
        raise ValueError("give at most one of workers, scheduler, scheduler_file and client")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if scheduler_file is not None and not Path(scheduler_file).is_file():
        raise ValueError(f"--scheduler-file {scheduler_file}: no such file")
    chosen, scope, order = select(papers, only)
    out_dir = check_dir(out_dir, "--out")
    cache_dir = Path(cache_dir if cache_dir is not None else out_dir / ".cache")
    if cache_dir.exists() and not cache_dir.is_dir():
        raise ValueError(f"--cache-dir {cache_dir} is an existing file, not a folder")
    merging = bool(papers) or bool(only)
    if merging:
        _report.load_results(out_dir)  # a results.json of an unknown version: refused before any work
    with OutputLock(out_dir, log=log):  # a held lock is refused before the cache folder is created
        cache = Cache(check_dir(cache_dir, "--cache-dir"), use_cache=use_cache)
        try:
            index = CodeIndex.build()
            t0 = time.perf_counter()
            if engines:
                done, engine = _run_dask(chosen, profile, out_dir, cache, index, progress, log,
                                         workers=workers, scheduler=scheduler, scheduler_file=scheduler_file,
                                         client=client)
            else:
                done, engine = _run_serial(chosen, profile, out_dir, cache, index, progress, log), {"kind": "serial"}
            engine["wall_s"] = round(time.perf_counter() - t0, 2)
            engine["cache_entries_written"] = cache.written
            new = {p: {name: _report.rows_of(claims, name) for (pp, name, claims, _) in done if pp == p}
                   for p in chosen}
            timings = {f"refimpl.validation.{p}.{name}": round(s, 2) for (p, name, _, s) in done}
            # a run of everything writes a fresh report; a run of some papers or modules merges
            _report.write(out_dir, new=new, scope=scope, module_order=order, profile=profile,
                          code=index.tree, timings=timings, versions=versions(), engine=engine,
                          merge_into_existing=merging)
        except KeyboardInterrupt:
            raise ValidationInterrupted(cache.written, cache.count(), cache_dir) from None
    return {p: [c for (pp, _, claims, _) in done if pp == p for c in claims] for p in chosen}


def _run_serial(chosen, profile, out_dir, cache, index, progress, log) -> list:
    done = []
    for paper, mods in chosen.items():
        for mod in mods:
            ctx = Context(paper, profile, out_dir, progress=progress, cache=cache, index=index)
            t0 = time.perf_counter()
            log(f"[{paper}] {_short(mod)} ({profile}) ...")
            claims = mod.run(ctx)
            seconds = time.perf_counter() - t0
            log(f"[{paper}]   done in {seconds:.1f} s")
            done.append((paper, _short(mod), claims, seconds))
    return done


def dask_engine():
    """``refimpl.validation.engine`` (imports ``distributed``), or ``ValueError`` saying which extra."""
    try:
        from refimpl.validation import engine
    except ImportError as exc:
        raise ValueError(f"running on Dask needs dask[distributed] (pip install 'refimpl[validate]' or "
                         f"'refimpl[distributed]'): {exc}") from None
    return engine


def dask_client(client, workers, scheduler, scheduler_file):
    """A context manager giving the Dask client to run on: ``client`` as given, else a local cluster
    of ``workers`` processes, else the cluster at ``scheduler`` / ``scheduler_file``."""
    E = dask_engine()
    if client is not None:
        return contextlib.nullcontext(client)
    if workers is not None:
        return E.local_client(workers)
    return E.remote_client(scheduler, scheduler_file)


def _run_dask(chosen, profile, out_dir, cache, index, progress, log, *, workers, scheduler, scheduler_file,
              client) -> tuple[list, dict]:
    import socket

    E = dask_engine()
    with dask_client(client, workers, scheduler, scheduler_file) as c:
        hosts = set(c.run(socket.gethostname).values())
        local = hosts <= {socket.gethostname()}
        jobs = [E.Job(paper, mod, _short(mod)) for paper, mods in chosen.items() for mod in mods]
        eng = E.Engine(c, cache=cache, index=index, out_dir=out_dir, profile=profile, progress=progress, log=log,
                       local=local)
        eng.run(jobs)
        n = len(c.scheduler_info().get("workers", {}))
    info = {"kind": "dask", "workers": n, "local_cluster": workers is not None,
            "tasks": sum(ts.status == "done" and ts.attempt > 0 for ts in eng.tasks.values())}
    return [(j.paper, j.name, j.claims, j.compute_s + j.run_s) for j in jobs], info


def write_report(results: dict[str, list[Claim]], profile: str, out_dir, code: str, timings: dict) -> None:
    """Write report.md, report.html and results.json with exactly ``results`` (no merge, no module names)."""
    new = {p: {None: _report.rows_of(cs, None)} for p, cs in results.items()}
    _report.write(Path(out_dir), new=new, scope={p: None for p in results}, module_order={}, profile=profile,
                  code=code, timings=timings, versions=versions(), engine={}, merge_into_existing=False)
