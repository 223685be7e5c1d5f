"""The validation runner without Dask: placeholders, code-scoped cache keys and sidecars, report
merging, the output-folder lock and checks, --strict, Ctrl-C, and no `distributed` import.

Fake validation packages (tests/_fakeval.py) keep every run to a fraction of a second."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import _fakeval as F
import numpy as np
import pytest

from refimpl.cli import main
from refimpl.validation import runner
from refimpl.validation.codedeps import CodeIndex, reach
from refimpl.validation.context import Context
from refimpl.validation.outdir import LOCK_NAME
from refimpl.validation.plan import NotReady, Pending, contains_pending, dumps_value

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def index():
    return CodeIndex.build()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake validation package on sys.path, the runner pointed at it; returns (pkg, log)."""
    root = tmp_path / "pkgs"
    root.mkdir()
    log = tmp_path / "executions.log"
    pkg = F.write_package(root, log)
    monkeypatch.syspath_prepend(str(root))
    F.patch_runner(monkeypatch, pkg)
    yield pkg, log
    F.forget(pkg)


def _quiet(*a, **k):
    pass


# ---- placeholders ---------------------------------------------------------------------------------


USES = {
    "attribute": lambda p: p.history, "item": lambda p: p["x"], "iteration": lambda p: list(p),
    "unpacking": lambda p: (lambda *a: a)(*p), "add": lambda p: p + 1, "radd": lambda p: 1 + p,
    "iadd": lambda p: p.__iadd__(1), "matmul": lambda p: np.eye(2) @ p, "neg": lambda p: -p,
    "compare": lambda p: p < 1, "equality": lambda p: p == 1, "bool": lambda p: bool(p), "if": lambda p: 1 if p else 0,
    "len": lambda p: len(p), "contains": lambda p: 1 in p, "float": lambda p: float(p), "int": lambda p: int(p),
    "index": lambda p: [1, 2][p], "str": lambda p: str(p), "format": lambda p: f"{p:.3f}", "hash": lambda p: {p: 1},
    "call": lambda p: p(), "setattr": lambda p: setattr(p, "a", 1), "hasattr": lambda p: hasattr(p, "tolist"),
    "np.asarray": lambda p: np.asarray(p), "np.array of list": lambda p: np.array([p, p]),
    "np.mean": lambda p: np.mean([p]), "ndarray + p": lambda p: np.ones(3) + p, "ufunc": lambda p: np.isfinite(p),
    "np.float64": lambda p: np.float64(p), "max": lambda p: max(p, 1), "sorted": lambda p: sorted([p, p]),
    "getattr with default": lambda p: getattr(p, "x", None), "dict(**p)": lambda p: dict(**p),
}


@pytest.mark.parametrize("use", sorted(USES))
def test_pending_raises_not_ready_on_any_use(use):
    p = Pending("k" * 24, "li2024/train", "token")
    with pytest.raises(NotReady) as e:
        USES[use](p)
    assert e.value.pending is p
    assert not isinstance(e.value, Exception)  # a module's `except Exception` cannot swallow it


def test_pending_pickles_and_is_found():
    p = Pending("k" * 24, "x", "t")
    q = pickle.loads(pickle.dumps(p))
    assert repr(q) == repr(p) == "<Pending x kkkkkkkk>"
    assert contains_pending({"a": [1, (2, p)]}) == {"k" * 24} and contains_pending({"a": 1}) == set()
    with pytest.raises(NotReady):
        dumps_value({"runs": [p]})  # a value holding a placeholder is never stored
    assert dumps_value({"a": np.arange(3)}) == pickle.dumps({"a": np.arange(3)}, protocol=pickle.HIGHEST_PROTOCOL)


# ---- what a key depends on ------------------------------------------------------------------------


