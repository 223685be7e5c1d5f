"""The benchmark harness (benchmarks/): registry-driven problems, FLOP counts, the parity gate,
the per-round statistics, a smoke run through ``refimpl bench`` (pinned children, the record's
fields), argument errors before any work, regression comparison, the table. Timing numbers
themselves are not asserted (DESIGN.md: performance claims come from ``refimpl bench``)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refimpl import models
from refimpl.benchmarks import backends as bk
from refimpl.benchmarks import flops, report, run, worker
from refimpl.benchmarks import problems as P
from refimpl.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# registry-driven (issue 11)
# --------------------------------------------------------------------------------------------
NAME_FREE = ["benchmarks/run.py", "benchmarks/flops.py", "benchmarks/backends.py", "benchmarks/competitors.py",
             "benchmarks/worker.py", "benchmarks/report.py", "benchmarks/problems/__init__.py", "tests/_parity.py"]


def _string_constants(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


@pytest.mark.parametrize("rel", NAME_FREE)
def test_no_model_or_problem_name_is_written_in_the_harness(rel):
    """The harness, the FLOP dispatch and the parity cases find the models through the registry:
    no string literal in them equals a registered model or benchmark problem name."""
    names = set(models.names()) | set(models.bench_problems())
    found = sorted(_string_constants(ROOT / rel) & names)
    assert not found, f"{rel} names {found}: derive them from refimpl.models instead"


def test_the_name_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(f"MODELS = ({models.names()[0]!r},)\n")
    assert _string_constants(bad) & set(models.names())


def test_every_registered_problem_has_a_module_with_the_contract():
    for name in models.bench_problems():
        mod = P.load(name)
        for attr in ("DEFAULT_SIZES", "SMALL", "OPTIONS", "build", "loss_and_grads", "flops"):
            assert hasattr(mod, attr), f"benchmarks/problems/{name}.py has no {attr}"
        assert P.model_of(name).name in models.names()
        prob = P.make_problem(name, **mod.SMALL)
        assert prob.name == name and prob.model == P.model_of(name).name
        assert set(prob.trainable) <= set(prob.params)


def test_backends_follow_the_registry():
    """refimpl's backends of a problem are its model's registered backends (a Numba path added to
    the registry shows up without touching the harness), or the subset its module declares in
    ``BACKENDS`` (huang2023_C: no parallel kernel), in registry order; competitors exist per
    example file."""
    for name in P.names():
        got = [b.name for b in bk.for_problem(name) if b.kind == "refimpl"]
        own = getattr(P.load(name), "BACKENDS", None)
        registered = list(P.model_of(name).backends)
        assert got == (registered if own is None else [b for b in registered if b in own]), name
        assert own is None or set(own) <= set(registered), name
        comps = [b for b in bk.for_problem(name) if b.kind == "competitor"]
        assert {b.base for b in comps} == {"torch_eager", "torch_compile", "jax_jit"}
        forms = P.forms(name)
        assert len(comps) == 3 * len(forms)
        if len(forms) > 1:  # the non-default forms carry their name, and the label says which form it is
            second = list(forms)[1]
            assert f"torch_eager_{second}" in {b.name for b in comps}
            assert all(forms[b.form or list(forms)[0]] in b.label for b in comps)


# --------------------------------------------------------------------------------------------
# the problems
# --------------------------------------------------------------------------------------------
def test_paper_default_sizes():
    li = P.make_problem("li2024")
    assert li.batch["P"].shape == (64, 40, 21) and li.params["W_O"].shape == (100, 40)
    assert li.config["d_x"] == 30 and li.config["d_y"] == 10 and li.optimizer == {"name": "sgd", "lr": 0.5}
    y = P.make_problem("yang2024")
    assert y.params["Q"].shape == (64, 100, 100) and y.params["w"].shape == (64, 200)
    assert y.batch["y"].shape == (256, 30) and y.batch["y_all"].shape == (256, 200)
    assert y.optimizer["name"] == "adam" and y.optimizer["lr"] == 1e-4
    h = P.make_problem("huang2023")
    assert h.batch["X"].shape == (256, 100, 10) and h.params["Q"].shape == (10, 10)
    c = P.make_problem("huang2023_C")
    assert c.batch["counts"].shape == (4000, 10) and np.all(c.batch["counts"].sum(1) == 100)
    t = P.make_problem("transformer")
    assert t.batch["X"].shape == (64, 21, 41) and t.batch["target"].shape == (64,)
    assert t.optimizer["name"] == "adam" and t.options["n_heads"] == 2 and t.options["causal"] is True
    for name in P.names():
        mod = P.load(name)
        assert {k: P.make_problem(name).config[k] for k in mod.DEFAULT_SIZES} == mod.DEFAULT_SIZES


def test_problem_is_a_function_of_the_seed():
    for name in P.names():
        small = P.sizes_of(name, "small")
        a, b, c = (P.make_problem(name, seed=s, **small) for s in (7, 7, 8))
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
        for k, v in a.array_batch().items():
            np.testing.assert_array_equal(v, b.batch[k])
        assert any(not np.array_equal(v, c.batch[k]) for k, v in a.array_batch().items())


def test_refimpl_paths_agree():
    from _parity import assert_close

    for name in P.names():
        prob = P.make_problem(name, seed=2, **P.sizes_of(name, "small"))
        la, ga = P.reference_step(prob, "numpy").loss_and_grads()
        for backend in P.backends(name)[1:]:
            lb, gb = P.reference_step(prob, backend).loss_and_grads()
            assert_close(f"{name} {backend} loss", lb, la, rtol=1e-12)
            G = max(float(np.max(np.abs(v))) for v in ga.values())
            for k in ga:
                assert_close(f"{name} {backend} grad {k}", gb[k], ga[k], rtol=1e-10, floor=1e-14 * G)


def test_reference_step_reset_restores_the_start():
    name = P.names()[0]
    ref = P.reference_step(P.make_problem(name, **P.sizes_of(name, "small")))
    l0 = ref.step()
    ref.step()
    ref.reset()
    assert ref.step() == l0


def test_li2024_scaled_d_keeps_patterns_orthogonal():
    for d in (9, 12, 40, 80):
        cfg = P.make_problem("li2024", d=d, B=4, l=3, m=5).config
        assert cfg["d_x"] + cfg["d_y"] == d and cfg["d_x"] >= cfg["M1"] + cfg["M2"]
    assert P.make_problem("li2024", d=40).config["M2"] == 24


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "bert"}, "problem"),
        ({"name": "li2024", "dtype": "float16"}, "dtype"),
        ({"name": "li2024", "H": 3}, "unknown size"),
        ({"name": "yang2024", "N": 0}, "size N"),
        ({"name": "yang2024", "N": 50, "K": 20}, "N ≤ K"),
        ({"name": "li2024", "d": 8}, "d must be ≥ 9"),
        ({"name": "huang2023", "options": {"train_a": True}}, "unknown option"),
        ({"name": "li2024", "options": {"attend_to_query": 1}}, "bool"),
        ({"name": "yang2024", "options": {"loss": "population"}}, "loss"),
        ({"name": "transformer", "options": {"norm": "none"}}, "norm"),
    ],
)
def test_make_problem_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        P.make_problem(**kwargs)


# --------------------------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,size", [("li2024", "B"), ("yang2024", "B"), ("huang2023", "B"), ("huang2023_C", "M"),
                                       ("transformer", "B")])
def test_flops_split_into_a_per_item_part_and_a_fixed_part(name, size):
    """Work per prompt (or per count vector) is constant: f(4n) − f(2n) = 2 (f(2n) − f(n))."""
    cfg = dict(P.load(name).DEFAULT_SIZES)
    f = {n: flops.step_flops(name, {**cfg, size: n}) for n in (8, 16, 32)}
    assert f[32] - f[16] == 2 * (f[16] - f[8]) > 0


def test_li2024_flops_match_the_matrix_products_of_the_reference():
    """Count the multiply-adds of refimpl/li2024/model.py's products one by one at a small size."""
    B, l, d, m = 3, 5, 7, 11
    mac_fwd = [B * d * d, B * d * d, B * d * l, B * d * l, B * d * d, B * m * d, B * m]
    mac_bwd = [m * B * d, B * m * d, d * B * d, B * d * d, B * d * l, B * d * l, d * B * d, B * d * d, d * B * d]
    assert flops.breakdown("li2024", dict(B=B, l=l, d=d, m=m))["matmul"] == 2 * (sum(mac_fwd) + sum(mac_bwd))


