"""One training step per model and backend, timed with threads pinned: ``refimpl bench``.

    refimpl bench [--model M ...] [--quick] [--json FILE] [--plot DIR] [--threads 1 2]

For every model (its paper-default configuration, ``benchmarks/problems.py``), backend (numpy,
numba; torch eager, torch.compile and jax.jit when installed), dtype (float64, float32) and thread
count, the harness

1. checks the backend's loss and gradients against refimpl's NumPy path at the same dtype (a
   backend that disagrees is reported and not timed);
2. times the first call separately (``compile_s``: tracing/compilation, or loading Numba's
   on-disk cache), then warm-up calls, then ``repeats`` timed steps (median, min, max);
3. divides the step's FLOP count (``benchmarks/flops.py``: the algorithm refimpl runs) by the
   median time, and compares with the GEMM rate measured in the same process (``peak_gflops``:
   best of 5 products of two 1000×1000 matrices of that dtype).

Each thread count runs in its own child process whose environment pins every pool before any
library loads (OMP/OpenBLAS/MKL/Numba env vars, XLA_FLAGS) and which then pins again with
threadpoolctl, ``numba.set_num_threads`` and ``torch.set_num_threads``; the pools seen are
recorded. The two-thread row is float64 only. Scaling curves (``--plot`` or the full run) time
numba and the fastest competitor while one size varies and fit the log–log exponent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = ("li2024", "yang2024", "huang2023", "huang2023_C", "transformer")
DTYPES = ("float64", "float32")
# (record name, backend module, variant)
BACKENDS = (
    ("numpy", "refimpl.benchmarks.refimpl_backend", "numpy"),
    ("numba", "refimpl.benchmarks.refimpl_backend", "numba"),
    ("torch_eager", "refimpl.benchmarks.torch_backend", "eager"),
    ("torch_compile", "refimpl.benchmarks.torch_backend", "compile"),
    ("jax_jit", "refimpl.benchmarks.jax_backend", "jit"),
)
# parity before timing: max |ours − theirs| / max |ours| over loss and every gradient
PARITY_RTOL = {"float64": 1e-8, "float32": 2e-3}
# scaling curves: which size varies, and its values (the paper default is among them)
SCALING = {
    "li2024": {"l": (5, 10, 20, 40, 80), "B": (16, 32, 64, 128, 256), "d": (20, 40, 80, 160)},
    "yang2024": {"N": (10, 20, 30, 60, 120), "H": (8, 16, 32, 64, 128), "d": (50, 100, 200), "B": (64, 256, 1024)},
    "huang2023": {"N": (25, 50, 100, 200, 400), "B": (64, 256, 1024)},
    "huang2023_C": {"M": (1000, 2000, 4000, 8000, 16000)},
    # B = 8 prompts; the fitted c0 + c1 T + c2 T² gives the length where attention (T²) overtakes the linear layers
    "transformer": {"T": (32, 128, 512, 1024), "n_layers": (1, 2, 4, 8)},
}
SCALING_BASE = {"transformer": {"B": 8}}  # sizes held fixed (other than the defaults) in the curves
QUICK_SCALING_POINTS = 3  # quick profile: the first three values of each size


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------
def gemm_peak(dtype: str, n: int = 1000, repeats: int = 10) -> float:
    """GFLOP/s of the best of ``repeats`` n×n GEMMs (2n³ FLOPs) through NumPy's BLAS. The child
    measures it before and after the models and keeps the larger (a busy machine lowers it)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def time_calls(fn, repeats: int, warmup: int = 2, budget_s: float = 5.0) -> dict:
    """First call (timed as ``compile_s``), ``warmup`` untimed calls, then up to ``repeats``
    timed calls (at least 5, stopping early once ``budget_s`` seconds have been spent)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    ts = []
    start = time.perf_counter()
    while len(ts) < repeats and (len(ts) < 5 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts = np.asarray(ts)
    return {"median_s": float(np.median(ts)), "min_s": float(ts.min()), "max_s": float(ts.max()),
            "compile_s": first, "repeats": int(ts.size)}


def parity_error(ref, cand, floor: float = 1e-3) -> float:
    """max over loss and gradients of max|ours − theirs| / max(max|ours|, floor · G), G the largest
    gradient entry of all. The floor keeps gradients that are mathematically zero (the transformer's
    key bias: softmax ignores a shift shared by a query's scores) from comparing rounding noise
    with rounding noise; the exact per-tensor parity tests live in tests/."""
    (l0, g0), (l1, g1) = ref, cand
    errs = [abs(l1 - l0) / max(abs(l0), 1e-300)]
    missing = set(g0) ^ set(g1)
    if missing:
        raise ValueError(f"gradient keys differ: {sorted(missing)}")
    G = max([float(np.max(np.abs(v))) for v in g0.values() if np.size(v)] + [1e-300])
    for k in g0:
        a, b = np.asarray(g0[k], dtype=np.float64), np.asarray(g1[k], dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"gradient {k!r} has shape {b.shape}, expected {a.shape}")
        errs.append(float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), floor * G)))
    return max(errs)


def _load_backend(module: str):
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return mod if mod.available() else None


def _problem(model: str, dtype: str, sizes: dict | None = None):
    if model == "transformer":
        from refimpl.benchmarks.transformer_problem import make_problem as make_transformer_problem

        return make_transformer_problem(dtype=dtype, **(sizes or {}))
    from refimpl.benchmarks.problems import make_problem

    return make_problem(model, dtype=dtype, **(sizes or {}))


def _make_runner(name: str, mod, problem, variant: str):
    """The backend's runner; the transformer has its own (refimpl NumPy, torch.nn model)."""
    if problem.model != "transformer":
        return mod.make_runner(problem, variant)
    if name == "numpy":
        from refimpl.benchmarks.transformer_problem import ReferenceRunner

        return ReferenceRunner(problem)
    if name in ("torch_eager", "torch_compile"):
        from refimpl.benchmarks.torch_transformer import Runner

        return Runner(problem, variant)
    raise ValueError(f"no {name} implementation of the transformer (refimpl's is NumPy + BLAS only)")


def bench_one(model: str, dtype: str, backends, repeats: int, budget_s: float, peak: float, threads: int,
              sizes: dict | None = None, log=print) -> list[dict]:
    from refimpl.benchmarks import flops as fl

    problem = _problem(model, dtype, sizes)
    flops = fl.step_flops(model, problem.config)
    reference = _make_runner("numpy", _load_backend("refimpl.benchmarks.refimpl_backend"), problem, "numpy").loss_and_grads()
    out = []
    for name, module, variant in backends:
        mod = _load_backend(module)
        if mod is None:
            continue
        # a backend that cannot run or disagrees keeps its row, with null times and an "error"
        rec = {"model": model, "config": problem.config, "backend": name, "dtype": dtype, "threads": threads,
               "median_s": None, "min_s": None, "max_s": None, "flops": flops, "gflops": None, "peak_gflops": peak}
        try:
            runner = _make_runner(name, mod, problem, variant)
            t0 = time.perf_counter()
            cand = runner.loss_and_grads()  # the first call: compilation / cache loading happens here
            first_call = time.perf_counter() - t0
            rec["parity_max_rel"] = err = parity_error(reference, cand)
        except Exception as exc:  # a competitor that cannot run this model is reported, not fatal
            rec["error"] = f"{type(exc).__name__}: {exc}"
            log(f"  {model:<12} {name:<14} {dtype:<8} skipped: {rec['error']}")
            out.append(rec)
            continue
        if not err <= PARITY_RTOL[dtype]:
            rec["error"] = f"parity {err:.2e} > {PARITY_RTOL[dtype]:.0e}: not timed"
            log(f"  {model:<12} {name:<14} {dtype:<8} {rec['error']}")
            out.append(rec)
            continue
        rec.update(time_calls(runner.step, repeats, budget_s=budget_s))
        # first-call cost beyond an ordinary step: the first loss-and-gradient call (parity) plus
        # the first full step (a jitted step is a second function), each minus one median step
        rec["first_call_s"], rec["first_step_s"] = first_call, rec.pop("compile_s")
        rec["compile_s"] = max(0.0, first_call + rec["first_step_s"] - 2 * rec["median_s"])
        rec["gflops"] = flops / rec["median_s"] / 1e9
        rec["peak_fraction"] = rec["gflops"] / peak
        out.append(rec)
        log(f"  {model:<12} {name:<14} {dtype:<8} {rec['median_s'] * 1e3:10.3f} ms  "
            f"(min {rec['min_s'] * 1e3:.3f}, max {rec['max_s'] * 1e3:.3f}, compile {rec['compile_s']:.2f} s)  "
            f"{rec['gflops']:7.2f} GFLOP/s = {100 * rec['peak_fraction']:5.1f}% of GEMM peak")
    return out


def scaling_curves(model: str, timed: list[dict], repeats: int, budget_s: float, peak: float, quick: bool,
                   backends, log=print) -> list[dict]:
    """Step time vs each size of SCALING[model], float64, for numba and the fastest competitor."""
    ok = [r for r in timed if r["model"] == model and r["dtype"] == "float64" and r.get("median_s")]
    # torch.compile is left out: it recompiles at every new size (its compile time, not its step)
    comp = [r for r in ok if r["backend"] not in ("numpy", "numba", "torch_compile")]
    ours = "numpy" if model == "transformer" else "numba"  # the transformer has no Numba path
    chosen = [ours] + ([min(comp, key=lambda r: r["median_s"])["backend"]] if comp else [])
    sel = [b for b in backends if b[0] in chosen]
    curves = []
    for size, values in SCALING.get(model, {}).items():
        vals = values[:QUICK_SCALING_POINTS] if quick else values
        pts = {b[0]: [] for b in sel}
        for v in vals:
            sizes = {**SCALING_BASE.get(model, {}), size: v}
            for r in bench_one(model, "float64", sel, repeats, budget_s, peak, 1, sizes, log=lambda *_: None):
                if r.get("median_s"):
                    pts[r["backend"]].append((v, r["median_s"]))
        for b, xy in pts.items():
            if len(xy) < 2:
                continue
            x, t = np.array(xy, dtype=float).T
            slope = float(np.polyfit(np.log(x), np.log(t), 1)[0])
            curve = {"model": model, "backend": b, "size": size, "values": x.tolist(),
                     "median_s": t.tolist(), "exponent": slope}
            if model == "transformer" and size == "T" and len(xy) >= 3:
                # t = c0 + c1 T + c2 T² (non-negative least squares): the linear layers and the
                # T² attention term, and the length where the two are equal
                from scipy.optimize import nnls

                c, _ = nnls(np.vstack([np.ones_like(x), x, x * x]).T / t[:, None], np.ones_like(t))
                curve.update(c0_s=float(c[0]), linear_s_per_token=float(c[1]), quadratic_s_per_token2=float(c[2]),
                             crossover_T=float(c[1] / c[2]) if c[2] > 0 else None)
            curves.append(curve)
            log(f"  scaling {model:<12} {b:<14} vs {size:<8} exponent {slope:5.2f}  "
                + "  ".join(f"{int(xi)}:{ti * 1e3:.3g}ms" for xi, ti in zip(x, t)))
    return curves


def cold_start(model: str) -> float | None:
    """Seconds for a fresh interpreter to import refimpl, build the problem and run the first
    numba step (after an earlier run has filled Numba's cache)."""
    code = ("import time; t0 = time.perf_counter()\n"
            "from refimpl.benchmarks.problems import make_problem\n"
            "from refimpl.benchmarks.refimpl_backend import make_runner\n"
            f"make_runner(make_problem({model!r}), 'numba').step()\n"
            "print(time.perf_counter() - t0)")
    for _ in range(2):  # the first run may compile and write the cache
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=_root())
    if res.returncode != 0:
        return None
    return float(res.stdout.strip().splitlines()[-1])