def test_code_units_follow_what_the_computation_reaches(index):
    from refimpl.huang2023 import checks as hchecks
    from refimpl.li2024 import preset
    from refimpl.validation.li2024._common import fitter
    from refimpl.validation.yang2024 import transformer

    ctx = Context("li2024", "quick", "/nonexistent", index=index)
    seen = []
    ctx.cached = lambda name, config, fn, **kw: seen.append(ctx.entry(name, config, fn, **kw))
    fitter(ctx)(preset("tiny"), 0)
    (train,) = seen
    assert list(train.code) == ["refimpl.core", "refimpl.li2024"]
    assert train.fn_code is None  # the fit lambda calls library code only
    h10 = ctx.entry("huang2023/h10", {}, hchecks.measure_h10)
    assert list(h10.code) == ["refimpl.core", "refimpl.huang2023"]
    fig5 = ctx.entry("yang2024/fig5", {"H": 1}, lambda: transformer.fig5_run(None, None, None, False))
    assert list(fig5.code) == ["refimpl.core", "refimpl.experiments", "refimpl.transformer", "refimpl.yang2024"]
    assert fig5.fn_code is not None  # fig5_run is defined in the validation module: its bytecode counts
    explicit = ctx.entry("x", {}, hchecks.measure_h10, code=("refimpl.core", "refimpl.li2024"))
    assert list(explicit.code) == ["refimpl.core", "refimpl.li2024"] and explicit.key != h10.key
    with pytest.raises(ValueError, match=r"unknown refimpl packages \['refimpl.nope'\]"):
        ctx.entry("x", {}, hchecks.measure_h10, code=("refimpl.nope",))
    with pytest.raises(TypeError, match="code must be a tuple"):
        ctx.entry("x", {}, hchecks.measure_h10, code="refimpl.core")


def test_two_lambdas_for_the_same_computation_share_a_key(index):
    """ood.py and deep.py ask for li2024/e1_curves through different lambdas: one entry."""
    from refimpl.li2024 import checks as checks
    from refimpl.li2024 import checks as lchecks

    p, p1, runs, runs1 = {"n": 1}, {"n": 1}, [], []
    ctx = Context("li2024", "quick", "/nonexistent", index=index)
    a = ctx.entry("li2024/e1_curves", {"p": 1}, lambda: [checks.ood_curves(r, p["n"]) for r in runs])
    b = ctx.entry("li2024/e1_curves", {"p": 1}, lambda: [lchecks.ood_curves(r, p1["n"], 0.8) for r in runs1])
    assert a.key == b.key
    assert ctx.entry("li2024/e1_curves", {"p": 2}, lambda: None).key != a.key


def test_editing_a_named_compute_function_changes_the_key(tmp_path, index):
    def load(src, name):
        path = tmp_path / f"{name}.py"
        path.write_text(src)
        ns = {"__name__": name}
        exec(compile(src, str(path), "exec"), ns)
        return ns

    src = "def compute(n):\n    return [i * 2 for i in range(n)]\n\n\ndef figure(ax):\n    ax.plot([1], color='C0')\n"
    a = load(src, "mod_a")
    b = load(src.replace("color='C0'", "color='C3'"), "mod_b")
    c = load(src.replace("i * 2", "i * 3"), "mod_c")
    d = load("\n\n# a comment and blank lines move the code down\n" + src, "mod_d")
    key = {k: reach(lambda f=ns["compute"]: f(3), index).digest() for k, ns in dict(a=a, b=b, c=c, d=d).items()}
    assert key["a"] is not None
    assert key["a"] == key["b"] == key["d"]  # styling and line numbers: same key
    assert key["c"] != key["a"]  # the computation changed


def test_figure_styling_edit_in_a_copy_of_a_real_module_keeps_every_key(tmp_path, index):
    """Copy validation/huang2023/phases.py, change a colour in its figure: every key is unchanged
    (computed without running anything: the planning context records the keys)."""
    pkg = tmp_path / "copies"
    pkg.mkdir()
    src = (ROOT / "validation" / "huang2023" / "phases.py").read_text()
    assert 'ax.plot(x, y, "rx", ms=7)' in src
    (pkg / "phases_orig.py").write_text(src)
    (pkg / "phases_styled.py").write_text(src.replace('ax.plot(x, y, "rx", ms=7)', 'ax.plot(x, y, "bx", ms=9)'))
    sys.path.insert(0, str(pkg))
    try:
        import phases_orig
        import phases_styled

        def keys(mod):
            ctx = Context("huang2023", "quick", tmp_path / "out", index=index)
            out = {}
            ctx.cached = lambda name, config, fn, **kw: out.setdefault(name, ctx.entry(name, config, fn, **kw).key) and \
                Pending(out[name], name, "t")
            with pytest.raises(NotReady):
                mod.run(ctx)
            return out

        a, b = keys(phases_orig), keys(phases_styled)
        assert len(a) == 7 and a == b
    finally:
        sys.path.remove(str(pkg))
        for m in ("phases_orig", "phases_styled"):
            sys.modules.pop(m, None)