def test_flops_reject_unknown_problems():
    with pytest.raises(ValueError, match="unknown benchmark problem"):
        flops.step_flops("gpt5", {})


# --------------------------------------------------------------------------------------------
# parity gate, statistics
# --------------------------------------------------------------------------------------------
def _lg(scale=1.0):
    return 2.0, {"W": np.array([[1.0, -2.0], [3.0, 4.0]]) * scale, "b": np.array([0.5])}


def test_parity_error_zero_for_equal_and_catches_one_entry():
    assert worker.parity_error(_lg(), _lg()) == 0.0
    loss, g = _lg()
    g2 = {k: v.copy() for k, v in g.items()}
    g2["W"][1, 0] += 4e-6  # relative to max |W| = 4: 1e-6
    assert worker.parity_error((loss, g), (loss, g2)) == pytest.approx(1e-6)
    assert worker.parity_error((loss, g), (loss * (1 + 1e-7), g)) == pytest.approx(1e-7)


def test_parity_error_floor_for_zero_gradients():
    loss, g = _lg()
    z0 = {**g, "b_K": np.array([1e-17])}
    z1 = {**g, "b_K": np.array([-2e-17])}  # rounding noise on a zero gradient: not a mismatch
    assert worker.parity_error((loss, z0), (loss, z1)) < 1e-12
    z1 = {**g, "b_K": np.array([1e-2])}  # a real error on it is
    assert worker.parity_error((loss, z0), (loss, z1)) > 1