def _root() -> str:
    return str(Path(__file__).resolve().parent.parent)


# --------------------------------------------------------------------------------------------
# child process: one thread count
# --------------------------------------------------------------------------------------------
def select_backends(names=None):
    """The BACKENDS rows named in ``names`` (default all)."""
    allowed = [b[0] for b in BACKENDS]
    if names is None:
        return BACKENDS
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"unknown backend(s) {bad}; allowed: {allowed}")
    return tuple(b for b in BACKENDS if b[0] in names)


def child(models, dtypes, threads: int, quick: bool, scaling: bool, repeats: int, out_path: str,
          backends=None) -> None:
    import numba
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, which Numba's np.dot calls, before pinning)
    from threadpoolctl import threadpool_info, threadpool_limits

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    backends = select_backends(backends)
    budget = 1.5 if quick else 5.0
    with threadpool_limits(limits=threads):
        peaks = {dt: gemm_peak(dt) for dt in dtypes}
        print(f"[threads={threads}] GEMM peak: " + ", ".join(f"{dt} {p:.1f} GFLOP/s" for dt, p in peaks.items()),
              flush=True)
        records, curves = [], []
        for model in models:
            bk = backends
            if quick and model == "transformer":  # torch.compile of the 3-layer model takes about a minute
                bk = tuple(b for b in backends if b[0] != "torch_compile")
            for dt in dtypes:
                records += bench_one(model, dt, bk, repeats, budget, peaks[dt], threads)
            if scaling:
                curves += scaling_curves(model, records, max(5, repeats // 4), budget / 2, peaks["float64"],
                                         quick, backends)
        after = {dt: gemm_peak(dt) for dt in dtypes}
        pools = [{"api": i.get("internal_api"), "threads": i.get("num_threads")} for i in threadpool_info()]
    if any(after[dt] > peaks[dt] for dt in dtypes):  # re-express the rates against the better peak
        best = {dt: max(peaks[dt], after[dt]) for dt in dtypes}
        for r in records:
            r["peak_gflops"] = best[r["dtype"]]
            if r.get("gflops"):
                r["peak_fraction"] = r["gflops"] / r["peak_gflops"]
        print(f"[threads={threads}] GEMM peak re-measured after the models: "
              + ", ".join(f"{dt} {after[dt]:.1f}" for dt in dtypes) + " GFLOP/s; rates use the larger", flush=True)
        peaks = best
    env = {"threads": threads, "blas_pools": pools, "numba_threads": numba.get_num_threads(),
           "peaks_gflops": peaks, "versions": _versions()}
    Path(out_path).write_text(json.dumps({"env": env, "records": records, "scaling": curves}))


def _versions() -> dict:
    import numba

    v = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    for name in ("torch", "jax"):
        try:
            v[name] = __import__(name).__version__
        except ImportError:
            pass
    return v


def _child_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS"):
        env[var] = str(threads)
    eigen = "false" if threads == 1 else "true"
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}").strip()
    env["PYTHONPATH"] = _root() + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --------------------------------------------------------------------------------------------
