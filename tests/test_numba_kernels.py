"""Properties of the papers' Numba paths that hold across models (li2024, yang2024, huang2023):

- float32 is computed in float32: the float32 specialisations of the kernels contain no float64
  arithmetic (their LLVM IR), and their results are not float64 results rounded to float32 —
  yet they agree with the NumPy float32 path to float32 accuracy (≤ 1e−5 of each tensor's scale)
  at the benchmark sizes;
- ``backend="numba_parallel"``: equal to NumPy to ~1e−12 at large batches (yang2024: at the fig2
  size, both losses), bitwise deterministic run to run with a given thread count; huang2023's
  parallel kernel gives the serial kernel's bits for any thread count; yang2024's gives the serial
  bits on one thread and the serial attention S (per head) for any thread count.

The model contract (tests/test_contract.py) checks NumPy == Numba on every Numba backend at small
drawn sizes; the per-model files check the benchmark sizes of the single-threaded kernels and the
O(1) shape checks of the unchecked path (``check=False``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest

from refimpl import huang2023 as H
from refimpl import li2024
from refimpl import yang2024 as Y
from refimpl.core.jit import jit_disabled

needs_jit = pytest.mark.skipif(jit_disabled(), reason="benchmark sizes: the pure-Python kernels take minutes")


# --------------------------------------------------------------------------------------------
# the benchmark-size cases, float64 and float32 (the float32 arrays are the float64 ones rounded)
# --------------------------------------------------------------------------------------------
def li_case(B=64):
    cfg = li2024.preset("default", model={"train_a": True})
    rng = np.random.default_rng(0)
    params = li2024.init_params(cfg, 1)
    params["W_O"] = 2.0 * rng.standard_normal(params["W_O"].shape) / np.sqrt(params["W_O"].shape[1])
    params["W_Q"] = params["W_Q"] + 0.3 * rng.standard_normal(params["W_Q"].shape)
    batch = li2024.sample_batch(li2024.make_data(cfg, 0), B, rng)
    return cfg, params, {"P": batch["P"], "z": batch["z"]}


def yang_case(loss="sample"):
    cfg = Y.preset("fig2", loss=loss)  # H 64, N 30, K 200, d 100, B 256
    data = Y.make_data(cfg, 0)
    params = Y.init_params(cfg, 1)
    params["w"] = 0.1 * np.random.default_rng(2).standard_normal((cfg.H, cfg.K))
    return cfg, params, {**data, **Y.sample_batch(data, cfg.batch_size, np.random.default_rng(3))}


def huang_case(B=256, loss="sample", attend_to_query=False):
    K, N = 10, 100
    cfg = H.Config(K=K, N=N, loss=loss, attend_to_query=attend_to_query)
    b = H.sample_prompts(H.make_features(K, K, 0), np.full(K, 1.0 / K), N, B, 1)
    params = {"Q": 0.5 * np.random.default_rng(2).standard_normal((K, K))}
    return cfg, params, {k: b[k] for k in ("X", "xq", "y", "yq")}


CASES = {"li2024": (li2024, li_case), "yang2024": (Y, yang_case), "huang2023": (H, huang_case)}


def as32(d):
    return {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == np.float64 else v)
            for k, v in d.items()}


def ulps32(a, b):
    """|a − b| in units of float32 spacing at b (a, b float32)."""
    return np.abs(a.astype(np.float64) - b.astype(np.float64)) / np.spacing(np.abs(b)).astype(np.float64)


# --------------------------------------------------------------------------------------------
# float32 is float32
# --------------------------------------------------------------------------------------------
@needs_jit
@pytest.mark.parametrize("name", list(CASES))
def test_float32_numba_agrees_with_float32_numpy_and_is_not_float64_rounded(name):
    mod, case = CASES[name]
    cfg, p64, b64 = case()
    p32, b32 = as32(p64), as32(b64)
    l64, g64 = mod.loss_and_grads(p64, b64, cfg, "numpy")
    l_np, g_np = mod.loss_and_grads(p32, b32, cfg, "numpy")
    l_nb, g_nb = mod.loss_and_grads(p32, b32, cfg, "numba")
    assert abs(l_nb - l_np) <= 1e-5 * max(1.0, abs(l_np)), (l_nb, l_np)
    worst_ulps = 0.0
    for k in g_np:
        assert g_nb[k].dtype == np.float32, k
        scale = float(np.max(np.abs(g_np[k])))
        err = float(np.max(np.abs(g_nb[k].astype(np.float64) - g_np[k])))
        assert err <= 1e-5 * scale, f"{name} grad {k}: float32 Numba vs NumPy {err:.3g} > 1e-5 × {scale:.3g}"
        # a float64 computation rounded to float32 would be within ½ ulp of the rounded float64
        # gradient everywhere; a float32 computation (sums of tens to hundreds of terms) is not
        worst_ulps = max(worst_ulps, float(np.max(ulps32(g_nb[k], g64[k].astype(np.float32)))))
    assert worst_ulps > 2.0, f"{name}: the float32 gradients look like rounded float64 results ({worst_ulps} ulp)"


@needs_jit
def test_float32_kernels_contain_no_float64_arithmetic(tmp_path):
    """The LLVM IR of every float32 specialisation of the papers' single-threaded kernels (the
    parallel ones call the same per-prompt / per-chunk kernels): no float64 arithmetic and no
    float → double conversion (other than boxing a returned scalar for Python). Compiled afresh
    in a subprocess (cached machine code cannot be inspected); ~30 s of compilation."""
    script = textwrap.dedent("""
        import importlib, re
        import numpy as np
        from refimpl import huang2023 as H, li2024, yang2024 as Y

        cfg = li2024.preset("tiny", model={"train_a": True})
        p = {k: v.astype(np.float32) for k, v in li2024.init_params(cfg, 0).items()}
        b = li2024.sample_batch(li2024.make_data(cfg, 0), 4, np.random.default_rng(0))
        li2024.loss_and_grads(p, b, cfg, "numba")
        cfg = Y.Config(K=8, N=3, d=4, m=2, H=2, loss="sample")
        data = Y.make_data(cfg, 0)
        batch = {**data, **Y.sample_batch(data, 5, np.random.default_rng(1))}
        p = {k: v.astype(np.float32) + np.float32(0.1) for k, v in Y.init_params(cfg, 0).items()}
        Y.loss_and_grads(p, batch, cfg, "numba")
        cfg = H.preset("tiny", loss="Ew", attend_to_query=True)  # the loss and the option are arguments
        batch = H.sample_batch(H.make_data(cfg, 0), 4, np.random.default_rng(1))
        H.loss_and_grads({"Q": np.full((cfg.dim, cfg.dim), 0.1, np.float32)}, batch, cfg, "numba")
        n = 0
        for m in ("refimpl.li2024.kernels", "refimpl.yang2024.kernels", "refimpl.huang2023.kernels",
                  "refimpl.core.kernels"):
            mod = importlib.import_module(m)
            for name in dir(mod):
                f = getattr(mod, name)
                for sig in getattr(f, "signatures", ()):
                    if "float32" not in str(sig) or "float64" in str(sig):
                        continue
                    ir = f.inspect_llvm(sig)
                    assert ir, (m, name)
                    ext = re.findall(r"(%\\S+) = fpext float", ir)
                    boxed = set(re.findall(r"@PyFloat_FromDouble\\(double (%\\S+)\\)", ir))
                    bad = [e for e in ext if e not in boxed]
                    dops = re.findall(r"= f(?:add|sub|mul|div)( \\w+)* double", ir)
                    assert not bad and not dops, f"{m}.{name}{sig}: {len(bad)} fpext, {len(dops)} double ops"
                    n += 1
        assert n >= 6, n
        print("checked", n)
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "checked" in res.stdout