def test_parity_error_rejects_missing_keys_and_shapes():
    loss, g = _lg()
    with pytest.raises(ValueError, match="keys differ"):
        worker.parity_error((loss, g), (loss, {"W": g["W"]}))
    with pytest.raises(ValueError, match="shape"):
        worker.parity_error((loss, g), (loss, {"W": g["W"].T[:1], "b": g["b"]}))


def test_gemm_rate_is_a_rate():
    assert 0.05 < worker.gemm_gflops("float64", n=200, repeats=2) < 1e4


def test_quartiles():
    assert run.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == {"median": 3.0, "q1": 2.0, "q3": 4.0}
    assert run.quartiles([]) == {"median": None, "q1": None, "q3": None}


def _row(times: dict, kinds: dict, **extra):
    return {"problem": "p", "sizes": "paper", "dtype": "float64", "threads": 1, "flops": 1e6, "gemm_gflops": 10.0,
            **extra,
            "backends": {n: {"kind": kinds[n], "variant": "x", "label": n, "round_s": list(t), "cpu_s": 0.9, "wall_s": 1.0,
                             "first_call_s": 0.5, "first_step_s": 0.1} for n, t in times.items()}}


def test_summarize_row_takes_the_ratio_per_round():
    """refimpl's best path (by median) ÷ the fastest competitor, round by round: a round where the
    whole machine was slow cancels out of the ratio."""
    ms = {"ours_a": [2.0, 4.0, 2.0], "ours_b": [3.0, 6.0, 3.0], "theirs": [4.0, 8.0, 4.0], "slow": [9.0, 9.0, 9.0]}
    kinds = {"ours_a": "refimpl", "ours_b": "refimpl", "theirs": "competitor", "slow": "competitor"}
    row = run.summarize_row(_row({n: [1e-3 * t for t in ts] for n, ts in ms.items()}, kinds))
    assert row["best"] == "ours_a" and row["fastest_competitor"] == "theirs"
    assert row["ratio"]["rounds"] == [0.5, 0.5, 0.5] and row["ratio"]["median"] == 0.5
    assert row["ratio"]["q1"] == row["ratio"]["q3"] == 0.5  # the medians alone would also give 0.5, IQR 0
    b = row["backends"]
    assert b["ours_b"]["vs_best"]["median"] == 1.5 and b["slow"]["vs_best"]["median"] == pytest.approx(4.5)
    assert b["ours_a"]["median_s"] == 2e-3 and b["ours_a"]["cpu_per_wall"] == pytest.approx(0.9)
    assert b["ours_a"]["compile_s"] == pytest.approx(0.5 + 0.1 - 2 * 2e-3)  # first call + first step − 2 steps
    assert b["theirs"]["gflops"] == pytest.approx(1e6 / 4e-3 / 1e9)
    assert b["theirs"]["peak_fraction"] == pytest.approx(b["theirs"]["gflops"] / 10.0)