# parent: run the children, print, write JSON and plots
# --------------------------------------------------------------------------------------------
def available_models() -> list[str]:
    return list(MODELS)


def main(models=None, quick: bool = False, json_path=None, plot_dir=None, threads=(1, 2), repeats=None,
         dtypes=DTYPES, backends=None) -> int:
    models = list(models) if models else available_models()
    bad = [m for m in models if m not in MODELS]
    if bad:
        raise ValueError(f"unknown model(s) {bad}; allowed: {list(MODELS)}")
    threads = list(threads)
    if not threads or any(t < 1 for t in threads):
        raise ValueError(f"threads must be a list of integers ≥ 1, got {threads}")
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        raise ValueError(f"unknown dtype(s) {bad}; allowed: {list(DTYPES)}")
    select_backends(backends)
    repeats = repeats or (30 if quick else 200)
    scaling = plot_dir is not None or not quick
    t_start = time.perf_counter()
    result = {"host": {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count()},
              "quick": quick, "children": [], "records": [], "scaling": [], "cold_start_s": {}}
    for i, t in enumerate(threads):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "child.json")
            cmd = [sys.executable, "-m", "refimpl.benchmarks.run", "--child", "--threads", str(t), "--out", out,
                   "--repeats", str(repeats), "--model", *models,
                   "--dtype", *(dtypes if i == 0 else ["float64"])]
            if quick:
                cmd.append("--quick")
            if backends:
                cmd += ["--backend", *backends]
            if scaling and i == 0:
                cmd.append("--scaling")
            proc = subprocess.run(cmd, env=_child_env(t), cwd=_root())
            if proc.returncode != 0:
                print(f"refimpl bench: the {t}-thread child failed (exit {proc.returncode})", file=sys.stderr)
                return 1
            data = json.loads(Path(out).read_text())
        result["children"].append(data["env"])
        result["records"] += data["records"]
        result["scaling"] += data["scaling"]
    for m in models:
        if m != "transformer":  # no Numba path
            result["cold_start_s"][m] = cold_start(m)
    result["wall_s"] = time.perf_counter() - t_start
    print_summary(result)
    if json_path:
        from refimpl.core.io import atomic_write_bytes as _atomic_write_bytes

        _atomic_write_bytes(Path(json_path), json.dumps(result, indent=2).encode())
        print(f"wrote {json_path}")
    if plot_dir:
        for p in plot(result, Path(plot_dir)):
            print(f"wrote {p}")
        from refimpl.core.io import atomic_write_bytes as _atomic_write_bytes

        md = Path(plot_dir) / "bench_table.md"
        _atomic_write_bytes(md, markdown_table(result).encode())
        print(f"wrote {md}")
    return 0


