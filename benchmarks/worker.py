"""The child process of ``refimpl bench``: one (problem, backend, thread count) per process.

Started by ``benchmarks/run.py`` as ``python -m refimpl.benchmarks.worker '<backend JSON>'``,
already pinned to its cores (``os.sched_setaffinity`` before exec) and with every thread pool's
environment variable set to the thread count (OMP, OpenBLAS, MKL, Numba, XLA). Here the pools
are pinned again before any work (threadpoolctl, ``numba.set_num_threads``,
``torch.set_num_threads``) and what they report is sent back.

Protocol: one JSON command per line on stdin, one JSON reply per line on the original stdout
(file descriptor 1 is redirected to stderr first, so nothing a library prints can corrupt it).

``setup``   build the problem (sizes, dtype, options, seed); compute refimpl's NumPy loss and
            gradients; make the runner; time its first loss-and-gradient call and its first
            step (compilation, cache loading); check parity; warm up. Reply: parity, first-call
            times, estimated step time, memory.
``time``    reset the runner to the initial parameters, then time ``k`` steps. Reply: every
            step's time, the process CPU time and wall time of the ``k`` steps (all threads),
            and the CPU time the process used since its previous command (idle spinning).
``gemm``    GFLOP/s of the best of ``repeats`` n×n GEMMs through NumPy's BLAS.
``report``  peak and current memory, OS threads and their affinity, the thread pools.
``exit``    stop.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mb() -> float | None:
    """The high-water mark of the resident set (VmHWM; since the last :func:`reset_peak`)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return kb / 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def affinity(pid: int = 0) -> list[int] | None:
    """The CPUs process (or thread) ``pid`` may run on; None where the OS cannot say."""
    return sorted(os.sched_getaffinity(pid)) if hasattr(os, "sched_getaffinity") else None