def test_summarize_row_without_a_competitor_has_no_ratio():
    row = run.summarize_row(_row({"a": [1.0, 1.1], "b": [2.0, 2.0]}, {"a": "refimpl", "b": "refimpl"}))
    assert row["best"] == "a" and row["ratio"] is None and row["backends"]["b"]["vs_best"]["median"] > 1.8


def test_not_idle_flag():
    assert not run.not_idle(1.4, 1) and run.not_idle(1.6, 1) and not run.not_idle(2.4, 2)


def test_plan_rows():
    name = next(n for n in P.names() if P.sizes_of(n, "large") is not None and "float32" in P.dtypes(n))
    plan = run.plan_rows(name, ("float64", "float32"), [1, 2], "paper")
    assert [(r["sizes"], r["dtype"]) for r in plan[1]] == [("paper", "float64"), ("paper", "float32"), ("large", "float64")]
    assert [(r["sizes"], r["dtype"]) for r in plan[2]] == [("large", "float64")]
    assert plan[2][0]["values"] == P.sizes_of(name, "large")
    assert list(run.plan_rows(name, ("float64",), [1], "small")) == [1]
    assert [r["sizes"] for r in run.plan_rows(name, ("float64",), [1, 2], "small")[2]] == ["small"]


def test_child_env_pins_every_pool():
    env = run.child_env(1)
    assert all(env[v] == "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                       "NUMBA_NUM_THREADS"))
    assert "--xla_cpu_multi_thread_eigen=false" in env["XLA_FLAGS"]
    assert run.child_env(2)["OMP_NUM_THREADS"] == "2"


# --------------------------------------------------------------------------------------------
# a smoke run: two backends of one model, tiny sizes, two rounds, through the command line
# --------------------------------------------------------------------------------------------
def _model_with_two_paths():
    return next(n for n in P.names() if len(P.backends(n)) >= 2)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    name = _model_with_two_paths()
    paths = list(P.backends(name))[:2]
    argv = ["bench", "--model", name, "--backend", *paths, "--sizes", "small", "--threads", "1",
            "--dtype", "float64", "--rounds", "2", "--quick", "--json", str(tmp / "b.json"), "--plot", str(tmp / "plots")]
    status = cli(argv)
    return {"status": status, "record": json.loads((tmp / "b.json").read_text()), "dir": tmp, "paths": paths,
            "name": name}


def test_smoke_run_record(smoke):
    rec = smoke["record"]
    assert smoke["status"] == 0 and rec["format"] == run.FORMAT
    m = rec["machine"]
    assert m["cpu_model"] and len(m["load_before"]) == 3 and len(m["load_after"]) == 3 and "numpy" in m["versions"]
    assert isinstance(m["not_idle"], bool) and m["blas"]
    (row,) = rec["rows"]
    assert (row["problem"], row["sizes"], row["dtype"], row["threads"]) == (smoke["name"], "small", "float64", 1)
    core = sorted(os.sched_getaffinity(0))[0]
    assert row["cores"] == [core] and len(row["load_before"]) == 3 and isinstance(row["not_idle"], bool)
    assert row["rounds"] == 2 and len(row["order"]) == 2 and all(sorted(o) == sorted(smoke["paths"]) for o in row["order"])
    assert row["best"] in smoke["paths"] and row["ratio"] is None  # no competitor among the two
    for n in smoke["paths"]:
        b = row["backends"][n]
        assert b["kind"] == "refimpl" and "error" not in b
        assert b["affinity"] == [core] and b["thread_cpus"] == [core] and b["os_threads"] >= 1
        assert 0 < b["cpu_per_wall"] <= 1.05  # pinned to one core: it cannot use more
        assert len(b["round_s"]) == 2 and b["q1_s"] <= b["median_s"] <= b["q3_s"]
        assert set(b["vs_best"]) == {"median", "q1", "q3"} and b["vs_best"]["q1"] <= b["vs_best"]["q3"]
        assert b["peak_rss_mb"] > 10 and b["rss_imports_mb"] > 10
        assert b["first_call_s"] > 0 and b["compile_s"] >= 0 and b["import_s"] > 0
        assert b["parity_max_rel"] <= run.PARITY_RTOL["float64"] and b["grad_dtype"] == "float64"
        assert b["numba_threads"] == 1 and all(p["num_threads"] == 1 for p in b["blas_pools"])
        assert b["checks"] == []  # every pool, thread and CPU second matches the pinning
        assert b["cold"] is True  # the first (and only) row of its process
    assert row["backends"][row["best"]]["vs_best"]["median"] == 1.0
    assert row["steps_per_round"] >= run.MIN_STEPS


def test_smoke_run_table_and_figure(smoke):
    md = (smoke["dir"] / "plots" / "bench_table.md").read_text()
    assert smoke["record"]["machine"]["cpu_model"] in md and "interquartile" in md
    for col in ("cpu/wall", "peak RSS MB", "compile s", "first call s", "÷ best", "refimpl best"):
        assert col in md
    assert (smoke["dir"] / "plots" / "bench_step_times.png").stat().st_size > 1000


def test_compare_with_itself_finds_nothing(smoke):
    rec = smoke["record"]
    findings = report.compare(rec, rec)
    assert findings["worse"] == [] and findings["missing"] == []


# --------------------------------------------------------------------------------------------
# regression tracking
# --------------------------------------------------------------------------------------------
def _record(ratio: float, vs: dict, problem: str = "p") -> dict:
    backends = {"ours": {"kind": "refimpl", "vs_best": {"median": 1.0}},
                **{n: {"kind": "competitor", "vs_best": {"median": v}} for n, v in vs.items()}}
    fastest = min(vs, key=vs.get)
    return {"format": run.FORMAT, "rows": [{"problem": problem, "sizes": "paper", "dtype": "float64", "threads": 1,
                                            "ratio": {"refimpl": "ours", "competitor": fastest, "median": ratio,
                                                      "q1": ratio, "q3": ratio}, "backends": backends}]}


def test_compare_reports_ratios_more_than_20_percent_worse():
    base = _record(0.5, {"t": 2.0, "j": 4.0})
    assert report.compare(_record(0.59, {"t": 1.7, "j": 4.0}), base)["worse"] == []  # 18% worse: within
    f = report.compare(_record(0.61, {"t": 2.0, "j": 3.0}), base)
    assert {(w["against"], round(w["change"], 2)) for w in f["worse"]} == {("fastest competitor", 1.22), ("j", 1.33)}
    f = report.compare(_record(0.3, {"t": 2.0, "j": 4.0}), base)
    assert f["worse"] == [] and f["better"][0]["against"] == "fastest competitor"
    other = {**base, "rows": [{**base["rows"][0], "threads": 2}]}
    assert len(report.compare(other, base)["missing"]) == 2


def test_strict_compare_sets_the_exit_status(tmp_path, monkeypatch):
    """``--compare`` reports; only ``--strict`` turns a worse ratio into exit status 1 (the run
    itself is replaced by a fixed row: this checks the wiring, not the timing)."""
    name = P.names()[0]
    base = tmp_path / "base.json"
    base.write_text(json.dumps(_record(0.5, {"t": 2.0}, name)))

    class FakeChild:
        def __init__(self, backend, *a, **k):
            self.backend = backend

        def close(self):
            pass

    def fake_row(children, spec, settings, rng, log=print):
        r = _record(0.9, {"t": 1.1}, spec["problem"])["rows"][0]
        return {**r, "best": "ours", "load_before": [0, 0, 0], "load_after": [0, 0, 0], "cores": spec["cores"]}

    monkeypatch.setattr(run, "Child", FakeChild)
    monkeypatch.setattr(run, "run_row", fake_row)
    kw = dict(models=[name], threads=[1], dtypes=["float64"], backends=["numpy"], compare=str(base), log=lambda *_: None)
    assert run.main(**kw) == 0
    assert run.main(**kw, strict=True) == 1
    base.write_text(json.dumps(_record(0.85, {"t": 1.1}, name)))
    assert run.main(**kw, strict=True) == 0


# --------------------------------------------------------------------------------------------
# bad options: one clear line, before any work
# --------------------------------------------------------------------------------------------
@pytest.fixture
def no_children(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a child process was started before the arguments were checked")

    monkeypatch.setattr(run, "Child", refuse)


@pytest.mark.parametrize("argv, words", [
    (["--repeats", "0"], "--repeats"),
    (["--repeats", "-3"], "--repeats"),
    (["--rounds", "0"], "--rounds"),
    (["--threads", "0"], "--threads"),
    (["--threads", "64"], "cores"),
    (["--threads", "1", "1"], "twice"),
    (["--backend", "cuda"], "unknown backend"),
    (["--strict"], "--strict needs --compare"),
    (["--compare", "/nonexistent/base.json"], "does not exist"),
    (["--json", "/nonexistent/dir/b.json"], "does not exist"),
])
def test_bad_options_fail_with_one_line_before_work(argv, words, capsys, no_children):
    assert cli(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and err.startswith("refimpl: error:")


def test_compare_refuses_a_file_that_is_not_a_record(tmp_path, capsys, no_children):
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"records": []}))
    assert cli(["bench", "--compare", str(bad)]) == 2
    assert "not a refimpl bench record" in capsys.readouterr().err