# --------------------------------------------------------------------------------------------
# numba_parallel
# --------------------------------------------------------------------------------------------
def _run(mod, cfg, params, batch, backend, threads=None):
    old = numba.get_num_threads()
    try:
        if threads is not None:
            numba.set_num_threads(threads)
        return mod.loss_and_grads(params, batch, cfg, backend, return_aux=True)
    finally:
        numba.set_num_threads(old)


def _same_bits(r1, r2):
    (l1, g1, a1), (l2, g2, a2) = r1, r2
    return (l1 == l2 and set(g1) == set(g2) and all(np.array_equal(g1[k], g2[k]) for k in g1)
            and np.array_equal(a1["out"], a2["out"]) and np.array_equal(a1["attn"], a2["attn"]))


PARALLEL = {"li2024": (li2024, lambda: li_case(B=600)), "huang2023": (H, lambda: huang_case(B=1001, loss="Ew")),
            "yang2024": (Y, yang_case), "yang2024-population": (Y, lambda: yang_case("population"))}


@needs_jit
@pytest.mark.parametrize("name", list(PARALLEL))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numba_parallel_equals_numpy_and_repeats_bit_for_bit(name, dtype):
    mod, case = PARALLEL[name]
    cfg, params, batch = case()
    if dtype == "float32":
        params, batch = as32(params), as32(batch)
    tol = 1e-12 if dtype == "float64" else 1e-5
    ref = _run(mod, cfg, params, batch, "numpy")
    threads = sorted({1, numba.config.NUMBA_NUM_THREADS})
    for t in threads:
        first = _run(mod, cfg, params, batch, "numba_parallel", t)
        assert abs(first[0] - ref[0]) <= tol * max(1.0, abs(ref[0]))
        for k in ref[1]:
            assert np.max(np.abs(first[1][k] - ref[1][k])) <= tol * max(1.0, float(np.max(np.abs(ref[1][k])))), k
        for _ in range(3):
            assert _same_bits(_run(mod, cfg, params, batch, "numba_parallel", t), first), f"{name}: {t} threads"


@needs_jit
@pytest.mark.parametrize("loss", ["sample", "Ew"])
@pytest.mark.parametrize("attend_to_query", [False, True])
def test_huang2023_parallel_kernel_gives_the_serial_bits_for_any_thread_count(loss, attend_to_query):
    cfg, params, batch = huang_case(B=517, loss=loss, attend_to_query=attend_to_query)
    serial = _run(H, cfg, params, batch, "numba")
    for t in range(1, numba.config.NUMBA_NUM_THREADS + 1):
        assert _same_bits(_run(H, cfg, params, batch, "numba_parallel", t), serial), t


@needs_jit
@pytest.mark.parametrize("loss", ["sample", "population"])
def test_yang2024_parallel_kernels_give_the_serial_bits_on_one_thread_and_the_serial_attention_on_any(loss):
    """The heads split over the threads: each head's S is computed as in the serial kernel (the
    same bits for any thread count); Â adds the chunks' shares in chunk order, so on one thread
    (one chunk) everything is the serial kernel's bits."""
    cfg, params, batch = yang_case(loss)
    serial = _run(Y, cfg, params, batch, "numba")
    assert _same_bits(_run(Y, cfg, params, batch, "numba_parallel", 1), serial)
    for t in range(2, numba.config.NUMBA_NUM_THREADS + 1):
        par = _run(Y, cfg, params, batch, "numba_parallel", t)
        assert np.array_equal(par[2]["attn"], serial[2]["attn"]), t
