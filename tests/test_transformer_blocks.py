"""Blocks of the spec T transformer (refimpl/transformer/blocks.py) against central differences.

Every block's backward is checked through the fake loss f = Σ w ⊙ forward(inputs) with a random
upstream gradient w (float64, central differences, rtol 1e-6). The atol is the finite-difference
rounding floor of f (tests/_fd.py) with the scale S = Σ|w ⊙ out| + Σ_k Σ|∂f/∂x_k ⊙ x_k|: the change
of f when every input moves by one relative ulp, which is the size of the rounding noise of one
evaluation of f. A check that a 1e-4 relative error in one gradient entry is caught keeps this atol
honest. Plus structural facts: causal rows, shift invariance of the key bias, shapes.
"""

from __future__ import annotations

import numpy as np
import pytest
from _fd import EPS, RTOL, fd_noise_floor
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refimpl.core.gradcheck import GradcheckError, gradcheck
from refimpl.transformer import blocks as Bk


def rand(rng, *shape, scale=1.0):
    return scale * rng.standard_normal(shape)


def fake_loss_check(fwd, bwd, inputs: dict, rng, *, max_entries=24, n_directions=6):
    """Check ``bwd`` (returning (dx, grads)) against central differences of Σ w ⊙ fwd(inputs).

    ``fwd(inputs) -> (out, cache)``; the input to differentiate as dx is ``inputs["x"]``.
    Returns the report (raises on failure)."""
    out, cache = fwd(inputs)
    w = rng.standard_normal(out.shape)  # upstream gradient of the fake loss
    dx, grads = bwd(w, cache)
    claimed = dict(grads)
    if dx is not None:
        claimed["x"] = dx
    assert set(claimed) <= set(inputs), f"gradients {sorted(set(claimed) - set(inputs))} have no input"
    for k, g in claimed.items():
        assert g.shape == np.shape(inputs[k]), f"gradient {k} shape {g.shape} != input {np.shape(inputs[k])}"

    def f(inp):
        return float(np.sum(w * fwd(inp)[0]))

    S = float(np.sum(np.abs(w * out))) + sum(float(np.sum(np.abs(g * inputs[k]))) for k, g in claimed.items())
    return gradcheck(f, inputs, claimed, eps=EPS, rtol=RTOL, atol=fd_noise_floor(S),
                     max_entries=max_entries, n_directions=n_directions, rng=rng).raise_if_failed()


def attn_params(rng, D, scale=0.6):
    return {n: rand(rng, *((D, D) if n.startswith("W") else (D,)), scale=scale) for n in Bk.ATTN_PARAMS}


def ff_params(rng, D, F, scale=0.6):
    return {"W1": rand(rng, F, D, scale=scale), "b1": rand(rng, F, scale=scale),
            "W2": rand(rng, D, F, scale=scale), "b2": rand(rng, D, scale=scale)}


def ff_preacts_away_from_kink(x, p, tol=1e-3):
    h = x @ p["W1"].T + p["b1"]
    return float(np.min(np.abs(h))) > tol


dims = st.fixed_dictionaries({
    "B": st.integers(1, 3), "T": st.integers(1, 5), "H": st.integers(1, 3), "dh": st.integers(1, 3),
    "seed": st.integers(0, 2**32 - 1),
})


# --------------------------------------------------------------------------------------------
# linear, layer norm wrapper
# --------------------------------------------------------------------------------------------
@settings(max_examples=25)
@given(B=st.integers(1, 3), T=st.integers(1, 4), n_in=st.integers(1, 5), n_out=st.integers(1, 5),
       seed=st.integers(0, 2**32 - 1))
