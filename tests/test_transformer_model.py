"""The spec T model end to end (refimpl/transformer/model.py, config.py, optim.py).

Gradient checks of the whole loss for both presets at tiny sizes and both losses (central
differences, float64, rtol 1e-6, atol = the rounding floor of tests/_fd.py with scale
S = Σ|loss terms| + Σ_k Σ|∂L/∂θ_k ⊙ θ_k|), away from the ReLU and hinge kinks. Plus structure
(causality, permutation equivariance without positions, read-out "last" = "all" at T), the
initialisation scheme, presets and validation errors, float32, Adam and SGD.
"""

from __future__ import annotations

import numpy as np
import pytest
from _fd import EPS, RTOL, fd_noise_floor
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refimpl.core.gradcheck import gradcheck
from refimpl.transformer import (
    SGD,
    Adam,
    TransformerConfig,
    backward,
    forward,
    init_params,
    loss_and_grads,
    predict,
    preset,
)
from refimpl.transformer.model import loss_from_output, param_shapes
from refimpl.transformer.train import train_steps as train

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


def forward_loss(params, batch, cfg) -> float:
    """The loss only (no backward, no validation): what the finite differences evaluate."""
    out, _ = forward(params, batch["X"], cfg, check=False)
    return loss_from_output(out, batch["target"], cfg)[0]


def away_from_kinks(params, batch, cfg, tol=1e-3) -> bool:
    out, cache = forward(params, batch["X"], cfg)
    if cfg.activation == "relu":
        for c in cache["c_layers"]:
            h = c["c2"]["c_f"]["c_act"][0]  # feed-forward pre-activations
            if np.min(np.abs(h)) <= tol:
                return False
    if cfg.loss == "hinge" and np.min(np.abs(1.0 - batch["target"] * out)) <= tol:
        return False
    return True


# --------------------------------------------------------------------------------------------
# gradients end to end
# --------------------------------------------------------------------------------------------
@settings(max_examples=20)
@given(name=st.sampled_from(sorted(TINY)), loss=st.sampled_from(["squared", "hinge"]),
       B=st.integers(1, 3), T=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_loss_gradients_match_central_differences(name, loss, B, T, seed):
    cfg = preset(name, loss=loss, **TINY[name])
    rng = np.random.default_rng(seed)
    params = random_params(cfg, rng)
    batch = make_batch(cfg, rng, B, T)
    assume(away_from_kinks(params, batch, cfg))
    _, grads = loss_and_grads(params, batch, cfg)
    assert set(grads) == set(params)

    def f(p):
        return forward_loss(p, batch, cfg)

    out = predict(params, batch["X"], cfg)
    terms = (np.abs(out) + np.abs(batch["target"])) ** 2 if loss == "squared" else 1.0 + np.abs(out)
    S = float(np.mean(terms)) + sum(float(np.sum(np.abs(grads[k] * params[k]))) for k in params)
    gradcheck(f, params, grads, eps=EPS, rtol=RTOL, atol=fd_noise_floor(S), max_entries=12, n_directions=3,
              rng=rng).raise_if_failed()


@pytest.mark.parametrize("norm", ["post", "pre"])
@pytest.mark.parametrize("readout", ["all", "last"])
def test_every_option_combination_gradients(norm, readout):
    """Each norm × read-out with the other options flipped from the presets (GELU + post-norm,
    ReLU + pre-norm, positions without a mask)."""
    cfg = TransformerConfig(n_layers=2, d_model=4, n_heads=2, d_ff=5, d_in=2, norm=norm,
                            activation="gelu" if norm == "post" else "relu", causal=readout == "all",
                            positions="learned", max_T=5, readout=readout, loss="squared", init="xavier")
    rng = np.random.default_rng(7)
    for _ in range(20):
        params, batch = random_params(cfg, rng), make_batch(cfg, rng, 2, 4)
        if away_from_kinks(params, batch, cfg):
            break
    else:
        pytest.fail("no draw away from the ReLU kink")
    _, grads = loss_and_grads(params, batch, cfg)
    S = 10.0 + sum(float(np.sum(np.abs(grads[k] * params[k]))) for k in params)
    gradcheck(lambda p: forward_loss(p, batch, cfg), params, grads, eps=EPS, rtol=RTOL,
              atol=fd_noise_floor(S), max_entries=8, n_directions=3, rng=rng).raise_if_failed()


def test_backward_is_linear_in_dout_and_checks_its_shape():
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(0)
    params, X = random_params(cfg, rng), rng.standard_normal((3, 4, 3))
    out, cache = forward(params, X, cfg)
    d1, d2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)
    g1, g2, g12 = backward(d1, cache, cfg), backward(d2, cache, cfg), backward(2 * d1 - d2, cache, cfg)
    for k in params:
        np.testing.assert_allclose(g12[k], 2 * g1[k] - g2[k], rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match="dout"):
        backward(np.ones((3, 4)), cache, cfg)


# --------------------------------------------------------------------------------------------
# loss definitions and structure
# --------------------------------------------------------------------------------------------
def test_loss_values_follow_the_definitions():
    rng = np.random.default_rng(1)
    cfg = preset("vaswani4", **TINY["vaswani4"])
    params, batch = random_params(cfg, rng), make_batch(cfg, rng, 3, 5)
    out = predict(params, batch["X"], cfg)
    assert out.shape == (3, 5)
    L, _ = loss_and_grads(params, batch, cfg)
    assert L == pytest.approx(np.sum((out - batch["target"]) ** 2) / (2 * 3 * 5), rel=1e-14)  # (1/(2BT)) Σ
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    params, batch = random_params(cfg, rng), make_batch(cfg, rng, 4, 5)
    out = predict(params, batch["X"], cfg)
    assert out.shape == (4,)
    L, _ = loss_and_grads(params, batch, cfg)
    assert L == pytest.approx(np.mean(np.maximum(0.0, 1.0 - batch["target"] * out)), rel=1e-14)
    L2, _ = loss_and_grads(params, batch, cfg.replace(loss="squared"))
    assert L2 == pytest.approx(np.sum((out - batch["target"]) ** 2) / (2 * 4), rel=1e-14)  # (1/(2B)) Σ