def test_missing_library_is_named(monkeypatch, capsys, no_children):
    """``--backend jax_jit`` without jax: a non-zero exit and a message naming the package
    (``sys.modules[name] = None`` is how Python marks a package as not importable)."""
    for lib in ("jax", "torch"):
        monkeypatch.setitem(sys.modules, lib, None)
    assert cli(["bench", "--backend", "jax_jit"]) == 2
    err = capsys.readouterr().err
    assert "'jax'" in err and "cannot be imported" in err and len(err.strip().splitlines()) == 1
    assert cli(["bench", "--backend", "torch_compile"]) == 2
    assert "'torch'" in capsys.readouterr().err


def test_a_backend_no_selected_problem_has_is_refused(no_children, capsys):
    only_numpy = next((n for n in P.names() if P.backends(n) == ("numpy",)), None)
    if only_numpy is None:
        pytest.skip("every problem has more than one refimpl path")
    assert cli(["bench", "--model", only_numpy, "--backend", "numba"]) == 2
    assert "not available" in capsys.readouterr().err


def test_unknown_problem_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        cli(["bench", "--model", "bert"])


# --------------------------------------------------------------------------------------------
# imports
# --------------------------------------------------------------------------------------------
def test_importing_the_harness_imports_neither_library():
    """torch and jax are imported in the children and the runners, never by the harness."""
    code = ("import sys, refimpl.benchmarks.run, refimpl.benchmarks.report, refimpl.benchmarks.competitors, "
            "refimpl.benchmarks.backends, refimpl.examples.torch, refimpl.examples.jax, refimpl.cli; "
            "refimpl.benchmarks.backends.all_names(); "
            "print(int('jax' in sys.modules), int('torch' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "0"]


def test_examples_import_nothing_from_refimpl_but_themselves():
    for path in (ROOT / "examples").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module or ""]
            for m in mods:
                assert not m.startswith("refimpl") or m.startswith("refimpl.examples"), f"{path}: imports {m}"