def test_linear_backward_matches_central_differences(B, T, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    inputs = {"x": rand(rng, B, T, n_in), "W": rand(rng, n_out, n_in), "b": rand(rng, n_out)}
    fake_loss_check(lambda i: Bk.linear_forward(i["x"], i["W"], i["b"]), Bk.linear_backward, inputs, rng)


def test_linear_is_torch_layout():
    x, W, b = np.arange(6.0).reshape(1, 2, 3), np.arange(12.0).reshape(4, 3), np.arange(4.0)
    y, _ = Bk.linear_forward(x, W, b)
    np.testing.assert_array_equal(y[0, 1], W @ x[0, 1] + b)  # y = W x + b per token, W (n_out, n_in)


@settings(max_examples=20)
@given(B=st.integers(1, 3), T=st.integers(1, 4), D=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_layernorm_block_backward_matches_central_differences(B, T, D, seed):
    rng = np.random.default_rng(seed)
    inputs = {"x": rand(rng, B, T, D), "g": 1 + rand(rng, D, scale=0.3), "b": rand(rng, D, scale=0.3)}
    fake_loss_check(lambda i: Bk.layernorm_block_forward(i["x"], i["g"], i["b"]),
                    Bk.layernorm_block_backward, inputs, rng)


# --------------------------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------------------------
@settings(max_examples=25)
@given(d=dims, causal=st.booleans())
def test_attention_backward_matches_central_differences(d, causal):
    rng = np.random.default_rng(d["seed"])
    D = d["H"] * d["dh"]
    p = attn_params(rng, D)
    inputs = {"x": rand(rng, d["B"], d["T"], D), **p}

    def fwd(i):
        return Bk.attention_forward(i["x"], {n: i[n] for n in Bk.ATTN_PARAMS}, d["H"], causal)

    fake_loss_check(fwd, Bk.attention_backward, inputs, rng)


@settings(max_examples=20)
@given(d=dims)
def test_causal_attention_rows_and_no_look_ahead(d):
    rng = np.random.default_rng(d["seed"])
    B, T, H = d["B"], d["T"], d["H"]
    D = H * d["dh"]
    p = attn_params(rng, D, scale=1.0)
    x = rand(rng, B, T, D)
    y, cache = Bk.attention_forward(x, p, H, causal=True)
    A = cache["A"]
    assert A.shape == (B, H, T, T)
    np.testing.assert_allclose(A.sum(axis=-1), 1.0, rtol=0, atol=1e-14)
    assert np.all(A[..., Bk.causal_mask(T)] == 0.0)  # query i sees keys ≤ i only
    assert np.all(A[..., ~Bk.causal_mask(T)] > 0.0)
    # changing the last token changes no earlier output
    x2 = x.copy()
    x2[:, -1] += 1.0 + rand(rng, B, D)
    y2, _ = Bk.attention_forward(x2, p, H, causal=True)
    np.testing.assert_array_equal(y2[:, :-1], y[:, :-1])
    assert np.max(np.abs(y2[:, -1] - y[:, -1])) > 1e-6


def test_attention_heads_are_independent_blocks_of_rows():
    """Head h reads rows h·d_h..(h+1)·d_h − 1 of W_Q, W_K, W_V: equal to a loop over single heads."""
    rng = np.random.default_rng(0)
    B, T, H, dh = 2, 4, 3, 2
    D = H * dh
    p = attn_params(rng, D, scale=1.0)
    x = rand(rng, B, T, D)
    _, cache = Bk.attention_forward(x, p, H)
    for h in range(H):
        r = slice(h * dh, (h + 1) * dh)
        q = x @ p["W_Q"][r].T + p["b_Q"][r]
        k = x @ p["W_K"][r].T + p["b_K"][r]
        s = q @ k.transpose(0, 2, 1) / np.sqrt(dh)
        A = np.exp(s - s.max(-1, keepdims=True))
        A /= A.sum(-1, keepdims=True)
        np.testing.assert_allclose(cache["A"][:, h], A, rtol=1e-13, atol=1e-15)


def test_key_bias_gets_zero_gradient():
    """softmax over keys is invariant to q·b_K (one constant per query row), so ∇b_K = 0."""
    rng = np.random.default_rng(1)
    p = attn_params(rng, 4)
    y, cache = Bk.attention_forward(rand(rng, 2, 5, 4), p, 2)
    _, g = Bk.attention_backward(rand(rng, *y.shape), cache)
    assert np.max(np.abs(g["b_K"])) < 1e-14 * np.max(np.abs(g["W_K"]))
    assert np.max(np.abs(g["b_Q"])) > 1e-3


# --------------------------------------------------------------------------------------------
# feed-forward
# --------------------------------------------------------------------------------------------
@settings(max_examples=25)
@given(B=st.integers(1, 3), T=st.integers(1, 4), D=st.integers(1, 5), F=st.integers(1, 6),
       activation=st.sampled_from(["relu", "gelu"]), seed=st.integers(0, 2**32 - 1))
def test_feedforward_backward_matches_central_differences(B, T, D, F, activation, seed):
    rng = np.random.default_rng(seed)
    p = ff_params(rng, D, F)
    x = rand(rng, B, T, D)
    if activation == "relu":
        assume(ff_preacts_away_from_kink(x, p))
    inputs = {"x": x, **p}
    fake_loss_check(lambda i: Bk.feedforward_forward(i["x"], {n: i[n] for n in Bk.FF_PARAMS}, activation),
                    Bk.feedforward_backward, inputs, rng)


# --------------------------------------------------------------------------------------------
# residual sub-blocks and whole layers
# --------------------------------------------------------------------------------------------
@settings(max_examples=25)
@given(d=dims, norm=st.sampled_from(["post", "pre"]), sub=st.sampled_from(["attn", "ff"]), causal=st.booleans())
def test_residual_backward_matches_central_differences(d, norm, sub, causal):
    rng = np.random.default_rng(d["seed"])
    D = d["H"] * d["dh"]
    assume(D >= 2)  # layer norm over one feature is constant
    names = Bk.ATTN_PARAMS if sub == "attn" else Bk.FF_PARAMS
    p = attn_params(rng, D) if sub == "attn" else ff_params(rng, D, D + 1)
    inputs = {"x": rand(rng, d["B"], d["T"], D), "g": 1 + rand(rng, D, scale=0.3), "b": rand(rng, D, scale=0.3), **p}

    def fwd(i):
        q = {n: i[n] for n in names}
        f = (lambda z: Bk.attention_forward(z, q, d["H"], causal)) if sub == "attn" else \
            (lambda z: Bk.feedforward_forward(z, q, "gelu"))
        return Bk.residual_forward(i["x"], f, i["g"], i["b"], norm)

    def bwd(w, cache):
        dx, g = Bk.residual_backward(w, cache, Bk.attention_backward if sub == "attn" else Bk.feedforward_backward)
        return dx, {"g": g["ln"]["g"], "b": g["ln"]["b"], **g["sub"]}

    fake_loss_check(fwd, bwd, inputs, rng)


def layer_params(rng, D, F):
    p = {f"attn.{n}": v for n, v in attn_params(rng, D).items()}
    p.update({f"ff.{n}": v for n, v in ff_params(rng, D, F).items()})
    for ln in ("ln1", "ln2"):
        p[f"{ln}.g"] = 1 + rand(rng, D, scale=0.3)
        p[f"{ln}.b"] = rand(rng, D, scale=0.3)
    return p


@settings(max_examples=30)
@given(d=dims, norm=st.sampled_from(["post", "pre"]), activation=st.sampled_from(["relu", "gelu"]),
       causal=st.booleans())
def test_layer_backward_matches_central_differences(d, norm, activation, causal):
    rng = np.random.default_rng(d["seed"])
    D = d["H"] * d["dh"]
    assume(D >= 2)
    p = layer_params(rng, D, D + 2)
    x = rand(rng, d["B"], d["T"], D)
    kw = dict(n_heads=d["H"], norm=norm, activation=activation, causal=causal)
    if activation == "relu":  # the feed-forward pre-activations must stay away from the kink
        _, cache = Bk.layer_forward(x, p, **kw)
        h = cache["c2"]["c_f"]["c_act"][0]
        assume(float(np.min(np.abs(h))) > 1e-3)
    inputs = {"x": x, **p}
    fake_loss_check(lambda i: Bk.layer_forward(i["x"], {k: i[k] for k in p}, **kw), Bk.layer_backward, inputs, rng,
                    max_entries=16, n_directions=4)


def test_post_norm_layer_output_is_normalised():
    rng = np.random.default_rng(2)
    p = layer_params(rng, 6, 8)
    p["ln2.g"], p["ln2.b"] = np.ones(6), np.zeros(6)
    y, _ = Bk.layer_forward(rand(rng, 2, 3, 6), p, n_heads=2, norm="post", activation="relu", causal=False)
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-14)
    np.testing.assert_allclose(y.var(-1), 1.0, rtol=0, atol=1e-4)  # var/(var + 1e-5)


# --------------------------------------------------------------------------------------------
# read-in, read-out
# --------------------------------------------------------------------------------------------
@settings(max_examples=20)
@given(B=st.integers(1, 3), T=st.integers(1, 5), d_in=st.integers(1, 4), D=st.integers(1, 4),
       extra=st.integers(0, 3), learned=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_read_in_backward_matches_central_differences(B, T, d_in, D, extra, learned, seed):
    rng = np.random.default_rng(seed)
    inputs = {"x": rand(rng, B, T, d_in), "W": rand(rng, D, d_in), "b": rand(rng, D)}
    if learned:
        inputs["pos"] = rand(rng, T + extra, D)  # max_T ≥ T: rows beyond T get zero gradient
    report = fake_loss_check(lambda i: Bk.read_in_forward(i["x"], i["W"], i["b"], i.get("pos")),
                             Bk.read_in_backward, inputs, rng)
    assert {c.name for c in report.checks} == set(inputs)


@settings(max_examples=20)
@given(B=st.integers(1, 3), T=st.integers(1, 5), D=st.integers(1, 5), readout=st.sampled_from(["all", "last"]),
       seed=st.integers(0, 2**32 - 1))
def test_read_out_backward_matches_central_differences(B, T, D, readout, seed):
    rng = np.random.default_rng(seed)
    inputs = {"x": rand(rng, B, T, D), "W": rand(rng, 1, D), "b": rand(rng, 1)}
    out, _ = Bk.read_out_forward(inputs["x"], inputs["W"], inputs["b"], readout)
    assert out.shape == ((B, T) if readout == "all" else (B,))
    fake_loss_check(lambda i: Bk.read_out_forward(i["x"], i["W"], i["b"], readout), Bk.read_out_backward, inputs, rng)


# --------------------------------------------------------------------------------------------
# the check itself can fail
# --------------------------------------------------------------------------------------------
def test_fake_loss_check_catches_a_small_gradient_error():
    rng = np.random.default_rng(3)
    D = 4
    p = layer_params(rng, D, 6)
    inputs = {"x": rand(rng, 2, 3, D), **p}
    kw = dict(n_heads=2, norm="pre", activation="gelu", causal=True)

    def bad_backward(w, cache):
        dx, g = Bk.layer_backward(w, cache)
        G = g["attn.W_K"].copy()
        idx = np.unravel_index(np.argmax(np.abs(G)), G.shape)
        G[idx] *= 1 + 1e-4
        g["attn.W_K"] = G
        return dx, g

    def fwd(i):
        return Bk.layer_forward(i["x"], {k: i[k] for k in p}, **kw)
    fake_loss_check(fwd, Bk.layer_backward, inputs, np.random.default_rng(4), max_entries=100)
    with pytest.raises(GradcheckError, match="W_K"):
        fake_loss_check(fwd, bad_backward, inputs, np.random.default_rng(4), max_entries=100)