def test_attention_cache_and_causality():
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(2)
    params, X = random_params(cfg, rng), rng.standard_normal((2, 5, 3))
    out_all, cache = forward(params, X, cfg.replace(readout="all"))
    assert len(cache["attn"]) == cfg.n_layers
    for A in cache["attn"]:
        assert A.shape == (2, cfg.n_heads, 5, 5)
        np.testing.assert_allclose(A.sum(-1), 1.0, atol=1e-14)
        assert np.all(np.triu(A, k=1) == 0.0)
    # read-out "last" reads the same network at position T
    np.testing.assert_array_equal(predict(params, X, cfg), out_all[:, -1])
    # causal: outputs up to t do not depend on later tokens
    X2 = X.copy()
    X2[:, 3:] += 1.0
    out2 = predict(params, X2, cfg.replace(readout="all"))
    np.testing.assert_array_equal(out2[:, :3], out_all[:, :3])
    assert np.max(np.abs(out2[:, 3:] - out_all[:, 3:])) > 1e-3


def test_without_positions_or_mask_the_model_is_permutation_equivariant():
    """Spec Y/L prompts are sets: vaswani4 (no positions, no mask) commutes with token permutations."""
    cfg = preset("vaswani4", **TINY["vaswani4"])
    rng = np.random.default_rng(3)
    params, X = random_params(cfg, rng), rng.standard_normal((2, 6, 3))
    perm = rng.permutation(6)
    out = predict(params, X, cfg)
    np.testing.assert_allclose(predict(params, X[:, perm], cfg), out[:, perm], rtol=1e-12, atol=1e-13)
    # learned positions break it
    cfg_p = cfg.replace(positions="learned", max_T=6)
    params_p = random_params(cfg_p, rng)
    out_p = predict(params_p, X, cfg_p)
    assert np.max(np.abs(predict(params_p, X[:, perm], cfg_p) - out_p[:, perm])) > 1e-3


def test_float32_parameters_compute_in_float32():
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(4)
    p64 = random_params(cfg, rng)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    batch = make_batch(cfg, rng, 3, 5)
    out32, cache = forward(p32, batch["X"], cfg)
    assert out32.dtype == np.float32 and cache["attn"][0].dtype == np.float32
    _, g32 = loss_and_grads(p32, batch, cfg)
    assert {g.dtype for g in g32.values()} == {np.dtype(np.float32)}
    np.testing.assert_allclose(out32, predict(p64, batch["X"], cfg), rtol=1e-4, atol=1e-5)


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
def test_bad_inputs_raise_value_errors():
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(5)
    params, batch = random_params(cfg, rng), make_batch(cfg, rng, 2, 4)
    with pytest.raises(ValueError, match="X must have shape"):
        forward(params, batch["X"][..., :2], cfg)
    with pytest.raises(ValueError, match="3-dimensional|shape"):
        forward(params, batch["X"][0], cfg)
    Xn = batch["X"].copy()
    Xn[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        loss_and_grads(params, {"X": Xn, "target": batch["target"]}, cfg)
    with pytest.raises(ValueError, match="max_T"):
        forward(params, rng.standard_normal((2, 7, 3)), cfg)
    with pytest.raises(ValueError, match="target"):
        loss_and_grads(params, {"X": batch["X"], "target": np.ones((2, 4))}, cfg)
    with pytest.raises(ValueError, match="±1"):
        loss_and_grads(params, {"X": batch["X"], "target": np.array([1.0, 0.5])}, cfg)
    with pytest.raises(ValueError, match="batch"):
        loss_and_grads(params, {"X": batch["X"]}, cfg)
    bad = dict(params)
    del bad["pos"]
    with pytest.raises(ValueError, match="pos"):
        forward(bad, batch["X"], cfg)
    bad = dict(params, **{"layer1.attn.W_Q": np.ones((6, 5))})
    with pytest.raises(ValueError, match="layer1.attn.W_Q"):
        forward(bad, batch["X"], cfg)
    with pytest.raises(ValueError, match="does not use"):
        forward(dict(params, extra=np.ones(2)), batch["X"], cfg)
    with pytest.raises(TypeError, match="TransformerConfig"):
        forward(params, batch["X"], {"d_in": 3})
    with pytest.raises(ValueError, match="dtype"):
        init_params(cfg, 0, dtype=np.int64)
    with pytest.raises(ValueError, match="seed"):
        init_params(cfg, None)


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


def test_adam_training_fits_a_fixed_batch():
    cfg = preset("gpt2_3l2h", **TINY["gpt2_3l2h"])
    rng = np.random.default_rng(8)
    params = init_params(cfg, 0)
    batch = make_batch(cfg, rng, 8, 5)
    losses = train(params, cfg, lambda s: batch, 60, Adam(1e-2))
    assert len(losses) == 60 and losses[0] == pytest.approx(1.0, abs=0.05)  # hinge at tiny init ≈ 1
    assert losses[-1] < 0.3 * losses[0]
    with pytest.raises(ValueError, match="steps"):
        train(params, cfg, lambda s: batch, -1, Adam(1e-2))