def os_threads() -> dict:
    """Number of OS threads of this process and the union of their CPU affinities (Linux)."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return {"os_threads": None, "thread_cpus": affinity()}
    cpus = set()
    for tid in tids:
        try:
            cpus |= set(affinity(tid) or ())
        except OSError:  # the thread ended meanwhile
            pass
    return {"os_threads": len(tids), "thread_cpus": sorted(cpus)}


def parity_error(ref, cand, floor: float = 1e-3) -> float:
    """max over loss and gradients of max|ours − theirs| / max(max|ours|, floor · G), G the largest
    gradient entry of all. The floor keeps gradients that are mathematically zero (the
    transformer's key bias: softmax ignores a shift shared by a query's scores) from comparing
    rounding noise with rounding noise; the exact per-tensor parity tests live in tests/."""
    import numpy as np

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


def gemm_gflops(dtype: str, n: int = 1000, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` n×n GEMMs (2n³ FLOPs) through NumPy's BLAS."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


class Worker:
    def __init__(self, backend: dict, threads: int):
        self.backend, self.threads = backend, threads
        self.runner = None
        self.problem = None

    # ---------------------------------------------------------------- start-up
    def start(self) -> dict:
        t0 = time.perf_counter()
        import numba
        import numpy as np
        import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, which Numba's np.dot calls, before pinning)
        from threadpoolctl import threadpool_limits

        lib = self.backend["library"]
        if lib == "refimpl":
            # Numba's thread pool only where refimpl's kernels run: launched in a PyTorch process, it
            # made torch's 2-thread attention ~100x slower (scaled_dot_product_attention in float64,
            # 3.5 ms -> 380 ms a step), which the 2-thread rows used to measure as torch's speed
            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        self._limits = threadpool_limits(limits=self.threads)  # kept for the process's life
        if lib == "torch":
            import torch

            torch.set_num_threads(self.threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass
        elif lib == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)
        import refimpl.benchmarks.competitors  # noqa: F401
        import refimpl.benchmarks.problems  # noqa: F401

        self._np = np
        return {"pid": os.getpid(), "affinity": affinity(), "import_s": time.perf_counter() - t0,
                "rss_mb": rss_mb(), "versions": versions(lib)}

    # ---------------------------------------------------------------- commands
    def setup(self, problem, dtype, sizes, options=None, seed=0, warmup_s=0.5, parity_rtol=1e-8, min_warmup=2):
        import gc

        from refimpl.benchmarks import competitors, problems

        self.runner = self.problem = None
        gc.collect()
        prob = problems.make_problem(problem, dtype, seed, options=options, **sizes)
        ref = problems.reference_step(prob, "numpy").loss_and_grads()
        gc.collect()
        peak_reset = reset_peak()
        b = self.backend
        if b["kind"] == "refimpl":
            runner = problems.reference_step(prob, b["variant"])
        else:
            runner = competitors.make_runner(prob, b["library"], b["variant"], b["form"])
        t0 = time.perf_counter()
        cand = runner.loss_and_grads()  # first call: compilation / cache loading happens here
        first_call = time.perf_counter() - t0
        err = parity_error(ref, cand)
        grad_dtype = str(next(iter(cand[1].values())).dtype) if cand[1] else None
        out = {"parity_max_rel": err, "parity_rtol": parity_rtol, "grad_dtype": grad_dtype, "first_call_s": first_call}
        if not err <= parity_rtol:
            out["error"] = f"parity {err:.2e} > {parity_rtol:.0e}: not timed"
            return out
        runner.reset()
        t0 = time.perf_counter()
        runner.step()  # first step (a jitted step is a second function)
        out["first_step_s"] = time.perf_counter() - t0
        ts = []
        start = time.perf_counter()
        while len(ts) < min_warmup or time.perf_counter() - start < warmup_s:
            t0 = time.perf_counter()
            runner.step()
            ts.append(time.perf_counter() - t0)
        ts.sort()
        out.update(step_est_s=ts[len(ts) // 2], warmup_steps=len(ts), rss_mb=rss_mb(),
                   peak_reset=peak_reset)
        self.runner, self.problem = runner, prob
        return out

    def time(self, k: int):
        if self.runner is None:
            raise RuntimeError("time before a successful setup")
        self.runner.reset()
        step = self.runner.step
        clock = time.perf_counter
        ts = []
        c0, w0 = time.process_time(), clock()
        for _ in range(int(k)):
            t0 = clock()
            step()
            ts.append(clock() - t0)
        w1, c1 = clock(), time.process_time()
        return {"times": ts, "cpu_s": c1 - c0, "wall_s": w1 - w0, "settle_s": self.settle()}

    def settle(self, window: float = 0.02, quiet: float = 0.002, limit: float = 1.0) -> float:
        """Wait until this process's thread pools stop spinning (less than ``quiet`` s of CPU in a
        ``window`` s window, at most ``limit`` s) before replying: with more than one thread, BLAS
        and OpenMP workers spin for up to ~0.1 s after the last call, and on a machine the backends
        share, that spinning would slow whichever backend the harness times next. Returns the
        seconds waited (0 on one thread, where the process runs on one core of its own)."""
        if self.threads <= 1:
            return 0.0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < limit:
            c = time.process_time()
            time.sleep(window)
            if time.process_time() - c < quiet:
                break
        return time.perf_counter() - t0

    def gemm(self, dtype, n=1000, repeats=5):
        return {"gflops": gemm_gflops(dtype, n, repeats)}

    def report(self):
        import numba
        from threadpoolctl import threadpool_info

        out = {"peak_rss_mb": peak_rss_mb(), "rss_mb": rss_mb(), "affinity": affinity(),
               **os_threads(), "numba_threads": numba.get_num_threads(),
               "blas_pools": [{k: i.get(k) for k in ("internal_api", "num_threads", "version", "architecture",
                                                     "threading_layer", "filepath")} for i in threadpool_info()]}
        try:
            out["numba_threading_layer"] = numba.threading_layer()
        except ValueError:  # no parallel kernel has run
            out["numba_threading_layer"] = None
        if self.backend["library"] == "torch":
            import torch

            out["torch_threads"] = torch.get_num_threads()
            out["torch_interop_threads"] = torch.get_num_interop_threads()
        if self.backend["library"] == "jax":
            out["xla_flags"] = os.environ.get("XLA_FLAGS", "")
        return out


def versions(library: str | None = None) -> dict:
    """Python and library versions (torch / jax only when ``library`` names them)."""
    import platform

    import numba
    import numpy as np
    import scipy

    v = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
         "numba": numba.__version__}
    try:
        import llvmlite

        v["llvmlite"] = llvmlite.__version__
    except ImportError:
        pass
    if library == "torch":
        import torch

        v["torch"] = torch.__version__
    if library == "jax":
        import jax
        import jaxlib

        v["jax"], v["jaxlib"] = jax.__version__, jaxlib.__version__
    return v


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints go to stderr
    spec = json.loads(argv[0])

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    worker = Worker(spec["backend"], int(spec["threads"]))
    try:
        send({"ok": True, **worker.start()})
    except Exception as exc:  # noqa: BLE001  (reported to the parent, which decides)
        send({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]})
        return 1
    idle_from = time.process_time()
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        name = cmd.pop("cmd")
        if name == "exit":
            send({"ok": True})
            break
        idle = time.process_time() - idle_from
        try:
            res = getattr(worker, name)(**cmd)
            send({"ok": True, "idle_cpu_s": idle, **res})
        except Exception as exc:  # noqa: BLE001
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]})
        idle_from = time.process_time()
    return 0


if __name__ == "__main__":
    sys.exit(main())
