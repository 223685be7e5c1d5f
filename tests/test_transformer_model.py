"""The spec T model end to end (refimpl/transformer/model.py, config.py, data.py, train.py):
what is specific to the transformer. The generic contract (central-difference checks of the loss
and of backward over every option, bad inputs, determinism, the golden round trip) is in
tests/test_contract.py; the blocks' gradient checks are in tests/test_transformer_blocks.py.

Here: backward's linearity, the loss definitions, structure (causality, permutation equivariance
without positions, read-out "last" = "all" at T), float32, the initialisation scheme, presets and
the model-specific input errors, the aux of loss_and_grads (kink margins, scale), the synthetic
teacher task, ``train``/``train_adam`` (Trajectory, NonFiniteError), Adam and SGD.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from refimpl.core.errors import NonFiniteError
from refimpl.core.trajectory import Trajectory
from refimpl.transformer import (
    PARAM_NAMES,
    PRESETS,
    SGD,
    Adam,
    TransformerConfig,
    backward,
    forward,
    golden_arrays,
    init_params,
    loss_and_grads,
    make_data,
    predict,
    preset,
    sample_batch,
    train,
    train_adam,
)
from refimpl.transformer.model import param_shapes

TINY = {  # the two presets shrunk: every structural choice kept, sizes small
    "vaswani4": dict(d_model=6, n_heads=2, d_ff=8, d_in=3, n_layers=2),
    "gpt2_3l2h": dict(d_model=6, d_ff=8, d_in=3, max_T=6),
}


def random_params(cfg, rng, scale=0.4):
    """init_params plus N(0, scale²) noise on every entry: biases, gains and positions all nonzero."""
    p = init_params(cfg, int(rng.integers(2**31)))
    return {k: v + scale * rng.standard_normal(v.shape) for k, v in p.items()}


def make_batch(cfg, rng, B, T):
    X = rng.standard_normal((B, T, cfg.d_in))
    shape = (B, T) if cfg.readout == "all" else (B,)
    t = rng.standard_normal(shape)
    if cfg.loss == "hinge":
        t = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return {"X": X, "target": t}


# --------------------------------------------------------------------------------------------
# backward, loss definitions and structure
# --------------------------------------------------------------------------------------------
def test_backward_is_linear_in_dout_and_checks_its_shape():
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(0)
    params, X = random_params(cfg, rng), rng.standard_normal((3, 4, 3))
    out, cache = forward(params, {"X": X}, cfg)
    assert cache["cfg"] is cfg
    d1, d2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)
    g1, g2, g12 = backward(d1, cache), backward(d2, cache), backward(2 * d1 - d2, cache)
    for k in params:
        np.testing.assert_allclose(g12[k], 2 * g1[k] - g2[k], rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match="dout"):
        backward(np.ones((3, 4)), cache)
    # loss_and_grads is backward of the loss's dL/dout: (1/n)(out − t) for the squared loss
    batch = make_batch(cfg.replace(loss="squared"), rng, 3, 4)
    _, grads = loss_and_grads(params, {**batch, "X": X}, cfg.replace(loss="squared"))
    ref = backward((out - batch["target"]) / out.size, cache)
    for k in params:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-12, atol=1e-15)


def test_loss_values_follow_the_definitions():
    rng = np.random.default_rng(1)
    cfg = preset("vaswani4", **TINY["vaswani4"])
    params, batch = random_params(cfg, rng), make_batch(cfg, rng, 3, 5)
    out = predict(params, batch, cfg)
    assert out.shape == (3, 5)
    L, _ = loss_and_grads(params, batch, cfg)
    assert L == pytest.approx(np.sum((out - batch["target"]) ** 2) / (2 * 3 * 5), rel=1e-14)  # (1/(2BT)) Σ
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    params, batch = random_params(cfg, rng), make_batch(cfg, rng, 4, 5)
    out = predict(params, batch, cfg)
    assert out.shape == (4,)
    L, _ = loss_and_grads(params, batch, cfg)
    assert L == pytest.approx(np.mean(np.maximum(0.0, 1.0 - batch["target"] * out)), rel=1e-14)
    L2, _ = loss_and_grads(params, batch, cfg.replace(loss="squared"))
    assert L2 == pytest.approx(np.sum((out - batch["target"]) ** 2) / (2 * 4), rel=1e-14)  # (1/(2B)) Σ


def test_attention_cache_and_causality():
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(2)
    params, X = random_params(cfg, rng), rng.standard_normal((2, 5, 3))
    out_all, cache = forward(params, {"X": X}, cfg.replace(readout="all"))
    assert len(cache["attn"]) == cfg.n_layers
    for A in cache["attn"]:
        assert A.shape == (2, cfg.n_heads, 5, 5)
        np.testing.assert_allclose(A.sum(-1), 1.0, atol=1e-14)
        assert np.all(np.triu(A, k=1) == 0.0)
    # read-out "last" reads the same network at position T
    np.testing.assert_array_equal(predict(params, {"X": X}, cfg), out_all[:, -1])
    # causal: outputs up to t do not depend on later tokens
    X2 = X.copy()
    X2[:, 3:] += 1.0
    out2 = predict(params, {"X": X2}, cfg.replace(readout="all"))
    np.testing.assert_array_equal(out2[:, :3], out_all[:, :3])
    assert np.max(np.abs(out2[:, 3:] - out_all[:, 3:])) > 1e-3


def test_without_positions_or_mask_the_model_is_permutation_equivariant():
    """Spec Y/L prompts are sets: vaswani4 (no positions, no mask) commutes with token permutations."""
    cfg = preset("vaswani4", **TINY["vaswani4"])
    rng = np.random.default_rng(3)
    params, X = random_params(cfg, rng), rng.standard_normal((2, 6, 3))
    perm = rng.permutation(6)
    out = predict(params, {"X": X}, cfg)
    np.testing.assert_allclose(predict(params, {"X": X[:, perm]}, cfg), out[:, perm], rtol=1e-12, atol=1e-13)
    # learned positions break it
    cfg_p = cfg.replace(positions="learned", max_T=6)
    params_p = random_params(cfg_p, rng)
    out_p = predict(params_p, {"X": X}, cfg_p)
    assert np.max(np.abs(predict(params_p, {"X": X[:, perm]}, cfg_p) - out_p[:, perm])) > 1e-3


def test_float32_parameters_compute_in_float32():
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(4)
    p64 = random_params(cfg, rng)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    batch = make_batch(cfg, rng, 3, 5)
    out32, cache = forward(p32, batch, cfg)
    assert out32.dtype == np.float32 and cache["attn"][0].dtype == np.float32
    _, g32 = loss_and_grads(p32, batch, cfg)
    assert {g.dtype for g in g32.values()} == {np.dtype(np.float32)}
    np.testing.assert_allclose(out32, predict(p64, batch, cfg), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------
# initialisation, parameter names, presets
# --------------------------------------------------------------------------------------------
def test_param_names_and_shapes():
    cfg = preset("gpt2_3l2h", d_in=5, max_T=10)
    p = init_params(cfg, 0)
    assert list(p) == list(param_shapes(cfg))
    assert p["read_in.W"].shape == (64, 5) and p["pos"].shape == (10, 64)
    assert p["layer2.attn.W_Q"].shape == (64, 64) and p["layer2.ff.W1"].shape == (256, 64)
    assert p["layer2.ff.W2"].shape == (64, 256) and p["read_out.W"].shape == (1, 64) and "ln_f.g" in p
    assert "layer3.attn.W_Q" not in p
    v = init_params(preset("vaswani4"), 0)
    assert "pos" not in v and "ln_f.g" not in v and "layer3.ln2.b" in v
    # PARAM_NAMES lists every name (layer{l} for each layer), in the order of param_shapes
    for c in (cfg, preset("vaswani4"), preset("tiny")):
        names = [n.format(l=l) for n in PARAM_NAMES for l in (range(c.n_layers) if "{l}" in n else [0])]
        order = {n: i for i, n in enumerate(PARAM_NAMES)}

        def template(name):
            return name if not name.startswith("layer") else "layer{l}." + name.split(".", 1)[1]
        assert set(param_shapes(c)) <= set(names)
        per_layer = [template(n) for n in param_shapes(c) if n.startswith("layer0.")]
        assert per_layer == sorted(per_layer, key=order.get)
    with pytest.raises(TypeError, match="dtype"):
        init_params(cfg, 0, dtype=np.int64)
    with pytest.raises(TypeError, match="dtype"):
        init_params(cfg, 0, dtype=np.float16)
    with pytest.raises(ValueError, match="seed"):
        init_params(cfg, None)


def test_init_is_deterministic_and_follows_the_schemes():
    cfg = preset("gpt2_3l2h", d_in=5)
    a, b, c = init_params(cfg, 1), init_params(cfg, 1), init_params(cfg, 2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["layer0.attn.W_Q"], c["layer0.attn.W_Q"])
    # gpt2: N(0, 0.02²), residual projections N(0, (0.02/√(2·3))²), biases 0, gains 1
    W = np.concatenate([a[f"layer{l}.attn.W_{n}"].ravel() for l in range(3) for n in "QKV"])
    assert np.std(W) == pytest.approx(0.02, rel=0.03)
    R = np.concatenate([a[f"layer{l}.{n}"].ravel() for l in range(3) for n in ("attn.W_O", "ff.W2")])
    assert np.std(R) == pytest.approx(0.02 / np.sqrt(6), rel=0.03)
    assert np.all(a["layer1.ff.b1"] == 0) and np.all(a["layer1.ln2.g"] == 1) and np.all(a["ln_f.b"] == 0)
    # xavier: U(±√(6/(n_in + n_out)))
    v = init_params(preset("vaswani4"), 0)
    lim = np.sqrt(6 / (256 + 512))
    W1 = v["layer0.ff.W1"]
    assert np.max(np.abs(W1)) <= lim and np.max(np.abs(W1)) > 0.99 * lim
    assert np.std(W1) == pytest.approx(lim / np.sqrt(3), rel=0.03)


def test_presets_match_spec_T():
    v = preset("vaswani4")
    assert (v.n_layers, v.d_model, v.d_ff, v.n_heads, v.norm, v.activation, v.causal, v.positions, v.readout,
            v.loss) == (4, 256, 512, 8, "post", "relu", False, "none", "all", "squared")
    g = preset("gpt2_3l2h")
    assert (g.n_layers, g.n_heads, g.d_model, g.d_ff, g.norm, g.activation, g.causal, g.positions, g.readout,
            g.loss) == (3, 2, 64, 256, "pre", "gelu", True, "learned", "last", "hinge")
    assert preset("vaswani4", n_heads=4, d_in=11).replace(d_ff=64).d_ff == 64
    assert preset("vaswani4", n_heads=4).d_head == 64
    assert set(PRESETS) == {"vaswani4", "gpt2_3l2h", "tiny"} and all(preset(n) == PRESETS[n] for n in PRESETS)
    t = preset("tiny")
    assert (t.n_layers, t.d_model, t.n_heads, t.d_ff, t.d_in, t.max_T) == (2, 8, 2, 12, 3, 8)


@pytest.mark.parametrize("kw, field", [
    (dict(d_model=10, n_heads=4), "divisible"), (dict(n_layers=0), "n_layers"), (dict(d_ff=2.5), "d_ff"),
    (dict(norm="sandwich"), "norm"), (dict(activation="tanh"), "activation"), (dict(causal=1), "causal"),
    (dict(positions="sinusoid"), "positions"), (dict(readout="first"), "readout"), (dict(loss="ce"), "loss"),
    (dict(init="he"), "init"), (dict(init_std=-1.0), "init_std"), (dict(max_T=0), "max_T"),
    (dict(n_heads=True), "n_heads"),
])
def test_bad_config_values_raise_naming_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        TransformerConfig(**kw)


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="vaswani4"):
        preset("gpt3")
    with pytest.raises(ValueError, match="d_modle"):
        preset("tiny", d_modle=8)
    with pytest.raises(ValueError, match="heads"):
        preset("gpt2_3l2h", n_heads=3)


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------
def test_model_specific_input_errors():
    """The transformer's own refusals (the generic ones are tests/test_contract.py's)."""
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(5)
    params, batch = random_params(cfg, rng), make_batch(cfg, rng, 2, 4)
    with pytest.raises(ValueError, match="inputs\\['X'\\] must have shape"):
        forward(params, {"X": batch["X"][..., :2]}, cfg)
    with pytest.raises(ValueError, match="shape"):
        forward(params, {"X": batch["X"][0]}, cfg)
    with pytest.raises(TypeError, match="inputs must be a dict"):
        forward(params, batch["X"], cfg)  # the contract's inputs are a batch dict
    with pytest.raises(ValueError, match="max_T"):
        forward(params, {"X": rng.standard_normal((2, 7, 3))}, cfg)
    with pytest.raises(ValueError, match="target"):
        loss_and_grads(params, {"X": batch["X"], "target": np.ones((2, 4))}, cfg)
    with pytest.raises(ValueError, match="±1"):
        loss_and_grads(params, {"X": batch["X"], "target": np.array([1.0, 0.5])}, cfg)
    with pytest.raises(TypeError, match="target.*int64"):
        loss_and_grads(params, {"X": batch["X"], "target": np.array([1, -1])}, cfg)
    with pytest.raises(ValueError, match="batch\\['target'\\]"):
        loss_and_grads(params, {"X": batch["X"]}, cfg)
    with pytest.raises(ValueError, match="does not use"):
        forward(dict(params, extra=np.ones(2)), batch, cfg)
    with pytest.raises(TypeError, match="TransformerConfig"):
        forward(params, batch, {"d_in": 3})
    with pytest.raises(ValueError, match="backend"):
        loss_and_grads(params, batch, cfg, "cuda")


def test_aux_kink_margins_and_scale():
    rng = np.random.default_rng(9)
    cfg = preset("tiny", activation="relu", loss="hinge", readout="last")
    params, batch = random_params(cfg, rng), make_batch(cfg, rng, 3, 5)
    loss, grads, aux = loss_and_grads(params, batch, cfg, return_aux=True)
    out, cache = forward(params, batch, cfg)
    np.testing.assert_array_equal(aux["out"], out)
    assert len(aux["attn"]) == cfg.n_layers and aux["attn"][0].shape == (3, cfg.n_heads, 5, 5)
    relu_in = [c["c2"]["c_f"]["c_act"][0] for c in cache["c_layers"]]  # feed-forward pre-activations
    margins = [np.min(np.abs(1 - batch["target"] * out))] + [np.min(np.abs(h)) for h in relu_in]
    assert aux["kink_margin"] == min(margins) > 0
    # scale: the hinge terms 1 + |out| plus Σ|g ⊙ θ|, of the order of the loss (not inflated)
    gt = sum(float(np.sum(np.abs(grads[k] * params[k]))) for k in grads)
    assert aux["scale"] == pytest.approx(float(np.mean(1 + np.abs(out))) + gt, rel=1e-12)
    assert loss <= aux["scale"] < 100 * max(loss, 1.0)
    smooth = cfg.replace(activation="gelu", loss="squared", readout="all")
    _, _, aux = loss_and_grads(random_params(smooth, rng), make_batch(smooth, rng, 2, 4), smooth, return_aux=True)
    assert aux["kink_margin"] == np.inf


# --------------------------------------------------------------------------------------------
# optimisers
# --------------------------------------------------------------------------------------------
def test_adam_follows_the_bias_corrected_update():
    rng = np.random.default_rng(6)
    p = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal(4)}
    gs = [{k: rng.standard_normal(v.shape) for k, v in p.items()} for _ in range(3)]
    lr, b1, b2, eps, wd = 0.1, 0.8, 0.9, 1e-3, 0.05
    opt = Adam(lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    ref = {k: v.copy() for k, v in p.items()}
    m = {k: 0.0 for k in p}
    v = {k: 0.0 for k in p}
    for t, g in enumerate(gs, start=1):
        opt.step(p, g)
        for k in ref:
            gk = g[k] + wd * ref[k]
            m[k] = b1 * m[k] + (1 - b1) * gk
            v[k] = b2 * v[k] + (1 - b2) * gk**2
            ref[k] = ref[k] - lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
        for k in p:
            np.testing.assert_allclose(p[k], ref[k], rtol=1e-14, atol=1e-15)
    assert opt.t == 3


def test_sgd_and_optimiser_arguments():
    p = {"w": np.array([1.0, -2.0])}
    SGD(0.5).step(p, {"w": np.array([2.0, 2.0])})
    np.testing.assert_array_equal(p["w"], [0.0, -3.0])
    for bad in (lambda: Adam(0.0), lambda: Adam(1e-3, betas=(0.9, 1.0)), lambda: Adam(1e-3, eps=-1.0),
                lambda: SGD(float("nan")), lambda: Adam(1e-3, weight_decay=-0.1)):
        with pytest.raises(ValueError):
            bad()


def test_train_adam_fits_a_fixed_batch_and_returns_a_trajectory():
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(8)
    params = init_params(cfg, 0)
    batch = make_batch(cfg, rng, 8, 5)
    run = train_adam(params, cfg, lambda s: batch, lr=1e-2, steps=60, progress=False, seed=0)
    assert isinstance(run, Trajectory) and run.model == "transformer" and run.config is cfg and run.seed == 0
    losses = run.history["loss"]
    assert run.steps_done == 60 and run.history["step"].tolist() == list(range(60))
    assert losses[0] == pytest.approx(1.0, abs=0.05)  # hinge at tiny init ≈ 1
    assert losses[-1] < 0.3 * losses[0]
    assert run.params is params and run.history["lr"].tolist() == [1e-2] * 60
    assert run.records["step"].tolist() == [0, 60] and run.extra["train_time"] <= run.wall_s
    with pytest.raises(ValueError, match="steps"):
        train_adam(params, cfg, lambda s: batch, lr=1e-2, steps=-1)


def test_non_finite_training_raises_naming_the_step_and_the_tensor(monkeypatch):
    cfg = preset("tiny")
    params = init_params(cfg, 0)
    good = sample_batch(make_data(cfg, 0), 4, np.random.default_rng(0))
    bad = {**good, "target": np.where(np.arange(good["target"].size).reshape(good["target"].shape) == 0, np.nan,
                                      good["target"])}  # batches are checked at step 0 only

    def batch_fn(step):
        return bad if step == 3 else good

    with pytest.raises(NonFiniteError, match="loss is not finite at step 3") as err:
        train_adam(params, cfg, batch_fn, lr=1e-3, steps=10, progress=False)
    assert err.value.step == 3 and err.value.tensor == "loss"
    # a finite loss with a non-finite gradient: the gradient is named, before Adam uses it
    train_module = importlib.import_module("refimpl.transformer.train")  # the module (``train`` is the function)
    real = train_module.loss_and_grads

    def broken(p, batch, cfg, *args, **kwargs):
        loss, g = real(p, batch, cfg, *args, **kwargs)
        g["layer1.ff.W2"] = g["layer1.ff.W2"].copy()
        g["layer1.ff.W2"][0, 0] = np.inf
        return loss, g

    monkeypatch.setattr(train_module, "loss_and_grads", broken)
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(NonFiniteError, match="grads\\['layer1.ff.W2'\\] is not finite at step 0"):
        train_adam(params, cfg, lambda s: good, lr=1e-3, steps=2, progress=False)
    assert all(np.array_equal(params[k], before[k]) for k in params)


# --------------------------------------------------------------------------------------------
# the synthetic teacher task and train
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, D", [("vaswani4", 64), ("gpt2_3l2h", 64), ("tiny", 8), ("tiny", 32)])
def test_teacher_targets_are_standardised(name, D):
    """[C] The teacher's read-out is standardised on N_REF reference sequences: fresh targets have
    mean ≈ 0 and variance ≈ 1; the hinge targets are their signs, roughly balanced."""
    cfg = preset(name, loss="squared", d_model=D, d_ff=2 * D)
    data = make_data(cfg, 0)
    assert data.T == min(cfg.max_T, 8)
    b = sample_batch(data, 512, np.random.default_rng(1))
    assert b["X"].shape == (512, data.T, cfg.d_in) and b["target"].shape == predict(data.teacher, b, cfg).shape
    np.testing.assert_array_equal(b["target"], predict(data.teacher, b, cfg))
    assert abs(np.mean(b["target"])) < 0.2 and np.var(b["target"]) == pytest.approx(1.0, abs=0.25)
    hinge = cfg.replace(loss="hinge")
    bh = sample_batch(make_data(hinge, 0), 512, np.random.default_rng(1))
    np.testing.assert_array_equal(bh["X"], b["X"])  # same teacher and draws: targets are the signs
    np.testing.assert_array_equal(bh["target"], np.where(b["target"] >= 0, 1.0, -1.0))
    assert 0.3 < np.mean(bh["target"] > 0) < 0.7


def test_teacher_task_streams_and_errors():
    cfg = preset("tiny")
    a, b = make_data(cfg, 3), make_data(cfg, 4)
    assert not np.array_equal(a.teacher["read_out.W"], b.teacher["read_out.W"])
    student = init_params(cfg, 3)
    assert not np.array_equal(a.teacher["pos"], student["pos"])  # independent streams
    assert make_data(cfg, 3, T=5).T == 5
    with pytest.raises(ValueError, match="max_T"):
        make_data(cfg, 3, T=9)
    with pytest.raises(ValueError, match="T must be"):
        make_data(cfg, 3, T=0)
    with pytest.raises(ValueError, match="n must be"):
        sample_batch(a, 0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="TeacherTask"):
        sample_batch({"teacher": a.teacher}, 2, np.random.default_rng(0))


def test_train_learns_the_teacher_task():
    cfg = preset("tiny")
    run = train(cfg, 0, steps=150, lr=1e-2, progress=False)
    assert run.model == "transformer" and run.seed == 0 and run.data.T == 8
    ev = run.records["eval_loss"]
    assert run.records["step"].tolist() == list(range(0, 151, 15)) and len(ev) == 11
    assert ev[-1] < 0.5 * ev[0]  # the student moves towards the teacher on held-out sequences
    assert set(run.params) == set(init_params(cfg, 0))
    with pytest.raises(ValueError, match="backend"):
        train(cfg, 0, backend="cuda")
    fast = train(cfg, 0, steps=150, lr=1e-2, progress=False, backend="numba")  # the same run up to rounding
    assert fast.backend == "numba"
    np.testing.assert_allclose(fast.records["eval_loss"], ev, rtol=1e-8)
    with pytest.raises(ValueError, match="seed"):
        train(cfg, np.random.default_rng(0))


def test_golden_arrays_for_other_configurations():
    """The package-level golden_arrays with ``config``: the hinge loss and the last read-out."""
    cfg = preset("tiny", loss="hinge", readout="last", norm="post", activation="relu", max_T=4)
    config, arrays = golden_arrays(0, config=cfg)
    assert config["loss"] == "hinge" and config["T"] == 4
    assert arrays["input/X"].shape == (3, 4, cfg.d_in) and arrays["output/out"].shape == (3,)
    assert set(np.unique(arrays["input/target"])) <= {-1.0, 1.0}
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    batch = {"X": arrays["input/X"], "target": arrays["input/target"]}
    loss, grads = loss_and_grads(params, batch, cfg)
    assert loss == float(arrays["output/loss"])
    for k in grads:
        np.testing.assert_array_equal(grads[k], arrays[f"grad/{k}"])
    with pytest.raises(TypeError, match="config"):
        golden_arrays(0, config={"loss": "hinge"})