def test_scaling_curves_time_the_best_path_and_the_fastest_competitor_that_does_not_recompile():
    name = next(n for n in P.names() if getattr(P.load(n), "SCALING", None))
    b = {"ours": {"kind": "refimpl", "variant": "numba", "median_s": 1.0},
         "c_compile": {"kind": "competitor", "variant": "compile", "median_s": 0.1},
         "c_eager": {"kind": "competitor", "variant": "eager", "median_s": 2.0},
         "c_jit": {"kind": "competitor", "variant": "jit", "median_s": 1.5}}
    curves = run.scaling_rows(name, {"best": "ours", "backends": b}, points=2)
    assert curves and all(chosen == ["ours", "c_jit"] for _, _, chosen in curves)
    assert all(len(v) == 2 for _, v, _ in curves)
    assert [s for s, _, _ in curves] == list(P.load(name).SCALING)


def test_quick_leaves_out_torch_compile_unless_asked_for():
    assert "torch_compile" in run.quick_skip(None)
    assert run.quick_skip(["torch_compile_matched"]) == {} and run.quick_skip(["torch_compile"]) == {}
    assert "torch_compile" in run.quick_skip(["numpy"])


def test_thread_checks_name_what_does_not_match_the_pinning():
    ok = {"blas_pools": [{"internal_api": "openblas", "num_threads": 2}], "numba_threads": 2, "torch_threads": 2,
          "thread_cpus": [0, 1], "cpu_s": 1.9, "wall_s": 1.0}
    assert run.thread_checks(ok, 2, [0, 1]) == []
    bad = {**ok, "blas_pools": [{"internal_api": "openblas", "num_threads": 8}], "torch_threads": 1,
           "thread_cpus": [0, 1, 2], "cpu_s": 2.5}
    got = run.thread_checks(bad, 2, [0, 1])
    assert len(got) == 4 and "openblas=8" in got[0] and "torch_threads=1" in got[1] and "CPU/wall 2.50" in got[3]


@pytest.mark.parametrize("library", ["torch", "refimpl"])
def test_only_refimpl_workers_launch_numbas_thread_pool(library):
    """A competitor's process must not start Numba's thread pool: launched in a PyTorch process it
    made torch's 2-thread attention ~100x slower, which the 2-thread rows then reported as torch's
    speed. Run in a fresh interpreter (this one may have launched the pool already)."""
    import subprocess
    import sys

    if library == "torch":
        pytest.importorskip("torch")
    code = ("from refimpl.benchmarks.worker import Worker\n"
            f"Worker({{'name': 'x', 'library': {library!r}}}, 2).start()\n"
            "from numba.np.ufunc import parallel\n"
            "print(parallel._is_initialized)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(library == "refimpl"), res.stdout + res.stderr