def markdown_table(result: dict) -> str:
    """Median step time (ms) per model × backend, one thread, float64 and float32, with the
    float64 GFLOP/s as a share of the measured GEMM peak, and the two-thread float64 row."""
    recs = [r for r in result["records"] if r.get("median_s")]
    backends = [b[0] for b in BACKENDS if any(r["backend"] == b[0] for r in recs)]
    head = "| model | dtype | threads | " + " | ".join(backends) + " | numba (or numpy) % of GEMM peak |"
    lines = [head, "|" + "---|" * (4 + len(backends))]
    keys = dict.fromkeys((r["model"], r["dtype"], r["threads"]) for r in recs)
    for m, dt, th in keys:
        rs = {r["backend"]: r for r in recs if (r["model"], r["dtype"], r["threads"]) == (m, dt, th)}
        cells = [f"{rs[b]['median_s'] * 1e3:.3g}" if b in rs else "–" for b in backends]
        own = rs.get("numba") or rs.get("numpy")
        frac = f"{100 * own['peak_fraction']:.0f}% of {own['peak_gflops']:.0f} GFLOP/s" if own else "–"
        lines.append(f"| {m} | {dt} | {th} | " + " | ".join(cells) + f" | {frac} |")
    return "Median step time in ms (forward, backward, update).\n\n" + "\n".join(lines) + "\n"