def test_figure_styling_edit_leaves_the_runs_cached(fake, tmp_path):
    """A fake module runs, its figure's colour is edited in place: the rerun computes nothing and
    redraws the figure; an edit of its computing function recomputes just that entry."""
    pkg, log = fake
    out = tmp_path / "out"
    runner.run_validation(["alpha"], "quick", out, log=_quiet, only=["runs"])
    first = F.executions(log)
    assert sorted(first) == ["summarize", "train:0", "train:1", "train:2"]
    png = (out / "alpha_runs.png").read_bytes()
    mod = Path(sys.modules[f"{pkg}.alpha.runs"].__file__)
    mod.write_text(mod.read_text().replace('color="C0"', 'color="C3"'))
    F.forget(pkg)
    runner.run_validation(["alpha"], "quick", out, log=_quiet, only=["runs"])
    assert F.executions(log) == first  # nothing recomputed
    assert (out / "alpha_runs.png").read_bytes() != png  # the figure was redrawn in the new colour
    mod.write_text(mod.read_text().replace('r["w"][0] for r in runs', 'r["w"][1] for r in runs'))
    F.forget(pkg)
    runner.run_validation(["alpha"], "quick", out, log=_quiet, only=["runs"])
    assert F.executions(log) == first + ["summarize"]  # only the edited computation ran again


# ---- the cache folder -----------------------------------------------------------------------------


def test_sidecars_info_and_prune(fake, tmp_path, capsys):
    pkg, log = fake
    out, cache_dir = tmp_path / "out", tmp_path / "elsewhere"
    assert main(["validate", "--paper", "alpha", "--only", "runs", "--out", str(out), "--cache-dir", str(cache_dir),
                 "--quiet"]) == 0
    assert not (out / ".cache").exists()
    values = sorted(cache_dir.glob("*.pkl"))
    assert len(values) == 4
    for v in values:
        meta = json.loads(v.with_suffix(".json").read_text())
        assert meta["size"] == v.stat().st_size and meta["seconds"] >= 0 and meta["pid"] == os.getpid()
        # the fake computations reach no refimpl package, only their own (hashed) functions
        assert meta["code"] == {} and meta["fn_code"] and meta["name"] in ("fake/train", "fake/total")
        assert meta["key"] in v.name and meta["created"]
    # make one entry stale (its code hash no longer current), leave garbage of every kind
    side = values[0].with_suffix(".json")
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "code": {"refimpl.core": "0" * 16}}))
    (cache_dir / "old-format-0123456789abcdef01234567.pkl").write_bytes(pickle.dumps(1))
    (cache_dir / "orphan-0123456789abcdef01234567.json").write_text("{}")
    old_tmp, young_tmp = cache_dir / ".x.pkl.abc.tmp", cache_dir / ".y.pkl.def.tmp"
    old_tmp.write_bytes(b"partial")
    young_tmp.write_bytes(b"partial")
    os.utime(old_tmp, (time.time() - 3600, time.time() - 3600))
    capsys.readouterr()
    assert main(["cache", "info", "--cache-dir", str(cache_dir)]) == 0
    text = capsys.readouterr().out
    assert "6 entries" in text and "3 current, 1 stale" in text and "2 incomplete" in text
    assert "changed: refimpl.core" in text and "1 leftover temporary file" in text
    assert main(["cache", "prune", "--cache-dir", str(cache_dir)]) == 0
    assert "removed 5 file(s)" in capsys.readouterr().out  # stale pkl+json, old-format pkl, orphan json, old tmp
    assert sorted(p.name for p in cache_dir.glob("*.pkl")) == [v.name for v in values[1:]]
    assert young_tmp.exists() and not old_tmp.exists()  # a temp file of a running writer is left alone
    assert main(["cache", "info", "--out", str(tmp_path / "nothing")]) == 0
    assert "no cache entries" in capsys.readouterr().out


