"""Validation on Dask (refimpl.validation.engine): the same results, bit for bit, as the serial
run; one execution per cache key; exclusive tasks alone; workers checked before anything is
submitted, pinned to one thread, never writing the cache; a killed worker recovered; an
interrupted run resumed. Fake validation packages (tests/_fakeval.py) keep the runs short."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

import _fakeval as F

from refimpl.validation import engine as E
from refimpl.validation import plan, runner

ROOT = Path(__file__).resolve().parents[1]
CLIENT_ENV = {k: os.environ.get(k) for k in E.worker_env()}  # before any cluster starts

GAMMA = '''
from refimpl.core.claims import Claim
from {pkg}.alpha._common import fit
from {pkg}.alpha.timed import timed

ORDER = 1


def run(ctx):
    runs = [fit(ctx, s, sleep=0.25) for s in range(10, 14)]
    t = ctx.cached("fake/timed", {{"s": 0.5}}, lambda: timed(0.5), exclusive=True)
    more = [fit(ctx, s, sleep=0.25) for s in range(14, 16)]
    total = sum(r["loss"] for r in runs + more)
    return [Claim("G1", "mixed", "fake ref G", f"{{total:.12g}} {{t['ok']}}", "ok", "pass")]
'''

KILL = '''
from refimpl.core.claims import Claim
from {pkg}.alpha._common import fit

ORDER = 1
MARKER = {marker!r}


def run(ctx):
    runs = [fit(ctx, 20, kill_once=MARKER)] + [fit(ctx, s) for s in (21, 22, 23)]
    return [Claim("K1", "survives a worker's death", "fake ref K", f"{{sum(r['loss'] for r in runs):.12g}}", "ok", "pass")]
'''


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory):
    """A folder on sys.path for fake packages, there before any worker process is spawned."""
    root = tmp_path_factory.mktemp("fakepkgs")
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


@pytest.fixture(scope="module")
def inproc(pkgs):
    with E.local_client(2, processes=False) as client:
        yield client


@pytest.fixture(scope="module")
def procs(pkgs):
    with E.local_client(2) as client:
        yield client


@pytest.fixture
def fake(pkgs, tmp_path, monkeypatch):
    log = tmp_path / "executions.log"
    pkg = F.write_package(pkgs, log)
    F.patch_runner(monkeypatch, pkg)
    yield pkg, log
    F.forget(pkg)


def _quiet(*a, **k):
    pass


def _claims(out):
    res = json.loads((Path(out) / "results.json").read_text())
    return res["papers"], res


def _values(out):
    """The cached values, re-pickled with the wall-clock time of each training run set to 0 (a
    Trajectory records how long its run took, which differs between any two runs)."""
    import dataclasses
    import pickle

    from refimpl.core.trajectory import Trajectory

    def timeless(x):
        if isinstance(x, Trajectory):
            return dataclasses.replace(x, wall_s=0.0)
        if isinstance(x, dict):
            return {k: timeless(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(timeless(v) for v in x)
        return x

    return {p.name: pickle.dumps(timeless(pickle.loads(p.read_bytes())))
            for p in (Path(out) / ".cache").glob("*.pkl")}


def test_dask_run_equals_serial_bit_for_bit_and_runs_each_key_once(fake, tmp_path, inproc):
    pkg, log = fake
    runner.run_validation(["alpha", "beta"], "quick", tmp_path / "serial", log=_quiet)
    serial = F.executions(log)
    log.write_text("")
    runner.run_validation(["alpha", "beta"], "quick", tmp_path / "dask", log=_quiet, client=inproc, progress=False)
    dask = F.executions(log)
    # train:0 is asked for by three modules (runs, search's nested scan, beta's fails): it ran once
    assert sorted(dask) == sorted(serial) and dask.count("train:0") == 1 and len(dask) == len(set(dask)) == 9
    a, ra = _claims(tmp_path / "serial")
    b, rb = _claims(tmp_path / "dask")
    assert a == b
    assert _values(tmp_path / "serial") == _values(tmp_path / "dask")  # every cached value, byte for byte
    assert rb["engine"]["kind"] == "dask" and rb["engine"]["tasks"] == 9 and ra["engine"]["kind"] == "serial"


def test_values_are_shipped_when_workers_may_not_read_the_cache(fake, tmp_path, inproc):
    """--no-cache: the client ships the values a task needs (as for a cluster without a shared disk)."""
    pkg, log = fake
    runner.run_validation(["alpha"], "quick", tmp_path / "serial", log=_quiet)
    n = len(F.executions(log))
    runner.run_validation(["alpha"], "quick", tmp_path / "serial", log=_quiet, client=inproc, progress=False,
                          use_cache=False)
    assert sorted(F.executions(log)[n:]) == sorted(F.executions(log)[:n])  # all again, each once
    assert _claims(tmp_path / "serial")[0]["alpha"][1]["measured"].startswith("losses {0: 2.37806302")


def test_exclusive_tasks_run_alone(fake, pkgs, tmp_path, inproc, monkeypatch):
    log = tmp_path / "gamma.log"
    pkg = F.write_package(pkgs, log, papers={"alpha": {"timed": F.TIMED}, "gamma": {"mixed": GAMMA}})
    F.patch_runner(monkeypatch, pkg)
    runner.run_validation(["gamma"], "quick", tmp_path / "out", log=_quiet, client=inproc, progress=False)
    spans = F.intervals(log)
    (timed,) = spans["timed"]
    others = [s for name, ss in spans.items() if name != "timed" for s in ss]
    assert len(others) == 6
    assert all(end <= timed[0] or start >= timed[1] for start, end in others), (timed, others)
    # the sleeping runs did overlap each other (two workers): the test could see an overlap
    assert any(a[0] < b[1] and b[0] < a[1] for a in others for b in others if a != b)
    F.forget(pkg)


def test_workers_running_other_code_are_refused_before_anything_is_submitted(fake, tmp_path, inproc, monkeypatch):
    pkg, log = fake
    real = plan.fingerprint()
    monkeypatch.setattr(E, "fingerprint", lambda: {**real, "code_version": "0123456789abcdef"})
    with pytest.raises(E.EngineError) as e:
        runner.run_validation(["alpha"], "quick", tmp_path / "out", log=_quiet, client=inproc, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "runs a different code version" in msg and "refusing to submit" in msg
    assert F.executions(log) == [] and not list((tmp_path / "out" / ".cache").glob("*"))
    # a worker joining later with other code refuses each task itself
    assert E._guarded_execute(b"", {}, "0123456789abcdef")[0] == "error"


def test_an_interrupted_dask_run_resumes_with_what_is_missing(fake, tmp_path, inproc, monkeypatch):
    pkg, log = fake
    handled = []
    real = E.Engine._handle

    def handle(self, fut):
        real(self, fut)
        handled.append(fut.key)
        if len(handled) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(E.Engine, "_handle", handle)
    with pytest.raises(runner.ValidationInterrupted) as e:
        runner.run_validation(["alpha"], "quick", tmp_path / "out", log=_quiet, client=inproc, progress=False)
    written = e.value.written
    assert written >= 2 and len(_values(tmp_path / "out")) == written
    assert "run the same command again to resume" in str(e.value)
    first = F.executions(log)
    monkeypatch.setattr(E.Engine, "_handle", real)
    runner.run_validation(["alpha"], "quick", tmp_path / "out", log=_quiet, client=inproc, progress=False)
    rerun = F.executions(log)[len(first):]
    assert len(rerun) == 9 - written  # only the computations not cached when interrupted
    assert len(_values(tmp_path / "out")) == 9


def test_local_workers_are_pinned_to_one_thread(procs):
    info = procs.run(plan.pinning)
    assert len(info) == 2
    for w in info.values():
        assert w["blas"] and set(w["blas"]) == {1} and w["numba"] == 1
        assert w["env"]["OMP_NUM_THREADS"] == "1" and w["numba_cache_dir"] == E.numba_cache_dir()
    # the client's own environment is left as it was (Dask sets the spawn environment in it)
    assert {k: os.environ.get(k) for k in CLIENT_ENV} == CLIENT_ENV


def test_local_workers_keep_glibcs_dynamic_mmap_threshold(procs):
    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 turns it off: every array above 128 KiB is then
    # mmapped anew and page-faulted on each use (the quick profile's workers spent 97 s in the
    # kernel instead of 18 s, and the run took 194 s instead of 137 s)
    assert set(procs.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()) == {None}


def test_workers_never_write_the_cache(fake, tmp_path, procs):
    pkg, log = fake
    out = tmp_path / "out"
    runner.run_validation(["alpha"], "quick", tmp_path / "serial", log=_quiet)
    assert all(procs.run(F.forbid_writes_under, str(out)).values())
    try:
        runner.run_validation(["alpha", "beta"], "quick", out, log=_quiet, client=procs, progress=False)
    finally:
        procs.run(F.allow_writes)
    sidecars = [json.loads(p.read_text()) for p in (out / ".cache").glob("*.json")]
    assert len(sidecars) == 9 and {s["pid"] for s in sidecars} == {os.getpid()}
    assert _claims(out)[0]["alpha"] == _claims(tmp_path / "serial")[0]["alpha"]
    pids = {line.split()[1] for line in log.read_text().splitlines()[18:]}  # the Dask run's executions
    assert pids and str(os.getpid()) not in pids  # computed in the worker processes


def test_cli_workers_runs_a_local_cluster(fake, pkgs, tmp_path):
    pkg, log = fake
    script = F.launcher(pkgs, pkg, flags=["--report-modules"])
    argv = [sys.executable, str(script), "validate", "--paper", "alpha", "--quiet"]
    res = subprocess.run(argv + ["--out", str(tmp_path / "d"), "--workers", "2"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "'distributed'" in res.stdout  # imported, this time
    res = subprocess.run(argv + ["--out", str(tmp_path / "s")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert _claims(tmp_path / "d")[0] == _claims(tmp_path / "s")[0]
    assert _values(tmp_path / "d") == _values(tmp_path / "s")


def test_a_worker_killed_mid_task_is_recovered(pkgs, tmp_path, procs, monkeypatch):
    numba_threads_before = os.environ.get("NUMBA_NUM_THREADS")
    log = tmp_path / "kill.log"
    marker = tmp_path / "killed-once"
    src = KILL.replace("{marker!r}", repr(str(marker)))
    pkg = F.write_package(pkgs, log, papers={"kappa": {"survive": src}})
    F.patch_runner(monkeypatch, pkg)
    runner.run_validation(["kappa"], "quick", tmp_path / "out", log=_quiet, client=procs, progress=False)
    assert marker.exists()  # a worker died in train(20)
    starts = [line.split()[0] for line in log.read_text().splitlines() if line.startswith("train:20:start")]
    assert len(starts) == 2 and F.executions(log).count("train:20") == 1  # rescheduled, finished once
    dask = _claims(tmp_path / "out")[0]
    runner.run_validation(["kappa"], "quick", tmp_path / "serial", log=_quiet)
    assert dask == _claims(tmp_path / "serial")[0]
    procs.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    # ... without pinning this process's Numba: with its thread pool already running, a changed
    # NUMBA_NUM_THREADS made the next compilation here raise (a serial run after this test did)
    assert os.environ.get("NUMBA_NUM_THREADS") == numba_threads_before
    F.forget(pkg)


def test_ctrl_c_with_local_workers_ends_with_one_line(fake, pkgs, tmp_path):
    """Ctrl-C in a terminal signals the whole process group, workers included: they ignore it,
    the client stops, keeps what was written, and says so in one line."""
    import signal
    import time

    pkg, log = fake
    script = F.launcher(pkgs, pkg)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), "validate", "--paper", "slow", "--out", str(out), "--quiet",
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=F.default_sigint)
    deadline = time.time() + 120
    while len(list((out / ".cache").glob("*.pkl"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "run the same command again to resume" in lines[0], err
    assert not (out / ".refimpl-validate.lock").exists()


def test_huang2023_quick_on_two_workers_equals_serial(tmp_path):
    """The real thing: `refimpl validate --paper huang2023 --profile quick --workers 2` writes the
    results.json of the serial run (timings aside), and the same cached values byte for byte
    (80 s for both runs on the 2-core development machine under a load of ~4)."""
    from refimpl.cli import main

    for name, extra in (("serial", []), ("dask", ["--workers", "2"])):
        assert main(["validate", "--paper", "huang2023", "--profile", "quick", "--out", str(tmp_path / name),
                     "--quiet", *extra]) == 0
    (a, _), (b, rb) = _claims(tmp_path / "serial"), _claims(tmp_path / "dask")
    assert a == b and rb["engine"]["kind"] == "dask" and rb["engine"]["workers"] == 2
    assert _values(tmp_path / "serial") == _values(tmp_path / "dask")


def test_an_existing_cluster_by_address_or_scheduler_file(fake, tmp_path, inproc, capsys):
    import dask

    from refimpl.cli import main

    pkg, log = fake
    runner.run_validation(["alpha"], "quick", tmp_path / "a", log=_quiet, scheduler=inproc.scheduler.address,
                          progress=False)
    n = len(F.executions(log))
    sched = tmp_path / "scheduler.json"
    # (what `dask scheduler --scheduler-file` writes; Client.write_scheduler_file fails once tasks
    # have run: it dumps metrics with tuple keys)
    sched.write_text(json.dumps({"type": "Scheduler", "address": inproc.scheduler.address}))
    runner.run_validation(["alpha"], "quick", tmp_path / "b", log=_quiet, scheduler_file=str(sched), progress=False,
                          cache_dir=tmp_path / "a" / ".cache")
    assert _claims(tmp_path / "a")[0] == _claims(tmp_path / "b")[0]
    assert n == 9 and len(F.executions(log)) == n  # the second run shared the first one's cache
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(["validate", "--paper", "alpha", "--out", str(tmp_path / "c"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("refimpl: error: cannot connect to the Dask scheduler tcp://127.0.0.1:9") and "\n" not in err
