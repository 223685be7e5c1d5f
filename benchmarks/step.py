"""Median training-step time of the NumPy and Numba paths at the default preset.

One step = loss_and_grads on a fixed batch + the SGD update (spec L11); batch sampling is timed
separately. Threads are pinned (BLAS through threadpoolctl, Numba through numba.set_num_threads)
and recorded. Warm-up calls (including Numba compilation or cache loading) are excluded and
reported as ``first_call_s``.
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np


def _time(fn, repeats: int, warmup: int = 3) -> dict:
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts = np.array(ts)
    return {"median_s": float(np.median(ts)), "min_s": float(ts.min()), "max_s": float(ts.max()),
            "first_call_s": first, "repeats": repeats}


def bench_li2024(repeats: int) -> list[dict]:
    from refimpl.li2024 import init_params, loss_and_grads, make_instance, preset, sample_batch

    cfg = preset("default")
    inst = make_instance(cfg.data, 0)
    params = init_params(cfg, 1)
    rng = np.random.default_rng(2)
    batch = sample_batch(inst, cfg.train.batch_size, rng)
    opts = cfg.model.options()
    lr = cfg.train.lr
    records = []
    for backend in ("numpy", "numba"):
        p = {k: v.copy() for k, v in params.items()}

        def step():
            loss, grads = loss_and_grads(p, batch, backend, check=False, **opts)
            for k, g in grads.items():
                p[k] -= lr * g

        records.append({"model": "li2024", "backend": backend, "dtype": "float64", **_time(step, repeats)})
    records.append({"model": "li2024", "backend": "sample_batch", "dtype": "float64",
                    **_time(lambda: sample_batch(inst, cfg.train.batch_size, rng), repeats)})
    conf = {"B": cfg.train.batch_size, "l": cfg.data.l_train, "d": cfg.data.d, "m": cfg.model.m}
    for r in records:
        r["config"] = conf
    return records


def main(model: str = "li2024", quick: bool = False, threads: int = 1, repeats: int | None = None,
         json_path: str | None = None) -> int:
    import numba
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, which Numba's np.dot calls, before pinning)
    from threadpoolctl import threadpool_info, threadpool_limits

    if threads < 1:
        raise ValueError(f"threads must be ≥ 1, got {threads}")
    repeats = repeats or (50 if quick else 300)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    with threadpool_limits(limits=threads):
        records = {"li2024": bench_li2024}[model](repeats)
        blas = [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()]
    env = {"threads": threads, "blas": blas, "numba_threads": numba.get_num_threads(),
           "cpu": platform.processor() or platform.machine(), "cpus_visible": os.cpu_count()}
    print(f"threads pinned: {threads} (BLAS pools {blas}, numba {env['numba_threads']})")
    print(f"{'model':<8} {'backend':<13} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'first call s':>13}")
    for r in records:
        r["threads"] = threads
        print(f"{r['model']:<8} {r['backend']:<13} {r['median_s'] * 1e3:10.3f} {r['min_s'] * 1e3:8.3f} "
              f"{r['max_s'] * 1e3:8.3f} {r['first_call_s']:13.3f}")
    by = {r["backend"]: r["median_s"] for r in records}
    print(f"numba speed-up over numpy: {by['numpy'] / by['numba']:.2f}x  (config {records[0]['config']})")
    if json_path:
        from refimpl.report import _atomic_write_bytes
        from pathlib import Path

        _atomic_write_bytes(Path(json_path), json.dumps({"env": env, "records": records}, indent=2).encode())
    return 0
