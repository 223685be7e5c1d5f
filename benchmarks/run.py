"""One training step per benchmark problem and backend, timed fairly: ``refimpl bench``.

    refimpl bench [--model P ...] [--backend B ...] [--threads 1 2] [--dtype ...] [--quick]
                  [--rounds R] [--repeats K] [--sizes paper|small] [--scaling]
                  [--json FILE] [--plot DIR] [--compare BASELINE.json [--strict]]

What is timed. For every benchmark problem (``refimpl.models.bench_problems()``; one module each in
``benchmarks/problems/``), every backend (``benchmarks/backends.py``: refimpl's registered paths,
the PyTorch and JAX examples of ``refimpl.examples``), dtype and thread count, one training step
(forward, backward, optimiser update) of the same problem from the same initial parameters.

How (issue 16):

1. **One process per (problem, backend, thread count)**, started pinned with
   ``os.sched_setaffinity`` to as many cores as threads (the first cores of the parent's
   affinity; every backend of a row on the same cores) and with every pool's environment set to
   the thread count (OMP/OpenBLAS/MKL/Numba, ``torch.set_num_threads``, XLA's
   ``--xla_cpu_multi_thread_eigen=false`` at one thread). The child records its affinity, its OS
   threads and their CPUs, the pools threadpoolctl sees, and the CPU time ÷ wall time of its timed
   steps, which cannot exceed the pinned cores: the table shows it per backend.
2. **Parity before timing**: each child compares its loss and gradients with refimpl's NumPy path
   on the same problem (``worker.parity_error``); a backend that disagrees is reported, not timed.
3. **First-call cost**: the first loss-and-gradient call and the first step are timed apart
   (tracing, compilation, Numba's cache); ``compile_s`` is their sum minus two ordinary steps.
   ``cold`` marks the first row of a process; later rows of the same process may find caches
   warm (the same Numba signature, the same torch graph), so their cost is a re-compile at most.
4. **Rounds**: after warm-up, the parent asks every child in turn, in a new random order each
   round, to time ``K`` steps from the initial parameters (the same K steps of the same
   trajectory for every backend: li2024's kernel skips prompts once their hinge is inactive). A
   round's time is the median of its K steps; every ratio is computed per round and reported as
   the median and interquartile range over the rounds.
5. **The claim is a ratio**: refimpl's best path of the row (NumPy or Numba, whichever has the
   smaller median) ÷ the fastest competitor, per round (below 1: refimpl is faster); and every
   backend ÷ refimpl's best.
6. **The machine**: CPU model (/proc/cpuinfo), cores, BLAS (threadpoolctl), library versions,
   load average before and after each row and the run ("machine not idle" when the 1-minute load
   exceeds the row's cores by more than 0.5), peak memory (RSS high-water mark) per backend and
   row, the GEMM rate of NumPy's BLAS under the same pinning (GFLOP/s as a share of it).

Rows: paper sizes at the first thread count in every dtype the problem has; and, when more than
one thread count is asked for, a float64 row at the problem's ``LARGE`` sizes (a batch large
enough that another core could help) at every thread count. ``--sizes small`` replaces both by
the problems' ``SMALL`` sizes (tests, smoke runs). ``--scaling`` adds curves of step time against
each size of the problem's ``SCALING`` (refimpl's best path and the fastest competitor other than
torch.compile, which recompiles at every size).

``--quick``: a smoke run (5 rounds of about 0.1 s of steps per backend, short warm-up, torch.compile
left out unless asked for by name).

Records: ``--json FILE`` (format in :data:`FORMAT`, ``report.py`` reads it), ``--plot DIR``
(``bench_table.md`` and figures), ``--compare BASELINE.json`` (ratios more than 20% worse than
the baseline's; exit status 1 only with ``--strict``).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from refimpl.benchmarks import backends as bk
from refimpl.benchmarks import problems

FORMAT = {"name": "refimpl-bench", "version": 2}
DTYPES = ("float64", "float32")
SIZES = ("paper", "small")
PARITY_RTOL = {"float64": 1e-8, "float32": 2e-3}

#: per profile: rounds, seconds of steps per backend per round (sets K), warm-up seconds, GEMM size,
#: points per scaling curve (None: all)
PROFILES = {
    "full": {"rounds": 15, "round_s": 0.5, "warmup_s": 1.0, "gemm_n": 1000, "scaling_points": None, "gap_s": 0.05},
    "quick": {"rounds": 5, "round_s": 0.1, "warmup_s": 0.2, "gemm_n": 500, "scaling_points": 3, "gap_s": 0.02},
}
#: backends --quick leaves out (a smoke run; the full run times them)
QUICK_SKIP = {"torch_compile": "left out of --quick: torch.compile takes 10–60 s per row and thread count to compile"}
MIN_STEPS, MAX_STEPS = 3, 100_000
MULTI_THREAD_GAP_S = 0.25


def quick_skip(requested) -> dict:
    """:data:`QUICK_SKIP` minus the backends asked for by name."""
    asked = requested or ()
    return {b: why for b, why in QUICK_SKIP.items() if not any(n == b or n.startswith(b + "_") for n in asked)}
SETUP_TIMEOUT_S, TIME_TIMEOUT_S = 1800.0, 900.0


class ChildError(RuntimeError):
    """A child process died, timed out, or answered with an error."""


# --------------------------------------------------------------------------------------------
# the machine
# --------------------------------------------------------------------------------------------
def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def available_cores() -> list[int]:
    """The CPUs this process may run on (all of them where the OS has no affinity call)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _pin(cores):
    """The ``preexec_fn`` pinning a child to ``cores`` (None where the OS cannot pin)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = set(cores)
    return lambda: os.sched_setaffinity(0, cores)


def package_versions() -> dict:
    """Versions of the libraries involved, read from their metadata (nothing is imported)."""
    from importlib import metadata

    v = {"python": platform.python_version()}
    for name in ("refimpl", "numpy", "scipy", "numba", "llvmlite", "threadpoolctl", "torch", "jax", "jaxlib"):
        try:
            v[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return v


def machine() -> dict:
    return {"cpu_model": cpu_model(), "cpus": os.cpu_count(), "affinity": available_cores(),
            "platform": platform.platform(), "machine": platform.machine(), "versions": package_versions()}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def not_idle(load_1min: float, cores: int) -> bool:
    """The 1-minute load exceeds the cores the benchmark uses by more than 0.5."""
    return load_1min > cores + 0.5


# --------------------------------------------------------------------------------------------
# children
# --------------------------------------------------------------------------------------------
def child_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    if threads == 1:  # XLA: run its Eigen ops on the calling thread
        flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_cpu_multi_thread_eigen")]
        env["XLA_FLAGS"] = " ".join(flags + ["--xla_cpu_multi_thread_eigen=false"])
    return env


class Child:
    """A running worker (``benchmarks/worker.py``) for one backend at one thread count."""

    def __init__(self, backend: bk.Backend, threads: int, cores: list[int], log_dir: Path):
        self.backend, self.threads, self.cores = backend, threads, list(cores)
        self.log_path = log_dir / f"{backend.name}-{threads}.log"
        self._log = open(self.log_path, "wb")
        spec = json.dumps({"backend": backend.to_dict(), "threads": threads})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "refimpl.benchmarks.worker", spec], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, env=child_env(threads), preexec_fn=_pin(self.cores))
        self._buf = b""
        self.setups = 0  # rows set up so far: the first one pays the cold first-call cost
        self.info = self._reply(SETUP_TIMEOUT_S, "start")

    def stderr_tail(self, n: int = 800) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace").strip()
        except OSError:
            return ""

    def _reply(self, timeout: float, what: str) -> dict:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise ChildError(f"{self.backend.name}: no answer to {what} within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.proc.wait()
                raise ChildError(f"{self.backend.name}: the worker exited (status {self.proc.returncode}) "
                                 f"during {what}: {self.stderr_tail()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        rep = json.loads(line)
        if not rep.get("ok"):
            raise ChildError(f"{self.backend.name}: {what} failed: {rep.get('error')}")
        return rep

    def call(self, cmd: str, timeout: float = TIME_TIMEOUT_S, **kw) -> dict:
        try:
            self.proc.stdin.write((json.dumps({"cmd": cmd, **kw}) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ChildError(f"{self.backend.name}: the worker is gone ({exc}): {self.stderr_tail()}") from None
        return self._reply(timeout, cmd)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("exit", timeout=10)
                self.proc.wait(timeout=10)
            except (ChildError, subprocess.TimeoutExpired):
                pass
            self.kill()
        self._log.close()


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------
def quartiles(x) -> dict:
    """{"median", "q1", "q3"} of ``x`` (linear interpolation), None entries when x is empty."""
    x = np.asarray([v for v in x if v is not None], dtype=float)
    if not x.size:
        return {"median": None, "q1": None, "q3": None}
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3)}


def summarize_row(row: dict) -> dict:
    """Fill in a row's per-backend statistics and its ratios from the per-round times.

    Each timed backend gets ``median_s``/``q1_s``/``q3_s`` over its round times, ``cpu_per_wall``
    (CPU time of all its threads ÷ wall time over the timed steps), ``compile_s`` and ``gflops``;
    ``best`` is refimpl's backend with the smallest median, and every backend gets ``vs_best``:
    the per-round ratio backend ÷ best (median, q1, q3). ``ratio``: refimpl's best ÷ the fastest
    competitor (smallest median), per round, with both names; None without a timed competitor."""
    timed = {n: b for n, b in row["backends"].items() if b.get("round_s")}
    for b in timed.values():
        q = quartiles(b["round_s"])
        b["median_s"], b["q1_s"], b["q3_s"] = q["median"], q["q1"], q["q3"]
        b["cpu_per_wall"] = b["cpu_s"] / b["wall_s"] if b.get("wall_s") else None
        if b.get("first_call_s") is not None and b.get("first_step_s") is not None:
            b["compile_s"] = max(0.0, b["first_call_s"] + b["first_step_s"] - 2 * b["median_s"])
        if row.get("flops"):
            b["gflops"] = row["flops"] / b["median_s"] / 1e9
            if row.get("gemm_gflops"):
                b["peak_fraction"] = b["gflops"] / row["gemm_gflops"]
    ours = {n: b for n, b in timed.items() if b["kind"] == "refimpl"}
    theirs = {n: b for n, b in timed.items() if b["kind"] == "competitor"}
    row["best"] = min(ours, key=lambda n: ours[n]["median_s"]) if ours else None
    row["fastest_competitor"] = min(theirs, key=lambda n: theirs[n]["median_s"]) if theirs else None
    row["ratio"] = None
    if row["best"] is None:
        return row
    best = np.asarray(timed[row["best"]]["round_s"])
    for b in timed.values():
        b["vs_best"] = quartiles(np.asarray(b["round_s"]) / best) if len(b["round_s"]) == len(best) else None
    if row["fastest_competitor"] is not None:
        comp = np.asarray(timed[row["fastest_competitor"]]["round_s"])
        if comp.size == best.size:
            per_round = best / comp
            row["ratio"] = {"refimpl": row["best"], "competitor": row["fastest_competitor"],
                            "rounds": per_round.tolist(), **quartiles(per_round)}
    return row


# --------------------------------------------------------------------------------------------
# one row: setup, rounds, reports
# --------------------------------------------------------------------------------------------
def run_row(children: dict, spec: dict, settings: dict, rng: random.Random, log=print) -> dict:
    """Time ``spec`` (problem, sizes label and values, dtype, threads, cores) on every child."""
    name, dtype = spec["problem"], spec["dtype"]
    load_before = load_average()
    row = {k: spec[k] for k in ("problem", "sizes", "dtype", "threads", "cores")}
    row.update(model=problems.model_of(name).name, load_before=load_before, backends={})
    prob = problems.make_problem(name, dtype, settings["seed"], **spec["values"])
    row["config"] = {**prob.config, **{k: v for k, v in prob.options.items()}}
    row["flops"] = int(sum(problems.flops(name, row["config"]).values()))
    # the GEMM rate first (its arrays must not count in the peak memory the setup starts measuring)
    refs = [n for n, ch in children.items() if ch.backend.kind == "refimpl" and ch.alive()]
    gemm_child = next((children[n] for n in refs if children[n].backend.variant == "numpy"), None) or (
        children[refs[0]] if refs else None)
    if gemm_child is not None and settings.get("gemm_n"):
        try:
            row["gemm_gflops"] = gemm_child.call("gemm", dtype=dtype, n=settings["gemm_n"])["gflops"]
        except ChildError as exc:
            log(f"    GEMM rate not measured: {exc}")
    ok = []
    for bname, ch in children.items():
        b = ch.backend
        rec = {"label": b.label, "kind": b.kind, "library": b.library, "variant": b.variant, "form": b.form,
               "import_s": ch.info.get("import_s"), "rss_imports_mb": ch.info.get("rss_mb"), "cold": ch.setups == 0}
        ch.setups += 1
        row["backends"][bname] = rec
        if not ch.alive():
            rec["error"] = f"the worker is gone: {ch.stderr_tail()}"
            continue
        try:
            rep = ch.call("setup", SETUP_TIMEOUT_S, problem=name, dtype=dtype, sizes=spec["values"], seed=settings["seed"],
                          warmup_s=settings["warmup_s"], parity_rtol=PARITY_RTOL[dtype])
        except ChildError as exc:
            rec["error"] = str(exc)
            log(f"    {bname:<22} not timed: {exc}")
            continue
        rec.update({k: rep.get(k) for k in ("parity_max_rel", "grad_dtype", "first_call_s", "first_step_s",
                                            "step_est_s", "warmup_steps")})
        if rep.get("error"):
            rec["error"] = rep["error"]
            log(f"    {bname:<22} not timed: {rep['error']}")
            continue
        ok.append(bname)
    slowest = max((row["backends"][n]["step_est_s"] for n in ok), default=0.0)
    K = settings["repeats"] or int(min(MAX_STEPS, max(MIN_STEPS, math.ceil(settings["round_s"] / max(slowest, 1e-9)))))
    row.update(steps_per_round=K, rounds=settings["rounds"], order=[])
    for n in ok:
        row["backends"][n].update(round_s=[], cpu_s=0.0, wall_s=0.0, idle_cpu_s=0.0)
    # a pause between backends: thread pools spin for a while after their last task (OpenBLAS
    # ~0.1 s), and with more than one thread that would steal the next backend's cores
    gap = settings["gap_s"] if len(spec["cores"]) == 1 else max(settings["gap_s"], MULTI_THREAD_GAP_S)
    row["gap_s"] = gap
    for _ in range(settings["rounds"]):
        order = rng.sample(ok, len(ok))
        row["order"].append(order)
        for n in order:
            rec = row["backends"][n]
            try:
                rep = children[n].call("time", k=K)
            except ChildError as exc:
                rec["error"] = str(exc)
                ok.remove(n)
                continue
            rec["round_s"].append(float(np.median(rep["times"])))
            rec["cpu_s"] += rep["cpu_s"]
            rec["wall_s"] += rep["wall_s"]
            rec["idle_cpu_s"] += rep["idle_cpu_s"]
            time.sleep(gap)
    for n in list(row["backends"]):
        rec = row["backends"][n]
        if n not in ok:
            rec.pop("round_s", None)
            continue
        try:
            rep = children[n].call("report")
        except ChildError as exc:
            rec["error"] = str(exc)
            continue
        rec.update({k: rep.get(k) for k in ("peak_rss_mb", "affinity", "os_threads", "thread_cpus", "numba_threads",
                                            "numba_threading_layer", "torch_threads", "torch_interop_threads",
                                            "xla_flags", "blas_pools")})
    for n in ok:
        row["backends"][n]["checks"] = thread_checks(row["backends"][n], spec["threads"], spec["cores"])
    row["load_after"] = load_average()
    row["not_idle"] = not_idle(max(row["load_before"][0], row["load_after"][0]), len(spec["cores"]))
    return summarize_row(row)


def thread_checks(rec: dict, threads: int, cores) -> list[str]:
    """What does not match the pinning: pools with another thread count, threads running on other
    cores, more CPU time than the pinned cores give. Empty when everything matches."""
    out = []
    pools = [p for p in rec.get("blas_pools") or [] if p.get("num_threads") != threads]
    if pools:
        out.append("pools " + ", ".join(f"{p.get('internal_api')}={p.get('num_threads')}" for p in pools))
    for key in ("numba_threads", "torch_threads"):
        if rec.get(key) is not None and rec[key] != threads:
            out.append(f"{key}={rec[key]}")
    if rec.get("thread_cpus") is not None and not set(rec["thread_cpus"]) <= set(cores):
        out.append(f"threads on CPUs {rec['thread_cpus']}, pinned to {list(cores)}")
    cpw = rec["cpu_s"] / rec["wall_s"] if rec.get("wall_s") else None
    if cpw is not None and cpw > len(cores) + 0.05:
        out.append(f"CPU/wall {cpw:.2f} > {len(cores)} pinned cores")
    return out


def describe_row(row: dict) -> str:
    head = (f"  {row['problem']} {row['sizes']} {row['dtype']} {row['threads']} thread(s) on cores {row['cores']}: "
            f"K={row.get('steps_per_round')} steps × {row.get('rounds')} rounds, load {row['load_before'][0]:.2f} → "
            f"{row['load_after'][0]:.2f}" + ("  [machine not idle]" if row.get("not_idle") else ""))
    lines = [head]
    for n, b in row["backends"].items():
        if b.get("median_s") is None:
            lines.append(f"    {n:<22} not timed: {b.get('error', '?')}")
            continue
        vs = b.get("vs_best") or {}
        lines.append(
            f"    {n:<22} {b['median_s'] * 1e3:10.4g} ms [{b['q1_s'] * 1e3:.4g}, {b['q3_s'] * 1e3:.4g}]"
            f"  ×best {vs.get('median', float('nan')):6.3g}  cpu/wall {b['cpu_per_wall']:.2f}"
            f"  peak RSS {b.get('peak_rss_mb') or float('nan'):.0f} MB  compile {b.get('compile_s', float('nan')):.2f} s"
            + (f"  CHECK: {'; '.join(b['checks'])}" if b.get("checks") else ""))
    r = row.get("ratio")
    if r:
        lines.append(f"    ratio {r['refimpl']} ÷ {r['competitor']}: {r['median']:.3g} [{r['q1']:.3g}, {r['q3']:.3g}]")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# plan: which rows, which children
# --------------------------------------------------------------------------------------------
def plan_rows(name: str, dtypes, threads, sizes: str) -> dict:
    """{thread count: [row spec without cores]} for problem ``name``."""
    mod_dtypes = [d for d in problems.dtypes(name) if d in dtypes]
    first, rest = threads[0], threads[1:]
    main_label = "small" if sizes == "small" else "paper"
    plan = {t: [] for t in threads}
    plan[first] += [{"problem": name, "sizes": main_label, "values": dict(problems.sizes_of(name, main_label)),
                     "dtype": d, "threads": first} for d in mod_dtypes]
    if rest and "float64" in mod_dtypes:
        large = problems.sizes_of(name, "large") if sizes == "paper" else None
        label, values = ("large", large) if large is not None else (main_label, problems.sizes_of(name, main_label))
        for t in threads:
            if label == main_label and t == first:
                continue  # that row exists already
            plan[t].append({"problem": name, "sizes": label, "values": dict(values), "dtype": "float64", "threads": t})
    return {t: rows for t, rows in plan.items() if rows}


def scaling_rows(name: str, paper_row: dict, points) -> list[tuple[str, list, list]]:
    """[(size, values, backend names)] of the scaling curves of ``name``: refimpl's best path of
    ``paper_row`` and its fastest competitor other than torch.compile."""
    mod = problems.load(name)
    spec = getattr(mod, "SCALING", {})
    timed = {n: b for n, b in paper_row["backends"].items() if b.get("median_s")}
    comp = {n: b for n, b in timed.items() if b["kind"] == "competitor" and b["variant"] != "compile"}
    chosen = [paper_row["best"]] if paper_row.get("best") else []
    if comp:
        chosen.append(min(comp, key=lambda n: comp[n]["median_s"]))
    return [(size, list(values[:points] if points else values), chosen) for size, values in spec.items()] if chosen else []


def run_scaling(children: dict, name: str, paper_row: dict, settings: dict, rng, log=print) -> list[dict]:
    mod = problems.load(name)
    base = getattr(mod, "SCALING_BASE", {})
    curves = []
    sub_settings = {**settings, "rounds": max(2, settings["rounds"] // 3), "gemm_n": None}
    for size, values, chosen in scaling_rows(name, paper_row, settings["scaling_points"]):
        pts = {n: [] for n in chosen}
        for v in values:
            spec = {"problem": name, "sizes": f"{size}={v}", "values": {**base, size: v}, "dtype": "float64",
                    "threads": paper_row["threads"], "cores": paper_row["cores"]}
            row = run_row({n: children[n] for n in chosen}, spec, sub_settings, rng, log=lambda *_: None)
            for n in chosen:
                if row["backends"][n].get("median_s"):
                    pts[n].append((v, row["backends"][n]["median_s"]))
        for n, xy in pts.items():
            if len(xy) < 2:
                continue
            x, t = np.array(xy, dtype=float).T
            slope = float(np.polyfit(np.log(x), np.log(t), 1)[0])
            curve = {"problem": name, "backend": n, "size": size, "values": x.tolist(), "median_s": t.tolist(),
                     "exponent": slope, "base": base}
            if hasattr(mod, "fit_scaling"):
                curve.update(mod.fit_scaling(size, x, t))
            curves.append(curve)
            log(f"  scaling {name} {n:<22} vs {size:<8} exponent {slope:5.2f}  "
                + "  ".join(f"{int(xi)}:{ti * 1e3:.3g}ms" for xi, ti in zip(x, t)))
    return curves


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def check_arguments(models, threads, dtypes, backends, repeats, rounds, sizes, compare, strict, json_path, plot_dir):
    """Every argument error, as one-line ``ValueError``s, before any work starts."""
    names = problems.names()
    models = list(models) if models else list(names)
    bad = [m for m in models if m not in names]
    if bad:
        raise ValueError(f"unknown benchmark problem(s) {bad}; allowed: {list(names)}")
    cores = available_cores()
    threads = [t for t in (1, 2) if t <= len(cores)] if threads is None else list(threads)
    if not threads or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in threads):
        raise ValueError(f"--threads must be integers ≥ 1, got {threads}")
    if max(threads) > len(cores):
        raise ValueError(f"--threads {max(threads)} needs {max(threads)} cores to pin to; this process may use "
                         f"{len(cores)} ({cores})")
    if len(set(threads)) != len(threads):
        raise ValueError(f"--threads lists a thread count twice: {threads}")
    dtypes = list(dtypes)
    bad = [d for d in dtypes if d not in DTYPES]
    if not dtypes or bad:
        raise ValueError(f"unknown dtype(s) {bad or dtypes}; allowed: {list(DTYPES)}")
    for flag, v in (("--repeats", repeats), ("--rounds", rounds)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            what = "timed steps per backend per round" if flag == "--repeats" else "rounds"
            raise ValueError(f"{flag} must be an integer ≥ 1 ({what}), got {v!r}")
    if sizes not in SIZES:
        raise ValueError(f"--sizes must be one of {list(SIZES)}, got {sizes!r}")
    bk.check_requested(backends, models)
    baseline = None
    if strict and compare is None:
        raise ValueError("--strict needs --compare BASELINE.json")
    if compare is not None:
        from refimpl.benchmarks.report import load_record

        baseline = load_record(compare)
    for flag, p in (("--json", json_path), ("--plot", plot_dir)):
        if p is not None:
            parent = Path(p).parent if flag == "--json" else Path(p)
            if flag == "--json" and not parent.is_dir():
                raise ValueError(f"{flag} {p}: folder {parent} does not exist")
            if flag == "--json" and Path(p).is_dir():
                raise ValueError(f"{flag} {p} is a folder; give a file name (e.g. {Path(p) / 'bench.json'})")
            if flag == "--plot" and parent.exists() and not parent.is_dir():
                raise ValueError(f"{flag} {p} exists and is not a folder")
    return models, threads, dtypes, baseline


def main(models=None, quick: bool = False, json_path=None, plot_dir=None, threads=None, repeats=None,
         dtypes=DTYPES, backends=None, rounds=None, scaling: bool = False, compare=None, strict: bool = False,
         sizes: str = "paper", seed: int = 0, log=print) -> int:
    """``refimpl bench``: returns the exit status (0, or 1 for a failed run or, with ``strict``,
    a ratio more than 20% worse than the baseline's). ``threads``: thread counts (default 1 and 2,
    as far as this process has cores)."""
    models, threads, dtypes, baseline = check_arguments(models, threads, dtypes, backends, repeats, rounds, sizes,
                                                        compare, strict, json_path, plot_dir)
    prof = PROFILES["quick" if quick else "full"]
    settings = {**prof, "rounds": rounds or prof["rounds"], "repeats": repeats, "seed": seed}
    rng = random.Random(time.time_ns())
    cores = available_cores()
    t_start = time.perf_counter()
    record = {"format": FORMAT, "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "settings": {"quick": quick, "sizes": sizes, "threads": threads, "dtypes": dtypes,
                           "problems": models, "backends": backends, "scaling": scaling, **settings},
              "machine": {**machine(), "load_before": load_average()}, "rows": [], "scaling": [], "left_out": {}}
    log(f"refimpl bench: {record['machine']['cpu_model']}, cores {cores}, load {record['machine']['load_before']}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="refimpl-bench-") as tmp:
        for name in models:
            chosen, left_out = bk.select(name, backends, skip=quick_skip(backends) if quick else {})
            if left_out:
                record["left_out"][name] = left_out
                log(f"{name}: left out " + ", ".join(f"{n} ({why})" for n, why in left_out.items()))
            if not chosen:
                continue
            for t, specs in plan_rows(name, dtypes, threads, sizes).items():
                children = {}
                try:
                    for b in chosen:
                        try:
                            children[b.name] = Child(b, t, cores[:t], Path(tmp))
                        except ChildError as exc:
                            log(f"  {b.name}: could not start: {exc}")
                            record["left_out"].setdefault(name, {})[b.name] = str(exc)
                    for spec in specs:
                        row = run_row(children, {**spec, "cores": cores[:t]}, settings, rng, log)
                        record["rows"].append(row)
                        log(describe_row(row))
                        if not row["best"]:
                            failed = True
                        if (scaling and sizes == "paper" and row["sizes"] == "paper" and row["dtype"] == "float64"
                                and t == threads[0]):
                            record["scaling"] += run_scaling(children, name, row, settings, rng, log)
                    if "blas" not in record["machine"]:
                        rep = next((r["backends"][n] for r in record["rows"] for n in r["backends"]
                                    if r["backends"][n].get("blas_pools")), None)
                        if rep:
                            record["machine"]["blas"] = rep["blas_pools"]
                except BaseException:  # Ctrl-C, or a bug: stop the children at once
                    for ch in children.values():
                        ch.kill()
                    raise
                finally:
                    for ch in children.values():
                        ch.close()
    record["machine"]["load_after"] = load_average()
    record["machine"]["not_idle"] = any(r.get("not_idle") for r in record["rows"])
    record["wall_s"] = time.perf_counter() - t_start
    from refimpl.benchmarks import report

    log(report.summary(record))
    status = 1 if failed else 0
    if baseline is not None:
        findings = report.compare(record, baseline)
        record["comparison"] = findings
        log(report.describe_comparison(findings, compare))
        if strict and findings["worse"]:
            status = 1
    if json_path:
        report.write_record(record, json_path)
        log(f"wrote {json_path}")
    if plot_dir:
        for p in report.write_outputs(record, Path(plot_dir)):
            log(f"wrote {p}")
    return status
