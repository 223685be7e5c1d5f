"""The Numba path of the spec T transformer (refimpl/transformer/kernels.py) against the NumPy
path (model.py / blocks.py, the readable reference).

- every one of the 64 option combinations (norm × activation × causal × positions × read-out ×
  loss), float64 to 1e−12 and float32 to 1e−5 of each tensor's scale; random shapes and options
  (hypothesis); the benchmark size (gpt2_3l2h, B = 64, T = 21) and a vaswani4-shaped model;
- the golden vectors (the committed export's loss, output, attention and every gradient);
- float32 is computed in float32 (outputs and gradients float32, and carrying float32 rounding);
- reused buffers: gradients returned by one call survive the next; configs, shapes and dtypes can
  alternate; threads get their own buffers;
- non-finite inputs behave as on the NumPy path (NaN propagates into the loss and the
  gradients), and training on them raises ``NonFiniteError``.

The tolerance of a tensor is rel × its scale: its largest |entry|, but at least 1e−2 of the
largest gradient entry of the model, and for ``attn.b_K`` at least the scale of the same layer's
``attn.W_K`` gradient. Some gradients are zero in exact arithmetic, their computed entries
rounding noise of the terms summed into them: ``attn.b_K`` always (the softmax ignores a shift
shared by a query's scores), and the query and key maps when T = 1 (a single key has weight 1).
A wrong formula gives errors of the tensor's own size, far above these floors.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.core.errors import NonFiniteError
from refimpl.core.jit import jit_disabled
from refimpl.testing import assert_matches, golden
from refimpl.transformer import init_params, loss_and_grads, preset, train_adam

OPTIONS = {"norm": ("pre", "post"), "activation": ("gelu", "relu"), "causal": (False, True),
           "positions": ("none", "learned"), "readout": ("all", "last"), "loss": ("squared", "hinge")}
COMBOS = [dict(zip(OPTIONS, c)) for c in itertools.product(*OPTIONS.values())]
RTOL = {np.float64: 1e-12, np.float32: 1e-5}
FLOOR = 1e-2  # a tensor's scale is at least FLOOR × the largest gradient entry (module docstring)


def make_case(cfg, B, T, dt=np.float64, seed=0, noise=0.3):
    """Parameters off their initial values (every bias, gain and position nonzero) and a batch."""
    rng = np.random.default_rng(seed)
    params = {k: (v + noise * rng.standard_normal(v.shape)).astype(dt) for k, v in init_params(cfg, seed).items()}
    X = rng.standard_normal((B, T, cfg.d_in)).astype(dt)
    shape = (B, T) if cfg.readout == "all" else (B,)
    t = np.where(rng.random(shape) < 0.5, -1.0, 1.0) if cfg.loss == "hinge" else rng.standard_normal(shape)
    return params, {"X": X, "target": t.astype(dt)}


def assert_close(name, got, ref, tol):
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != {ref.shape}"
    err = np.abs(got - ref)
    if not np.all(err <= tol):
        i = np.unravel_index(int(np.argmax(err)), err.shape)
        raise AssertionError(f"{name}: max |diff| {err.max():.3e} > tolerance {tol:.3e} at {tuple(map(int, i))}: "
                             f"numba {got[i]!r}, numpy {ref[i]!r}")


def assert_same(cfg, params, batch, dt=np.float64):
    """Numba == NumPy on loss, output, attention and every gradient (tolerances: module docstring)."""
    rel = RTOL[dt]
    l1, g1, a1 = loss_and_grads(params, batch, cfg, "numpy", return_aux=True)
    l2, g2, a2 = loss_and_grads(params, batch, cfg, "numba", return_aux=True)
    assert set(g2) == set(g1)
    top = max(float(np.max(np.abs(g))) for g in g1.values())
    for k in g1:
        assert g2[k].dtype == dt and g2[k].shape == g1[k].shape, k
        scale = max(float(np.max(np.abs(g1[k]))), FLOOR * top)
        if k.endswith("attn.b_K"):
            scale = max(scale, float(np.max(np.abs(g1[k[:-3] + "W_K"]))))
        assert_close(f"grad {k}", g2[k], g1[k], rel * scale)
    assert_close("loss", l2, l1, rel * max(abs(l1), a1["scale"] * 1e-3))
    assert a2["out"].dtype == dt
    assert_close("out", a2["out"], a1["out"], rel * max(1.0, float(np.max(np.abs(a1["out"])))))
    assert len(a2["attn"]) == cfg.n_layers
    for l, (x, y) in enumerate(zip(a2["attn"], a1["attn"])):
        assert_close(f"attn layer {l}", x, y, rel)
    assert a2["kink_margin"] == pytest.approx(a1["kink_margin"], rel=1e3 * rel, abs=1e3 * rel)
    assert a2["scale"] == pytest.approx(a1["scale"], rel=1e3 * rel)
    return g1, g2


@pytest.mark.parametrize("opts", COMBOS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_every_option_combination_matches_numpy(opts):
    cfg = preset("tiny", **opts, n_layers=2, d_model=8, n_heads=2, d_ff=12)
    for dt in (np.float64, np.float32):
        params, batch = make_case(cfg, B=3, T=5, dt=dt, seed=len(str(opts)))
        assert_same(cfg, params, batch, dt)


@settings(max_examples=30)
@given(data=st.data())
def test_random_shapes_and_options_match_numpy(data):
    H = data.draw(st.integers(1, 3), label="n_heads")
    opts = {k: data.draw(st.sampled_from(v), label=k) for k, v in OPTIONS.items()}
    T = data.draw(st.integers(1, 7), label="T")
    # d_model ≥ 4: a layer norm over 2 entries maps every row to ±1 (times √(σ²/(σ² + ε))), and its
    # condition number then amplifies rounding beyond 1e−12 on either path
    d_head = data.draw(st.integers(-(-4 // H), 5), label="d_head")
    cfg = preset("tiny", **opts, n_layers=data.draw(st.integers(1, 3), label="n_layers"), n_heads=H,
                 d_model=H * d_head, d_ff=data.draw(st.integers(1, 20), label="d_ff"),
                 d_in=data.draw(st.integers(1, 6), label="d_in"), max_T=T + data.draw(st.integers(0, 2), label="pad_T"))
    B = data.draw(st.integers(1, 4), label="B")
    params, batch = make_case(cfg, B, T, seed=data.draw(st.integers(0, 2**16), label="seed"))
    assert_same(cfg, params, batch)


@pytest.mark.skipif(jit_disabled(), reason="benchmark size: the pure-Python kernels take minutes")
@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["float64", "float32"])
def test_benchmark_size_matches_numpy(dt):
    cfg = preset("gpt2_3l2h", max_T=64)  # the benchmark problem: B = 64 prompts of T = 21 tokens
    params, batch = make_case(cfg, B=64, T=21, dt=dt, noise=0.02)
    assert_same(cfg, params, batch, dt)


@pytest.mark.skipif(jit_disabled(), reason="large widths: the pure-Python kernels take minutes")
def test_vaswani4_shape_matches_numpy():
    cfg = preset("vaswani4")  # post-norm, ReLU, no mask, no positions, d_model 256, 8 heads
    params, batch = make_case(cfg, B=3, T=9, noise=0.02)
    assert_same(cfg, params, batch)


def test_golden_vectors_are_reproduced():
    ref = golden("transformer", seed=0)
    from refimpl.transformer.golden import GOLDEN

    names = [k[len("param/"):] for k in ref if k.startswith("param/")]
    params = {n: ref[f"param/{n}"] for n in names}
    batch = {"X": ref["input/X"], "target": ref["input/target"]}
    loss, grads, aux = loss_and_grads(params, batch, GOLDEN, "numba", return_aux=True)
    cand = {"output/loss": np.asarray(loss), "output/out": aux["out"], "output/attn": np.stack(aux["attn"])}
    cand.update({f"grad/{k}": v for k, v in grads.items()})
    assert_matches(cand, ref, sections=("output", "grad"))


def test_float32_is_computed_in_float32():
    cfg = preset("gpt2_3l2h", d_model=16, d_ff=32, d_in=5, max_T=8)
    p64, b64 = make_case(cfg, B=4, T=6)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    b32 = {k: v.astype(np.float32) for k, v in b64.items()}
    _, g64 = loss_and_grads(p64, b64, cfg, "numba")
    _, g32 = loss_and_grads(p32, b32, cfg, "numba")
    assert all(g.dtype == np.float32 for g in g32.values())
    d32 = np.concatenate([g32[k].ravel() for k in g64]).astype(np.float64)
    d64 = np.concatenate([g64[k].ravel() for k in g64])
    diff = float(np.max(np.abs(d32 - d64)) / np.max(np.abs(d64)))
    assert 1e-9 < diff < 1e-4  # float32 rounding, not float64 results rounded at the end


def test_returned_gradients_survive_later_calls_and_configs_alternate():
    cfg_a = preset("tiny", norm="pre", readout="all")
    cfg_b = preset("tiny", norm="post", causal=False, readout="last", loss="hinge")
    pa, ba = make_case(cfg_a, 3, 5, seed=1)
    pb, bb = make_case(cfg_b, 2, 4, seed=2)
    la, ga = loss_and_grads(pa, ba, cfg_a, "numba")
    keep = {k: v.copy() for k, v in ga.items()}
    for cfg, p, b in ((cfg_b, pb, bb), (cfg_a, pa, {**ba, "X": ba["X"][:2], "target": ba["target"][:2]}),
                      (cfg_a, {k: v.astype(np.float32) for k, v in pa.items()}, ba)):
        loss_and_grads(p, b, cfg, "numba")
    for k in ga:
        np.testing.assert_array_equal(ga[k], keep[k], err_msg=k)
    la2, ga2 = loss_and_grads(pa, ba, cfg_a, "numba")  # buffers reused: the same bits again
    assert la2 == la
    for k in ga:
        np.testing.assert_array_equal(ga2[k], ga[k], err_msg=k)


def test_threads_get_their_own_buffers():
    cfg = preset("tiny")
    cases = [make_case(cfg, 3, 6, seed=s) for s in range(4)]
    expect = [loss_and_grads(p, b, cfg, "numba") for p, b in cases]
    got = [None] * len(cases)

    def run(i):
        for _ in range(5):
            got[i] = loss_and_grads(*cases[i], cfg, "numba")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (l1, g1), (l2, g2) in zip(expect, got):
        assert l1 == l2
        for k in g1:
            np.testing.assert_array_equal(g1[k], g2[k])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs_propagate_as_on_numpy(bad):
    cfg = preset("tiny", readout="last")
    params, batch = make_case(cfg, 3, 5)
    batch["X"][1, 2, 0] = bad
    with np.errstate(all="ignore"):
        l1, g1 = loss_and_grads(params, batch, cfg, "numpy", check=False)
        l2, g2 = loss_and_grads(params, batch, cfg, "numba", check=False)
    assert np.isnan(l1) and np.isnan(l2)
    for k in g1:
        assert np.isfinite(g1[k]).all() == np.isfinite(g2[k]).all(), k
    assert not all(np.isfinite(g).all() for g in g2.values())
    with pytest.raises(ValueError, match="X"):
        loss_and_grads(params, batch, cfg, "numba")  # check=True refuses it up front


def test_training_on_non_finite_data_raises():
    cfg = preset("tiny")
    params, batch = make_case(cfg, 3, 5)

    def batch_fn(step):
        if step < 2:
            return batch
        bad = {**batch, "X": batch["X"].copy()}
        bad["X"][0, 0, 0] = np.nan
        return bad

    with np.errstate(all="ignore"), pytest.raises(NonFiniteError, match="step 2"):
        train_adam(params, cfg, batch_fn, lr=1e-2, steps=4, backend="numba", progress=False)