def test_no_cache_recomputes_but_shares_within_the_run(fake, tmp_path):
    pkg, log = fake
    out = tmp_path / "out"
    runner.run_validation(["alpha"], "quick", out, log=_quiet, only=["runs", "search"])
    n = len(F.executions(log))
    runner.run_validation(["alpha"], "quick", out, log=_quiet, only=["runs", "search"], use_cache=False)
    again = F.executions(log)[n:]
    assert sorted(again) == sorted(F.executions(log)[:n])  # everything once more, train:0 still once
    assert again.count("train:0") == 1


# ---- report merging ---------------------------------------------------------------------------------


def test_subset_runs_merge_into_the_existing_report(fake, tmp_path):
    pkg, log = fake
    out = tmp_path / "out"
    runner.run_validation(["alpha", "beta"], "quick", out, log=_quiet)
    full = json.loads((out / "results.json").read_text())
    assert [r["id"] for r in full["papers"]["alpha"]] == ["F1", "F2", "F3"]
    assert [r["module"] for r in full["papers"]["alpha"]] == ["runs", "search", "timed"]
    assert set(full["modules"]) == {"alpha.runs", "alpha.search", "alpha.timed", "beta.fails"}
    # one paper, another profile: beta's rows are kept and marked with the run they came from
    runner.run_validation(["alpha"], "full", out, log=_quiet)
    res = json.loads((out / "results.json").read_text())
    assert [r["id"] for r in res["papers"]["beta"]] == ["B1", "B2"]
    assert res["papers"]["beta"][0]["earlier_run"]["profile"] == "quick"
    assert "(full)" in res["papers"]["alpha"][0]["measured"] and "earlier_run" not in res["papers"]["alpha"][0]
    md = (out / "report.md").read_text()
    assert "## beta" in md and "‡ (quick" in md and "Rows marked ‡ were kept from an earlier run" in md
    assert res["modules"]["beta.fails"]["profile"] == "quick" and res["modules"]["alpha.runs"]["profile"] == "full"
    assert "refimpl.validation.beta.fails" in res["timings_s"]
    # --only one module: the paper's other modules keep their (full-profile) rows, in module order
    runner.run_validation(["alpha"], "quick", out, log=_quiet, only=["search"])
    res = json.loads((out / "results.json").read_text())
    rows = res["papers"]["alpha"]
    assert [r["id"] for r in rows] == ["F1", "F2", "F3"]
    assert rows[0].get("earlier_run", {}).get("profile") == "full" and "earlier_run" not in rows[1]
    # a full run of everything replaces every row
    runner.run_validation(None, "quick", out, log=_quiet)
    res = json.loads((out / "results.json").read_text())
    assert not any("earlier_run" in r for rs in res["papers"].values() for r in rs)
    assert "‡" not in (out / "report.md").read_text()


def test_legacy_results_json_is_merged_by_claim_id(fake, tmp_path):
    pkg, log = fake
    out = tmp_path / "out"
    out.mkdir()
    legacy = {"profile": "full", "code_version": "abc", "papers": {
        "alpha": [{"id": "F2", "claim": "old", "spec": "s", "measured": "old", "expected": "e", "verdict": "pass",
                   "figure": None, "numbers": {}},
                  {"id": "OLD", "claim": "gone", "spec": "s", "measured": "m", "expected": "e", "verdict": "info",
                   "figure": None, "numbers": {}}],
        "zeta": [{"id": "Z1", "claim": "z", "spec": "s", "measured": "m", "expected": "e", "verdict": "pass",
                  "figure": None, "numbers": {}}]}}
    (out / "results.json").write_text(json.dumps(legacy))
    runner.run_validation(["alpha"], "quick", out, log=_quiet, only=["search"])
    res = json.loads((out / "results.json").read_text())
    assert [r["id"] for r in res["papers"]["alpha"]] == ["F2", "OLD"]  # F2 replaced, OLD kept (unknown module)
    assert res["papers"]["alpha"][0]["measured"].startswith("losses")
    assert res["papers"]["zeta"][0]["earlier_run"] == {"profile": "full", "code_version": "abc", "created": None}


# ---- lock, output checks, --strict, errors ---------------------------------------------------------


