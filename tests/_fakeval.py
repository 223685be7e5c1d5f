"""Fake validation packages for the runner tests: tiny modules that run in milliseconds, log every
computation they execute (tag, PID, start/end time) to a file, and exercise what real modules do:
shared runs, a closure capturing a run (``summarize``), a nested search that trains inside a cached
computation (like spec L13 d), a wall-clock (exclusive) task, failing claims, slow computations.

``write_package(root, log)`` writes a package ``fakeval_<hex>`` (papers ``alpha``, ``beta``,
``slow``) under ``root``; ``patch_runner`` points the runner's ``available_papers``/``discover``
at it; ``launcher`` writes a script doing the same in a subprocess, then ``refimpl.cli.main``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import textwrap
import uuid
from pathlib import Path

COMMON = '''
import os
import time

import numpy as np

LOG = {log!r}


def log(tag):
    with open(LOG, "a") as fh:
        fh.write(f"{{tag}} {{os.getpid()}} {{time.time():.6f}}\\n")


def train(seed, n=30, sleep=0.0, kill_once=None):
    """A small deterministic computation standing in for a training run."""
    log(f"train:{{seed}}:start")
    if kill_once is not None and not os.path.exists(kill_once):
        open(kill_once, "w").close()
        os.kill(os.getpid(), 9)  # the worker dies mid-task (first attempt only)
    if sleep:
        time.sleep(sleep)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n)) / np.sqrt(n)
    w = rng.standard_normal(n)
    for _ in range(300):
        w = np.tanh(a @ w + 0.1 * w)
    log(f"train:{{seed}}:end")
    return {{"seed": seed, "w": w, "loss": float(w @ w)}}


def fit(ctx, seed, **kw):
    return ctx.cached("fake/train", {{"seed": seed, **kw}}, lambda: train(seed, **kw))


def search(fit, seeds, threshold):
    """Like the L13d scan: each run is used before the next is asked for."""
    log("search:start")
    out = {{}}
    for s in seeds:
        r = fit(s)
        out[s] = round(r["loss"], 12)
        if r["loss"] > threshold:
            break
    log("search:end")
    return out


def nap(i, seconds):
    log(f"nap:{{i}}:start")
    time.sleep(seconds)
    log(f"nap:{{i}}:end")
    return i
'''

RUNS = '''
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from refimpl.core.claims import Claim, verdict
from {pkg}.alpha._common import fit, log

ORDER = 1
SEEDS = {{"quick": (0, 1, 2), "full": (0, 1, 2, 6)}}


def summarize(runs):
    log("summarize:start")
    out = {{"sum": sum(r["loss"] for r in runs), "w0": np.array([r["w"][0] for r in runs])}}
    log("summarize:end")
    return out


def run(ctx):
    seeds = SEEDS[ctx.profile]
    runs = [fit(ctx, s) for s in seeds]
    total = ctx.cached("fake/total", {{"seeds": seeds}}, lambda: summarize(runs))
    fig, ax = plt.subplots()
    ax.plot([r["loss"] for r in runs], color="C0")
    name = ctx.save_figure(fig, "runs")
    return [Claim("F1", "the losses are finite", "fake ref 1", f"sum of losses {{total['sum']:.12g}} ({{ctx.profile}})",
                  "finite", verdict(bool(np.isfinite(total["sum"]))), figure=name, numbers=total)]
'''

SEARCH = '''
from refimpl.core.claims import Claim
from {pkg}.alpha._common import fit, search

ORDER = 2


def run(ctx):
    seeds = [0, 3, 4, 5]
    res = ctx.cached("fake/search", {{"seeds": seeds, "threshold": 1e9}},
                     lambda: search(lambda s: fit(ctx, s), seeds, 1e9))
    return [Claim("F2", "a scan over runs", "fake ref 2", f"losses {{res}}", "reported", "info", numbers={{"res": res}})]
'''

TIMED = '''
from refimpl.core.claims import Claim
from {pkg}.alpha._common import log

ORDER = 3


def timed(seconds):
    import time

    log("timed:start")
    time.sleep(seconds)
    log("timed:end")
    return {{"ok": True}}


def run(ctx):
    t = ctx.cached("fake/timed", {{"s": 0.3}}, lambda: timed(0.3), exclusive=True)
    return [Claim("F3", "a wall-clock measurement", "fake ref 3", f"ok {{t['ok']}}", "ok", "pass")]
'''

FAILS = '''
from refimpl.core.claims import Claim
from {pkg}.alpha._common import fit

ORDER = 1


def run(ctx):
    r = fit(ctx, 0)
    return [Claim("B1", "a claim that fails", "fake ref B", f"loss {{r['loss']:.6g}}", "loss < 0", "fail"),
            Claim("B2", "a claim that passes", "fake ref B", "ok", "ok", "pass")]
'''

SLEEPY = '''
from refimpl.core.claims import Claim
from {pkg}.alpha._common import nap

ORDER = 1


def run(ctx):
    out = [ctx.cached("fake/nap", {{"i": i}}, lambda i=i: nap(i, 0.4)) for i in range(12)]
    return [Claim("S1", "naps", "fake ref S", f"{{sum(out)}}", "66", "pass" if sum(out) == 66 else "fail")]
'''

PAPERS = {"alpha": {"runs": RUNS, "search": SEARCH, "timed": TIMED}, "beta": {"fails": FAILS}, "slow": {"sleepy": SLEEPY}}


def write_package(root, log, papers=None) -> str:
    """Write a fake validation package under ``root``; returns its (unique) name."""
    pkg = f"fakeval_{uuid.uuid4().hex[:10]}"
    base = Path(root) / pkg
    base.mkdir(parents=True)
    (base / "__init__.py").write_text("")
    for paper, mods in (papers or PAPERS).items():
        (base / paper).mkdir()
        (base / paper / "__init__.py").write_text("")
        for name, src in mods.items():
            (base / paper / f"{name}.py").write_text(textwrap.dedent(src).format(pkg=pkg, log=str(log)))
    (base / "alpha").mkdir(exist_ok=True)
    (base / "alpha" / "__init__.py").write_text("")
    (base / "alpha" / "_common.py").write_text(COMMON.format(log=str(log)))
    return pkg


def fake_available(pkg):
    def available_papers():
        mod = importlib.import_module(pkg)
        return sorted(m.name for m in pkgutil.iter_modules(mod.__path__) if m.ispkg)

    return available_papers


def fake_discover(pkg):
    def discover(paper):
        p = importlib.import_module(f"{pkg}.{paper}")
        mods = [importlib.import_module(f"{pkg}.{paper}.{i.name}") for i in pkgutil.iter_modules(p.__path__)
                if not i.name.startswith("_")]
        return sorted([m for m in mods if callable(getattr(m, "run", None))],
                      key=lambda m: (getattr(m, "ORDER", 100), m.__name__))

    return discover


def patch_runner(monkeypatch, pkg) -> None:
    from refimpl.validation import runner

    monkeypatch.setattr(runner, "available_papers", fake_available(pkg))
    monkeypatch.setattr(runner, "discover", fake_discover(pkg))


def forget(pkg) -> None:
    """Drop the package's modules from sys.modules (after editing its files)."""
    for name in [m for m in sys.modules if m == pkg or m.startswith(pkg + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


LAUNCHER = '''
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})

if __name__ == "__main__":  # (Dask's worker processes import this file again)
    import _fakeval
    from refimpl.validation import runner
    runner.available_papers = _fakeval.fake_available({pkg!r})
    runner.discover = _fakeval.fake_discover({pkg!r})
    from refimpl.cli import main
    code = main(sys.argv[1:])
    if "--report-modules" in {flags!r}:
        print("IMPORTED", sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")))
    sys.exit(code)
'''


def launcher(root, pkg, flags=()) -> Path:
    path = Path(root) / f"launch_{pkg}.py"
    path.write_text(LAUNCHER.format(root=str(root), tests=str(Path(__file__).parent), pkg=pkg, flags=list(flags)))
    return path


def executions(log) -> list[str]:
    """Tags of the computations that finished (``train:0``, ``summarize``, ...), in order."""
    try:
        lines = Path(log).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [line.split()[0].rsplit(":", 1)[0] for line in lines if line.split()[0].endswith(":end")]


def intervals(log) -> dict[str, list[tuple[float, float]]]:
    """tag -> [(start, end)] from the log (matched per PID)."""
    starts, out = {}, {}
    for line in Path(log).read_text().splitlines():
        tag, pid, t = line.split()
        name, _, edge = tag.rpartition(":")
        if edge == "start":
            starts[(name, pid)] = float(t)
        elif edge == "end" and (name, pid) in starts:
            out.setdefault(name, []).append((starts.pop((name, pid)), float(t)))
    return out


# ---- run inside Dask workers (client.run) ----------------------------------------------------------

_SAVED: dict = {}


def forbid_writes_under(folder) -> bool:
    """Make every write into ``folder`` (and below) raise PermissionError in this process."""
    import builtins
    import os

    root = str(Path(folder).resolve())

    def inside(path) -> bool:
        try:
            return str(Path(os.fsdecode(path)).resolve()).startswith(root)
        except TypeError:
            return False

    if not _SAVED:
        _SAVED.update(open=builtins.open, os_open=os.open, replace=os.replace, rename=os.rename)

    def guarded_open(file, mode="r", *a, **k):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and inside(file):
            raise PermissionError(f"worker wrote into the cache: {file}")
        return _SAVED["open"](file, mode, *a, **k)

    def guarded_os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise PermissionError(f"worker wrote into the cache: {path}")
        return _SAVED["os_open"](path, flags, *a, **k)

    def guarded_move(src, dst, *a, **k):
        if inside(dst):
            raise PermissionError(f"worker wrote into the cache: {dst}")
        return _SAVED["replace"](src, dst, *a, **k)

    builtins.open, os.open, os.replace, os.rename = guarded_open, guarded_os_open, guarded_move, guarded_move
    return True


def allow_writes() -> bool:
    import builtins
    import os

    if _SAVED:
        builtins.open, os.open, os.replace, os.rename = (_SAVED["open"], _SAVED["os_open"], _SAVED["replace"],
                                                         _SAVED["rename"])
    return True


def default_sigint():
    """``preexec_fn`` of a child that must see Ctrl-C: SIGINT back to its default. A test run started
    in the background of a non-interactive shell inherits SIGINT ignored, and a Python started with
    it ignored never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
