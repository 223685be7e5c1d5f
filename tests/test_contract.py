"""The model contract (refimpl/models.py), checked the same way for every registered model.

For each model of the registry, at its ``tiny`` preset with sizes and math options drawn by
hypothesis from the registry entry (``test_sizes``, ``options``):

- the package exposes every contract name; presets take overrides and refuse unknown fields;
- ``loss_and_grads`` matches central differences of its own loss (every trained parameter, random
  directions for large tensors), and ``backward`` matches central differences of ``Σ dout ⊙ out``
  (the fake-loss trick), away from ReLU/hinge kinks (``aux["kink_margin"]``), with the
  finite-difference rounding floor of the loss's terms (``aux["scale"]``) as atol;
- ``predict`` is ``forward`` without the cache; ``backward`` keys its gradients like the params;
- NumPy == Numba (≤ 1e−12 of each tensor's scale) for every model with a Numba path, on each of
  its Numba backends (``numba``, ``numba_parallel``);
- bad inputs raise ``ValueError``/``TypeError`` naming the argument, on every backend;
- the golden export round-trips through ``compare`` (clean against itself, and a perturbed
  gradient fails naming its key);
- the same seed gives bitwise-identical parameters, data, batches and training runs.

Per-model files keep only what is specific to one model (structural facts of its math, theorem
claims, its extras).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _fd import EPS, RTOL, fd_noise_floor
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refimpl import models
from refimpl.core import gradcheck
from refimpl.core.golden import compare, write_golden

NAMES = models.names()
KINK = 1e-4  # a ±EPS step moves every pre-activation and margin by ≪ 1e-4: no ReLU or hinge flips
PERTURB = 0.1  # parameters are the model's initialisation plus N(0, 0.1²): generic values (w⁰ = 0 etc.
#                make some gradients vanish identically at the initialisation itself)


def _module(name):
    return models.load(name)


@st.composite
def cases(draw, name: str):
    """(cfg, params, batch): the tiny preset with drawn sizes and options, perturbed params."""
    info = models.get(name)
    mod = _module(name)
    over = {k: draw(st.sampled_from(v), label=k) for k, v in info.test_sizes.items()}
    over.update({k: draw(st.sampled_from(v), label=k) for k, v in info.options.items()})
    try:
        cfg = mod.preset("tiny", **over)
    except ValueError:  # a combination the config refuses (e.g. d_model not divisible by n_heads)
        assume(False)
    seed = draw(st.integers(0, 2**16), label="seed")
    n = draw(st.integers(1, 3), label="n")
    rng = np.random.default_rng(seed)
    params = mod.init_params(cfg, seed)
    params = {k: v + PERTURB * rng.standard_normal(v.shape) for k, v in params.items()}
    data = mod.make_data(cfg, seed)
    batch = mod.sample_batch(data, n, np.random.default_rng(seed + 1))
    return cfg, params, batch


@pytest.mark.parametrize("name", NAMES)
def test_package_exposes_the_contract(name):
    mod = _module(name)
    missing = [n for n in models.CONTRACT if not hasattr(mod, n)]
    assert not missing, f"refimpl.{name} lacks {missing}"
    assert "tiny" in mod.PRESETS
    for n in models.CONTRACT[:-2]:
        assert callable(getattr(mod, n)), n


@pytest.mark.parametrize("name", NAMES)
def test_preset_overrides_and_refusals(name):
    mod = _module(name)
    cfg = mod.preset("tiny")
    assert dataclasses.is_dataclass(cfg) and cfg == mod.preset("tiny")  # frozen, deterministic
    field, values = next(iter(models.get(name).test_sizes.items()))
    changed = mod.preset("tiny", **{field: values[-1]})
    obj = changed
    for part in field.split("."):
        obj = getattr(obj, part)
    assert obj == values[-1]
    with pytest.raises(ValueError, match="no_such_field"):
        mod.preset("tiny", no_such_field=1)
    with pytest.raises(ValueError, match="tiny"):  # the message lists the allowed names
        mod.preset("no_such_preset")


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25)
@given(data=st.data())
def test_loss_gradients_match_central_differences(name, data):
    cfg, params, batch = data.draw(cases(name))
    mod = _module(name)
    loss, grads, aux = mod.loss_and_grads(params, batch, cfg, "numpy", return_aux=True)
    assume(aux.get("kink_margin", np.inf) > KINK)
    assert np.isfinite(loss)
    assert set(grads) <= set(params) and grads, (sorted(grads), sorted(params))
    for k, g in grads.items():
        assert g.shape == params[k].shape and g.dtype == params[k].dtype, k

    def f(p):
        return mod.loss_and_grads({**params, **p}, batch, cfg, "numpy")[0]

    report = gradcheck(f, {k: params[k] for k in grads}, grads, eps=EPS, rtol=RTOL,
                       atol=fd_noise_floor(aux["scale"]), max_entries=32, n_directions=8)
    report.raise_if_failed()


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15)
@given(data=st.data())
def test_backward_matches_central_differences_of_the_output(name, data):
    cfg, params, batch = data.draw(cases(name))
    mod = _module(name)
    _, _, aux = mod.loss_and_grads(params, batch, cfg, "numpy", return_aux=True)
    assume(aux.get("kink_margin", np.inf) > KINK)
    out, cache = mod.forward(params, batch, cfg)
    np.testing.assert_array_equal(mod.predict(params, batch, cfg), out)
    dout = np.random.default_rng(3).standard_normal(np.shape(out))
    grads = mod.backward(dout, cache)
    assert set(grads) <= set(params) and grads

    def f(p):
        return float(np.sum(dout * mod.forward({**params, **p}, batch, cfg)[0]))

    scale = float(np.sum(np.abs(dout) * np.abs(out))) + aux["scale"]
    gradcheck(f, {k: params[k] for k in grads}, grads, eps=EPS, rtol=RTOL, atol=fd_noise_floor(scale),
              max_entries=32, n_directions=8).raise_if_failed()


NUMBA_BACKENDS = [(n, b) for n in NAMES for b in models.get(n).backends if b.startswith("numba")]


@pytest.mark.parametrize("name, backend", NUMBA_BACKENDS)
@settings(max_examples=20)
@given(data=st.data())
def test_numpy_equals_numba(name, backend, data):
    cfg, params, batch = data.draw(cases(name))
    mod = _module(name)
    l1, g1, a1 = mod.loss_and_grads(params, batch, cfg, "numpy", return_aux=True)
    l2, g2, a2 = mod.loss_and_grads(params, batch, cfg, backend, return_aux=True)
    assert l2 == pytest.approx(l1, rel=1e-12, abs=1e-12 * aux_scale(a1))
    assert set(g1) == set(g2)
    for k in g1:
        tol = 1e-12 * max(1.0, float(np.max(np.abs(g1[k]))))
        np.testing.assert_allclose(g2[k], g1[k], rtol=0, atol=tol, err_msg=f"{name} grad {k}")
    np.testing.assert_allclose(a2["out"], a1["out"], rtol=0, atol=1e-12 * max(1.0, np.max(np.abs(a1["out"]))))


def aux_scale(aux) -> float:
    return max(1.0, float(aux["scale"]))


# --------------------------------------------------------------------------------------------
# bad inputs: the documented errors, naming the argument, on every backend
# --------------------------------------------------------------------------------------------
def _tiny(name, seed=0):
    mod = _module(name)
    cfg = mod.preset("tiny")
    params = mod.init_params(cfg, seed)
    batch = mod.sample_batch(mod.make_data(cfg, seed), 2, np.random.default_rng(seed))
    return mod, cfg, params, batch


def _first_array_key(d):
    return next(k for k, v in d.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_naming_the_argument(name):
    mod, cfg, params, batch = _tiny(name)
    key = mod.PARAM_NAMES[0]
    bkey = _first_array_key(batch)
    for backend in models.get(name).backends:
        def call(p, b, backend=backend):
            return mod.loss_and_grads(p, b, cfg, backend)

        with pytest.raises(ValueError, match=key):
            call({k: v for k, v in params.items() if k != key}, batch)
        with pytest.raises(ValueError, match=key):
            call({**params, key: np.zeros(params[key].shape + (2,))}, batch)
        bad = params[key].copy()
        bad.flat[0] = np.nan
        with pytest.raises(ValueError, match=key):
            call({**params, key: bad}, batch)
        with pytest.raises(TypeError, match=key):
            call({**params, key: params[key].astype(np.int64)}, batch)
        with pytest.raises(TypeError, match=key):
            call({**params, key: params[key].astype(np.float16)}, batch)
        bb = batch[bkey].copy()
        bb.flat[0] = np.inf
        with pytest.raises(ValueError, match=bkey):
            call(params, {**batch, bkey: bb})
        with pytest.raises(TypeError, match="params"):
            call([1, 2], batch)
        with pytest.raises(TypeError, match="batch"):
            call(params, "batch")
    with pytest.raises(ValueError, match="backend"):
        mod.loss_and_grads(params, batch, cfg, "cuda")


@pytest.mark.parametrize("name", NAMES)
def test_mixed_precision_params_are_refused(name):
    mod, cfg, params, batch = _tiny(name)
    if len(params) < 2:
        pytest.skip("one parameter tensor: nothing to mix")
    k = mod.PARAM_NAMES[-1] if mod.PARAM_NAMES[-1] in params else sorted(params)[-1]
    mixed = {**params, k: params[k].astype(np.float32)}
    for backend in models.get(name).backends:
        with pytest.raises(TypeError, match="dtype"):
            mod.loss_and_grads(mixed, batch, cfg, backend)


# --------------------------------------------------------------------------------------------
# golden export / compare round trip, determinism
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_golden_round_trip(name, tmp_path):
    mod = _module(name)
    config, arrays = mod.golden_arrays(0)
    path = write_golden(tmp_path / "g.npz", model=name, seed=0, dtype="float64", config=config, arrays=arrays)
    assert compare(path, path).ok
    grad = next(k for k in sorted(arrays) if k.startswith("grad/") and np.max(np.abs(arrays[k])) > 0)
    bad = {k: np.array(v, copy=True) for k, v in arrays.items()}
    flat = bad[grad].reshape(-1)
    i = int(np.argmax(np.abs(flat)))
    flat[i] *= 1 + 1e-6
    res = compare(path, bad)
    assert not res.ok and grad in res.failed_keys


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_identical_results(name):
    mod = _module(name)
    cfg = mod.preset("tiny")

    def run():
        params = mod.init_params(cfg, 5)
        data = mod.make_data(cfg, 5)
        batch = mod.sample_batch(data, 3, np.random.default_rng(6))
        traj = mod.train(cfg, 7, progress=False)  # the tiny presets train in seconds
        return params, batch, traj

    (p1, b1, t1), (p2, b2, t2) = run(), run()
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])
    for k in b1:
        np.testing.assert_array_equal(np.asarray(b1[k]), np.asarray(b2[k]))
    assert t1.model == name and t1.seed == 7
    for k in t1.params:
        np.testing.assert_array_equal(t1.params[k], t2.params[k])
    np.testing.assert_array_equal(t1.history["loss"], t2.history["loss"])
    assert np.all(np.isfinite(t1.history["loss"])) and t1.steps_done >= 1
    assert set(t1.params) == set(mod.init_params(cfg, 0))