def test_lock_refuses_a_second_run_and_takes_over_a_stale_one(fake, tmp_path, capsys):
    pkg, log = fake
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = out / LOCK_NAME
        import socket

        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "12:00"}))
        assert main(["validate", "--paper", "beta", "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"PID {holder.pid}" in err and "in use by another" in err
        assert F.executions(log) == [] and not (out / "results.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is taken over, with a message; the lock is removed at the end
    assert main(["validate", "--paper", "beta", "--out", str(out), "--quiet"]) == 0
    assert f"taking over the lock of {out} left by PID {holder.pid}" in capsys.readouterr().out
    assert not lock.exists() and (out / "results.json").exists()


def test_lock_is_released_when_a_module_raises(fake, tmp_path, monkeypatch):
    pkg, log = fake
    from refimpl.validation import runner as r

    def boom(ctx):
        raise RuntimeError("module bug")

    mods = F.fake_discover(pkg)("beta")
    monkeypatch.setattr(mods[0], "run", boom)
    with pytest.raises(RuntimeError, match="module bug"):
        r.run_validation(["beta"], "quick", tmp_path / "out", log=_quiet)
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_output_paths_are_checked_before_any_work(fake, tmp_path, capsys):
    pkg, log = fake
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        (["--out", str(a_file)], f"--out {a_file} is an existing file, not a folder"),
        (["--out", str(a_file / "sub")], f"--out {a_file / 'sub'} cannot be created"),
        (["--out", str(tmp_path / "ok"), "--cache-dir", str(a_file)], f"--cache-dir {a_file} is an existing file"),
        (["--out", "/proc/refimpl-validate-test"], "--out /proc/refimpl-validate-test cannot be created"),
    ]
    for extra, msg in cases:
        assert main(["validate", "--paper", "beta", "--quiet", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err, err
    assert F.executions(log) == []


def test_strict_exit_status(fake, tmp_path, capsys):
    pkg, log = fake
    out = str(tmp_path / "out")
    assert main(["validate", "--paper", "beta", "--out", out, "--quiet"]) == 0
    assert "1 pass, 1 fail" in capsys.readouterr().out
    assert main(["validate", "--paper", "beta", "--out", out, "--quiet", "--strict"]) == 1
    assert main(["validate", "--paper", "alpha", "--only", "timed", "--out", out, "--quiet", "--strict"]) == 0


def test_engine_options_are_checked(fake, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["validate", "--workers", "2", "--scheduler", "tcp://x:1", "--out", str(tmp_path)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # argparse: usage and one error line, exit 2
        main(["validate", "--paper", "beta", "--workers", "0", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "--workers: expected a positive integer or 'auto', got '0'" in capsys.readouterr().err


# ---- subprocesses: Ctrl-C, and no `distributed` without Dask options ------------------------------


def _env():
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_serial_run_never_imports_distributed(fake, tmp_path):
    pkg, log = fake
    script = F.launcher(tmp_path / "pkgs", pkg, flags=["--report-modules"])
    res = subprocess.run([sys.executable, str(script), "validate", "--paper", "alpha", "--out", str(tmp_path / "out"),
                          "--quiet"], capture_output=True, text=True, env=_env(), timeout=120)
    assert res.returncode == 0, res.stderr
    assert "IMPORTED []" in res.stdout, res.stdout
    assert len(F.executions(log)) == 9


def test_ctrl_c_keeps_the_cache_and_the_rerun_resumes(fake, tmp_path):
    pkg, log = fake
    script = F.launcher(tmp_path / "pkgs", pkg)
    argv = [sys.executable, str(script), "validate", "--paper", "slow", "--out", str(tmp_path / "out"), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            preexec_fn=F.default_sigint)
    deadline = time.time() + 60
    while len(list((tmp_path / "out" / ".cache").glob("*.pkl"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    done = F.executions(log)
    written = len(list((tmp_path / "out" / ".cache").glob("*.pkl")))
    assert written >= 2 and f"kept the {written} cache entries this run wrote" in err
    assert "run the same command again to resume" in err
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    res = subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=120)
    assert res.returncode == 0, res.stderr
    rerun = F.executions(log)[len(done):]
    assert len(rerun) == 12 - written and not set(rerun) & set(done[:written])
    assert json.loads((tmp_path / "out" / "results.json").read_text())["papers"]["slow"][0]["verdict"] == "pass"