def print_summary(result: dict) -> None:
    recs = [r for r in result["records"] if r.get("median_s")]
    print("\nratios at one thread (median step time of the backend / refimpl's fastest path):")
    for m in dict.fromkeys(r["model"] for r in recs):
        for dt in DTYPES:
            rs = {r["backend"]: r["median_s"] for r in recs if r["model"] == m and r["dtype"] == dt and r["threads"] == 1}
            base = "numba" if "numba" in rs else "numpy"
            if base not in rs:
                continue
            cells = "  ".join(f"{b} {rs[b] / rs[base]:.2f}x" for b in rs if b != base)
            print(f"  {m:<12} {dt:<8} {base} {rs[base] * 1e3:.3f} ms; {cells}")
    cs = result.get("cold_start_s", {})
    if cs:
        print("cold start (fresh interpreter: import + problem + first numba step, cache warm): "
              + ", ".join(f"{m} {v:.2f} s" if v is not None else f"{m} failed" for m, v in cs.items()))
    print(f"bench wall time {result.get('wall_s', 0):.0f} s")


def plot(result: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refimpl.core.io import atomic_write_bytes as _atomic_write_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    recs = [r for r in result["records"] if r.get("median_s") and r["threads"] == 1]
    models = list(dict.fromkeys(r["model"] for r in recs))
    if models:
        fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models), 3.4), squeeze=False)
        for ax, m in zip(axes[0], models):
            for j, dt in enumerate(DTYPES):
                rs = [r for r in recs if r["model"] == m and r["dtype"] == dt]
                ax.bar(np.arange(len(rs)) + 0.4 * j, [r["median_s"] * 1e3 for r in rs], 0.4, label=dt)
                if j == 0:
                    ax.set_xticks(np.arange(len(rs)) + 0.2, [r["backend"] for r in rs], rotation=45, ha="right")
            ax.set_yscale("log")
            ax.set_title(m)
            ax.set_ylabel("median step time (ms), 1 thread")
        axes[0][0].legend()
        fig.tight_layout()
        paths.append(_save(fig, out_dir / "bench_step_times.png", plt, _atomic_write_bytes))
    curves = result.get("scaling", [])
    for m in dict.fromkeys(c["model"] for c in curves):
        sizes = list(dict.fromkeys(c["size"] for c in curves if c["model"] == m))
        fig, axes = plt.subplots(1, len(sizes), figsize=(3.4 * len(sizes), 3.2), squeeze=False)
        for ax, s in zip(axes[0], sizes):
            for c in (c for c in curves if c["model"] == m and c["size"] == s):
                ax.loglog(c["values"], np.array(c["median_s"]) * 1e3, "o-",
                          label=f"{c['backend']} (slope {c['exponent']:.2f})")
            ax.set_xlabel(s)
            ax.set_ylabel("step time (ms)")
            ax.set_title(f"{m}: time vs {s}")
            ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(_save(fig, out_dir / f"bench_scaling_{m}.png", plt, _atomic_write_bytes))
    _atomic_write_bytes(out_dir / "bench_scaling.json", json.dumps(curves, indent=2).encode())
    paths.append(out_dir / "bench_scaling.json")
    return paths


def _save(fig, path: Path, plt, writer) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    writer(path, buf.getvalue())
    return path


def _cli(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--scaling", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", nargs="+", default=list(MODELS))
    p.add_argument("--dtype", nargs="+", default=list(DTYPES))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--backend", nargs="+", default=None)
    a = p.parse_args(argv)
    if a.child:
        child(a.model, a.dtype, a.threads, a.quick, a.scaling, a.repeats, a.out, a.backend)
        return 0
    return main(a.model, a.quick, threads=(a.threads,), repeats=a.repeats, dtypes=a.dtype, backends=a.backend)


if __name__ == "__main__":
    sys.exit(_cli())
