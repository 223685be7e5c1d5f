"""Spec L model (refimpl.li2024): what is specific to this model beyond the generic contract test
(tests/test_contract.py: gradient checks at random sizes, NumPy == Numba on random cases, bad
inputs, determinism, golden round trip).

Here: the forward pass against the spec's formula written literally; the gradient check is not
vacuous; pruning masks (spec L9); the Numba path's hinge-inactive prompts, its big-size agreement
and its propagation of non-finite numbers; structural facts (permutation invariance, the ReLU
derivative at 0); float32; the contract's ``aux`` (scale, kink margin); training (spec L11), its
non-finite guard and its ``Trajectory``. Parameters are often built directly (not via a config),
so every dimension (B, d_x, d_y, l, m, m_a, m_b) varies independently; the config only carries the
options (``cfg.model``).
"""

from __future__ import annotations

import numpy as np
import pytest
from _fd import EPS, RTOL, fd_noise_floor
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refimpl import li2024
from refimpl.core import gradcheck
from refimpl.core.errors import NonFiniteError
from refimpl.core.trajectory import Trajectory

FLOATS = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
PARAMS4 = ("W_Q", "W_K", "W_V", "W_O")


def opt_cfg(attend_to_query=False, train_a=False, relu_at_zero=0.0):
    """A config carrying the given options (the sizes come from the parameters and the batch)."""
    return li2024.preset("tiny", model=dict(attend_to_query=attend_to_query, train_a=train_a,
                                            relu_at_zero=relu_at_zero))


def farray(shape, lo=-1.0, hi=1.0):
    """Float64 arrays with independently drawn entries in [lo, hi]."""
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, **FLOATS), fill=st.nothing())


@st.composite
def li_case(draw, max_B=4, max_dx=6, max_dy=4, max_l=6, max_m=8, max_ma=6, max_mb=6, W_O_scales=(1.0,)):
    """Parameters {W_Q, W_K, W_V, W_O, a} and a batch {P, z} of hypothesis-drawn shapes and values."""
    B = draw(st.integers(1, max_B), label="B")
    d_x = draw(st.integers(1, max_dx), label="d_x")
    d_y = draw(st.integers(1, max_dy), label="d_y")
    l = draw(st.integers(1, max_l), label="l")
    m = draw(st.integers(1, max_m), label="m")
    m_a = draw(st.integers(1, max_ma), label="m_a")
    m_b = draw(st.integers(1, max_mb), label="m_b")
    d = d_x + d_y
    scale = draw(st.sampled_from(W_O_scales), label="W_O scale")
    params = {
        "W_Q": draw(farray((m_b, d)), label="W_Q"),
        "W_K": draw(farray((m_b, d)), label="W_K"),
        "W_V": draw(farray((m_a, d)), label="W_V"),
        "W_O": scale * draw(farray((m, m_a)), label="W_O"),
        "a": draw(farray((m,)), label="a"),
    }
    P = draw(farray((B, d, l + 1)), label="P")
    z = draw(hnp.arrays(np.float64, (B,), elements=st.sampled_from([-1.0, 1.0])), label="z")
    return params, {"P": P, "z": z}


def mean_hinge(params, P, z, keep=None, **opts):
    """The loss recomputed from ``forward`` (spec L10): mean over prompts of max{0, 1 − zF}."""
    F, _ = li2024.forward(params, {"P": P}, opt_cfg(**opts), keep=keep)
    return float(np.mean(np.maximum(0.0, 1.0 - z * F)))


def loss_scale(params, cache, keep=None) -> float:
    """Magnitude of the terms summed into the mean hinge loss: 1 + Σ_i |a_i| (|W_O||W_V||C|σ)_i."""
    P, l, sigma = cache["P"], cache["l"], cache["attn"]
    cabs = np.einsum("bdi,bi->bd", np.abs(P[:, :, :l]), sigma[:, :l])  # (B, d)
    a = np.abs(params["a"]) if keep is None else np.abs(params["a"]) * keep
    terms = (np.abs(params["W_V"]) @ cabs.T).T @ np.abs(params["W_O"]).T @ a  # (B,)
    return float(np.mean(1.0 + terms))


def rel_close(got, ref, tol=1e-12):
    """max |got − ref| ≤ tol · max(1, max |ref|); returns (ok, max diff, bound) for messages."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    diff = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    bound = tol * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    return diff <= bound, diff, bound


def assert_rel_close(got, ref, name, tol=1e-12):
    ok, diff, bound = rel_close(got, ref, tol)
    assert ok, f"{name}: max |diff| = {diff:.3e} > {bound:.3e}"


# --------------------------------------------------------------------------------------------
# the gradient check is not vacuous (spec L12)
# --------------------------------------------------------------------------------------------
def test_gradients_of_a_hand_sized_case_are_nontrivial():
    """Non-vacuity of the check above: on a generic case every gradient is O(1e-2) or more."""
    rng = np.random.default_rng(7)
    B, d, l, m, m_a, m_b = 3, 5, 4, 6, 4, 3
    params = {"W_Q": rng.standard_normal((m_b, d)), "W_K": rng.standard_normal((m_b, d)),
              "W_V": rng.standard_normal((m_a, d)), "W_O": rng.standard_normal((m, m_a)) / 4,
              "a": rng.choice([-1.0, 1.0], m) / np.sqrt(m)}
    P = rng.standard_normal((B, d, l + 1))
    z = np.array([1.0, -1.0, 1.0])
    loss, grads = li2024.loss_and_grads(params, {"P": P, "z": z}, opt_cfg(train_a=True))
    assert 0 < loss
    for k, g in grads.items():
        assert np.max(np.abs(g)) > 1e-2, k
    F, cache = li2024.forward(params, {"P": P}, opt_cfg())
    rep = gradcheck(lambda p: mean_hinge(p, P, z), params, grads, eps=EPS, rtol=RTOL,
                    atol=fd_noise_floor(loss_scale(params, cache)))
    rep.raise_if_failed()
    # and the same check rejects the gradient of W_Q computed with W_K and W_Q swapped
    wrong = dict(grads, W_Q=grads["W_K"])
    assert not gradcheck(lambda p: mean_hinge(p, P, z), params, wrong, eps=EPS, rtol=RTOL,
                         atol=fd_noise_floor(loss_scale(params, cache))).passed


def naive_F(params, P, attend_to_query=False):
    """Spec L7 written literally, one prompt and one column at a time (independent of model.py)."""
    W_Q, W_K, W_V, W_O, a = (params[k] for k in li2024.PARAM_NAMES)
    B, d, L1 = P.shape
    l = L1 - 1
    out = np.empty(B)
    attn_all = []
    for b in range(B):
        p_q = P[b, :, l]
        J = L1 if attend_to_query else l
        scores = np.array([(W_K @ P[b, :, i]) @ (W_Q @ p_q) for i in range(J)])
        e = np.exp(scores - scores.max())
        attn = e / e.sum()
        v = sum(W_V @ P[b, :, i] * attn[i] for i in range(l))
        out[b] = a @ np.maximum(W_O @ v, 0.0)
        attn_all.append(attn)
    return out, np.array(attn_all)


@settings(max_examples=60)
@given(case=li_case(), attend_to_query=st.booleans())
def test_forward_matches_the_spec_formula(case, attend_to_query):
    params, batch = case
    F, cache = li2024.forward(params, batch, opt_cfg(attend_to_query=attend_to_query))
    F_ref, attn_ref = naive_F(params, batch["P"], attend_to_query)
    assert_rel_close(F, F_ref, "F", tol=1e-12)
    assert_rel_close(cache["attn"], attn_ref, "attn", tol=1e-12)
    assert cache["attn"].shape == (batch["P"].shape[0], batch["P"].shape[2] - (0 if attend_to_query else 1))


# --------------------------------------------------------------------------------------------
# pruning mask (spec L9)
# --------------------------------------------------------------------------------------------
@settings(max_examples=60)
@given(case=li_case(), data=st.data())
def test_pruning_mask_zeroes_pruned_rows_and_sums_kept_neurons(case, data):
    params, batch = case
    m = params["W_O"].shape[0]
    keep = data.draw(hnp.arrays(np.float64, (m,), elements=st.sampled_from([0.0, 1.0])), label="keep")
    attend_to_query = data.draw(st.booleans(), label="attend_to_query")
    backend = data.draw(st.sampled_from(li2024.model.BACKENDS), label="backend")
    cfg = opt_cfg(attend_to_query=attend_to_query, train_a=True)

    F_full, cache = li2024.forward(params, batch, cfg)
    F_keep, _ = li2024.forward(params, batch, cfg, keep=keep)
    # F(Ψ_S; P) = Σ_{i kept} a_i Relu(h_i)
    F_sum = np.maximum(cache["h"], 0.0) @ (params["a"] * keep)
    assert_rel_close(F_keep, F_sum, "F with keep", tol=1e-12)

    loss, grads = li2024.loss_and_grads(params, batch, cfg, backend, keep=keep.astype(bool))
    pruned = keep == 0
    assert np.all(grads["W_O"][pruned] == 0.0), "pruned rows of W_O must get exactly zero gradient"
    assert np.all(grads["a"][pruned] == 0.0), "pruned entries of a must get exactly zero gradient"

    # the kept part equals the model with the pruned rows removed (spec L9: "removes rows S")
    kept = ~pruned
    small = dict(params, W_O=params["W_O"][kept], a=params["a"][kept])
    if kept.any():
        loss_s, grads_s = li2024.loss_and_grads(small, batch, cfg, backend)
        assert loss == pytest.approx(loss_s, rel=1e-12, abs=1e-12)
        assert_rel_close(grads["W_O"][kept], grads_s["W_O"], "grad W_O (kept rows)")
        assert_rel_close(grads["a"][kept], grads_s["a"], "grad a (kept entries)")
        for k in ("W_Q", "W_K", "W_V"):
            assert_rel_close(grads[k], grads_s[k], f"grad {k}")
    else:  # everything pruned: F ≡ 0, loss 1, and no gradient reaches any parameter
        assert loss == 1.0
        for k, g in grads.items():
            assert np.all(g == 0.0), k


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_pruned_gradient_of_a_is_right_when_an_entry_of_a_is_zero(backend):
    """Kept neurons whose a_i happens to be 0 still have ∂ℓ/∂a_i = g r_i ≠ 0 (spec L12, L9).

    a_i = 0 is a legitimate point (e.g. a trained a crossing zero, or a user's own a); the keep
    mask, not the value of a, decides which entries are pruned.
    """
    rng = np.random.default_rng(11)
    B, d, l, m, m_a, m_b = 4, 5, 3, 5, 4, 3
    params = {"W_Q": rng.standard_normal((m_b, d)), "W_K": rng.standard_normal((m_b, d)),
              "W_V": rng.standard_normal((m_a, d)), "W_O": np.abs(rng.standard_normal((m, m_a))),
              "a": np.array([0.0, 0.5, -0.5, 0.3, 0.2])}
    P = np.abs(rng.standard_normal((B, d, l + 1)))  # positive P, W_V ≥ 0 rows below: h > 0
    params["W_V"] = np.abs(params["W_V"])
    z = -np.ones(B)  # F > 0 here, so every prompt is misclassified: all hinge terms active
    keep = np.array([1.0, 1.0, 0.0, 1.0, 1.0])  # neuron 0 (a_0 = 0) is kept, neuron 2 pruned
    batch = {"P": P, "z": z}
    F, cache = li2024.forward(params, batch, opt_cfg(), keep=keep)
    assert np.all(cache["h"] > 0) and np.all(z * F < 1)
    g = -z / B  # dℓ/dF per prompt, all prompts active
    expected_da = (g @ cache["r"]) * keep
    assert abs(expected_da[0]) > 1e-2  # the case is not degenerate
    _, grads = li2024.loss_and_grads(params, batch, opt_cfg(train_a=True), backend, keep=keep)
    np.testing.assert_allclose(grads["a"], expected_da, rtol=1e-12, atol=1e-15,
                               err_msg=f"{backend}: grad of a kept neuron with a_i = 0 was dropped")
    # the finite-difference check agrees
    def f(p):
        return mean_hinge(p, P, z, keep=keep)
    gradcheck(f, params, {"a": grads["a"]}, eps=EPS, rtol=RTOL,
              atol=fd_noise_floor(loss_scale(params, cache, keep))).raise_if_failed()


# --------------------------------------------------------------------------------------------
# NumPy path == Numba path: the inactive-prompt skip, pruning, non-finite numbers
# --------------------------------------------------------------------------------------------
def _compare_backends(params, batch, cfg, keep):
    loss_n, g_n, aux_n = li2024.loss_and_grads(params, batch, cfg, "numpy", keep=keep, return_aux=True)
    loss_j, g_j, aux_j = li2024.loss_and_grads(params, batch, cfg, "numba", keep=keep, return_aux=True)
    assert set(g_n) == set(g_j)
    assert isinstance(loss_j, float)
    assert_rel_close(loss_j, loss_n, "loss")
    for k in g_n:
        assert g_j[k].shape == g_n[k].shape, k
        assert_rel_close(g_j[k], g_n[k], f"grad {k}")
    assert_rel_close(aux_j["out"], aux_n["out"], "F")
    assert_rel_close(aux_j["attn"], aux_n["attn"], "attn")
    assert aux_j["scale"] == pytest.approx(aux_n["scale"], rel=1e-12)
    assert aux_j["kink_margin"] == pytest.approx(aux_n["kink_margin"], rel=1e-9, abs=1e-12)
    return loss_n, g_n, aux_n


def test_numpy_and_numba_agree_with_active_and_inactive_prompts():
    """A batch where some prompts have zF ≥ 1 (zero hinge gradient) and others zF < 1."""
    rng = np.random.default_rng(3)
    B, d, l, m, m_a, m_b = 12, 7, 5, 9, 6, 4
    params = {"W_Q": rng.standard_normal((m_b, d)), "W_K": rng.standard_normal((m_b, d)),
              "W_V": rng.standard_normal((m_a, d)), "W_O": 20.0 * rng.standard_normal((m, m_a)),
              "a": rng.choice([-1.0, 1.0], m) / np.sqrt(m)}
    P = rng.standard_normal((B, d, l + 1))
    F, _ = li2024.forward(params, {"P": P}, opt_cfg())
    z = np.where(np.arange(B) % 3 == 0, -np.sign(F), np.sign(F))  # two thirds correctly classified
    zF = z * F
    assert np.sum(zF >= 1) >= 3 and np.sum(zF < 1) >= 3, zF
    batch = {"P": P, "z": z}
    for attend_to_query in (False, True):
        for keep in (None, (np.arange(m) % 4 != 1).astype(float)):
            cfg = opt_cfg(attend_to_query=attend_to_query, train_a=True)
            loss, grads, _ = _compare_backends(params, batch, cfg, keep)
            # only the active prompts contribute: dropping the inactive ones rescales by B_active / B
            act = z * li2024.predict(params, batch, cfg, keep=keep) < 1
            sub = {"P": P[act], "z": z[act]}
            loss_a, grads_a = li2024.loss_and_grads(params, sub, cfg, "numba", keep=keep)
            assert loss == pytest.approx(loss_a * act.sum() / B, rel=1e-12)
            for k in grads:
                assert_rel_close(grads[k], grads_a[k] * act.sum() / B, f"grad {k} (active only)")


# --------------------------------------------------------------------------------------------
# structure
# --------------------------------------------------------------------------------------------
@settings(max_examples=60)
@given(case=li_case(max_l=7), attend_to_query=st.booleans(), data=st.data())
def test_F_is_invariant_to_permuting_context_columns(case, attend_to_query, data):
    params, batch = case
    P = batch["P"]
    l = P.shape[2] - 1
    perm = np.array(data.draw(st.permutations(range(l)), label="perm"))
    P_perm = P[:, :, np.concatenate([perm, [l]])]  # the query column stays last
    cfg = opt_cfg(attend_to_query=attend_to_query)
    for backend in ("numpy", "numba"):
        _, _, aux = li2024.loss_and_grads(params, batch, cfg, backend, return_aux=True, check=False)
        _, _, aux_p = li2024.loss_and_grads(params, {"P": P_perm, "z": batch["z"]}, cfg, backend,
                                            return_aux=True, check=False)
        assert_rel_close(aux_p["out"], aux["out"], f"{backend}: F after permuting context columns")
        attn_perm = aux["attn"].copy()
        attn_perm[:, :l] = aux["attn"][:, perm]
        assert_rel_close(aux_p["attn"], attn_perm, f"{backend}: attention follows its column")


def test_F_depends_on_which_column_is_the_query():
    """Negative control for the permutation test: moving the query column changes F."""
    rng = np.random.default_rng(5)
    params = {"W_Q": rng.standard_normal((3, 6)), "W_K": rng.standard_normal((3, 6)),
              "W_V": rng.standard_normal((4, 6)), "W_O": rng.standard_normal((5, 4)), "a": rng.standard_normal(5)}
    P = rng.standard_normal((2, 6, 5))
    F = li2024.predict(params, {"P": P}, opt_cfg())
    F_swap = li2024.predict(params, {"P": P[:, :, [4, 1, 2, 3, 0]]}, opt_cfg())
    assert np.min(np.abs(F - F_swap)) > 1e-3


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_relu_at_zero_matters_only_where_h_is_exactly_zero(backend):
    rng = np.random.default_rng(2)
    B, d, l, m, m_a, m_b = 5, 6, 4, 6, 4, 3
    params = {"W_Q": rng.standard_normal((m_b, d)), "W_K": rng.standard_normal((m_b, d)),
              "W_V": rng.standard_normal((m_a, d)), "W_O": rng.standard_normal((m, m_a)) / 3,
              "a": rng.choice([-1.0, 1.0], m) / np.sqrt(m)}
    P = rng.standard_normal((B, d, l + 1))
    z = rng.choice([-1.0, 1.0], B)
    batch = {"P": P, "z": z}

    # generic parameters: h ≠ 0 everywhere, so the option changes nothing, bit for bit
    F, cache = li2024.forward(params, batch, opt_cfg())
    assert np.all(cache["h"] != 0)
    res = {rz: li2024.loss_and_grads(params, batch, opt_cfg(train_a=True, relu_at_zero=rz), backend, return_aux=True)
           for rz in (0.0, 1.0)}
    assert res[0.0][0] == res[1.0][0]
    for k in res[0.0][1]:
        np.testing.assert_array_equal(res[0.0][1][k], res[1.0][1][k], err_msg=k)
    np.testing.assert_array_equal(res[0.0][2]["out"], res[1.0][2]["out"])

    # a zero row of W_O: h_0 = 0 exactly for every prompt
    params["W_O"][0] = 0.0
    F, cache = li2024.forward(params, batch, opt_cfg())
    assert np.all(cache["h"][:, 0] == 0.0)
    active = z * F < 1
    assert active.sum() >= 2
    res = {rz: li2024.loss_and_grads(params, batch, opt_cfg(train_a=True, relu_at_zero=rz), backend, return_aux=True)
           for rz in (0.0, 1.0)}
    (l0, g0, aux0), (l1, g1, aux1) = res[0.0], res[1.0]
    assert l0 == l1
    np.testing.assert_array_equal(aux0["out"], aux1["out"])  # Relu(0) = 0 either way
    # with derivative 0 the dead row gets no gradient; with 1 it gets δh vᵀ, δh = g a_0
    assert np.all(g0["W_O"][0] == 0.0)
    g = np.where(active, -z, 0.0) / B  # (B,) dR/dF
    expected_row = (g * params["a"][0]) @ cache["v"]  # (m_a,)
    assert np.max(np.abs(expected_row)) > 1e-2
    np.testing.assert_allclose(g1["W_O"][0], expected_row, rtol=1e-12, atol=1e-15)
    # the row is zero, so δv = W_Oᵀ δh does not see it: every other gradient is unchanged
    np.testing.assert_allclose(g1["W_O"][1:], g0["W_O"][1:], rtol=1e-13, atol=1e-15)
    for k in ("W_Q", "W_K", "W_V", "a"):
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-13, atol=1e-15, err_msg=k)


# --------------------------------------------------------------------------------------------
# float32
# --------------------------------------------------------------------------------------------
def _f32_case(seed=6):
    """Tiny-preset shapes, O(1) W_O so prompts are on both sides of the margin; away from kinks."""
    cfg = li2024.preset("tiny")
    inst = li2024.make_instance(cfg.data, seed)
    params = li2024.init_params(cfg, seed)
    rng = np.random.default_rng(seed)
    params["W_O"] = 4.0 * rng.standard_normal(params["W_O"].shape) / np.sqrt(params["W_O"].shape[1])
    params["W_Q"] = params["W_Q"] * 10.0  # a softmax that is not flat
    params["W_K"] = params["W_K"] * 10.0
    batch = li2024.sample_batch(inst, 32, rng)
    return params, batch


@pytest.mark.parametrize("attend_to_query", [False, True])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_float32_runs_in_float32_and_is_close_to_float64(backend, attend_to_query):
    params64, batch64 = _f32_case()
    cfg = opt_cfg(attend_to_query=attend_to_query, train_a=True)
    loss64, g64, aux64 = li2024.loss_and_grads(params64, batch64, cfg, "numpy", return_aux=True)
    zF = batch64["z"] * aux64["out"]
    F, cache = li2024.forward(params64, batch64, cfg)
    # float32 rounding (~1e-7 relative) cannot flip a ReLU or hinge branch here
    assert np.min(np.abs(cache["h"])) > 1e-4 and np.min(np.abs(1 - zF)) > 1e-3
    assert 0 < np.sum(zF < 1) < len(zF)

    params32 = {k: v.astype(np.float32) for k, v in params64.items()}
    batch32 = {"P": batch64["P"].astype(np.float32), "z": batch64["z"].astype(np.float32)}
    loss32, g32, aux32 = li2024.loss_and_grads(params32, batch32, cfg, backend, return_aux=True)
    assert isinstance(loss32, float)
    for k, g in g32.items():
        assert g.dtype == np.float32, f"{backend}: grad {k} is {g.dtype}"
    assert aux32["out"].dtype == np.float32 and aux32["attn"].dtype == np.float32
    # float32 carries ~7 digits; after ~10 rounding steps 1e-5 of the largest entry is the budget.
    # A real error (a wrong term, a dropped prompt) is O(1e-2) or more of it.
    tol = 1e-5
    assert loss32 == pytest.approx(loss64, rel=tol)
    for k in g64:
        assert_rel_close(g32[k], g64[k], f"{backend} float32 grad {k}", tol=tol)
    assert_rel_close(aux32["out"], aux64["out"], "F float32", tol=tol)
    assert_rel_close(aux32["attn"], aux64["attn"], "attn float32", tol=tol)


def test_float32_params_with_a_sampled_batch_compute_in_float32_on_both_backends():
    """init_params(dtype=float32) with a batch from sample_batch (float64 P, z): the backends must
    agree on the result dtype, and it must be the parameters' dtype (float32 is selected for speed;
    a silent upcast makes the NumPy float32 path a float64 computation)."""
    cfg = li2024.preset("tiny")
    inst = li2024.make_data(cfg, 0)
    params = li2024.init_params(cfg, 1, dtype=np.float32)
    batch = li2024.sample_batch(inst, 8, np.random.default_rng(0))
    dtypes = {}
    for backend in ("numba", "numpy"):
        _, grads, aux = li2024.loss_and_grads(params, batch, cfg, backend, return_aux=True)
        dtypes[backend] = {k: g.dtype for k, g in grads.items()} | {"F": aux["out"].dtype, "attn": aux["attn"].dtype}
    assert dtypes["numba"] == dtypes["numpy"], dtypes
    assert set(dtypes["numpy"].values()) == {np.dtype(np.float32)}, dtypes


# --------------------------------------------------------------------------------------------
# the contract's extras for this model: aux, make_data, init dtype, cache
# --------------------------------------------------------------------------------------------
def test_aux_scale_and_kink_margin_are_the_stated_quantities():
    params, batch = _f32_case()
    cfg = opt_cfg(train_a=True)
    keep = (np.arange(params["W_O"].shape[0]) % 3 != 0).astype(float)
    _, _, aux = li2024.loss_and_grads(params, batch, cfg, keep=keep, return_aux=True)
    F, cache = li2024.forward(params, batch, cfg, keep=keep)
    np.testing.assert_array_equal(aux["out"], F)
    np.testing.assert_array_equal(aux["attn"], cache["attn"])
    assert aux["scale"] == pytest.approx(loss_scale(params, cache, keep), rel=1e-12)
    # |F| ≤ Σ|a||W_O||W_V||C|σ: the scale bounds the terms summed into the loss, and is not far above them
    assert 1 + np.mean(np.abs(F)) <= aux["scale"] <= 1 + 100 * np.mean(np.abs(F))
    kept_h = np.abs(cache["h"][:, keep == 1])
    assert aux["kink_margin"] == min(kept_h.min(), np.abs(1 - batch["z"] * F).min())


def test_make_data_is_the_instance_train_uses():
    cfg = li2024.preset("tiny", train={"steps": 0})
    traj = li2024.train(cfg, 4, progress=False)
    inst = li2024.make_data(cfg, 4)
    for name in ("mu", "nu", "mu_ood", "nu_ood", "q", "tasks_train", "tasks_unseen", "tasks_ood"):
        np.testing.assert_array_equal(getattr(inst, name), getattr(traj.data, name), err_msg=name)
    assert not np.array_equal(inst.mu, li2024.make_data(cfg, 5).mu)


@pytest.mark.parametrize("dtype", [np.int64, np.float16, "complex128", bool])
def test_init_params_refuses_non_float_dtypes(dtype):
    with pytest.raises(TypeError, match="dtype"):
        li2024.init_params(li2024.preset("tiny"), 0, dtype=dtype)


def test_backward_reads_train_a_from_the_cache():
    params, batch = _f32_case()
    for train_a in (False, True):
        F, cache = li2024.forward(params, batch, opt_cfg(train_a=train_a))
        grads = li2024.backward(np.ones_like(F), cache)
        assert ("a" in grads) == train_a
        if train_a:
            np.testing.assert_allclose(grads["a"], cache["r"].sum(axis=0), rtol=1e-12)  # ∂ΣF/∂a = Σ_b r


def test_preset_dotted_overrides_and_sections():
    cfg = li2024.preset("tiny", **{"data.alpha": 0.4, "model.m": 8}, train={"steps": 7})
    assert (cfg.data.alpha, cfg.model.m, cfg.train.steps) == (0.4, 8, 7)
    assert li2024.preset("tiny") == li2024.PRESETS["tiny"]  # the preset itself is unchanged
    with pytest.raises(ValueError, match="alpha must be in"):
        li2024.preset("tiny", **{"data.alpha": 1.5})


# --------------------------------------------------------------------------------------------
# non-finite numbers: the Numba path propagates them as NumPy does, and nothing counts NaN
# --------------------------------------------------------------------------------------------
def _overflowing_case(kind):
    """Finite inputs whose forward pass overflows: ``"scores"`` (W_Q, W_K ~ 1e160: s = ±inf, σ NaN)
    or ``"relu"`` (W_O ~ 1e300, W_V ~ 1e20: h overflows to ±inf, F = inf − inf = NaN, σ finite)."""
    cfg = li2024.preset("tiny")
    params = li2024.init_params(cfg, 0)
    rng = np.random.default_rng(1)
    if kind == "scores":
        params["W_Q"] = 1e160 * (params["W_Q"] + rng.standard_normal(params["W_Q"].shape))
        params["W_K"] = 1e160 * (params["W_K"] + rng.standard_normal(params["W_K"].shape))
    else:
        params["W_O"] = 1e300 * rng.standard_normal(params["W_O"].shape)
        params["W_V"] = 1e20 * params["W_V"]
    batch = li2024.sample_batch(li2024.make_data(cfg, 0), 8, np.random.default_rng(2))
    return params, batch


@pytest.mark.parametrize("kind", ["scores", "relu"])
@pytest.mark.parametrize("train_a", [False, True])
def test_numba_propagates_non_finite_numbers_like_numpy(kind, train_a):
    params, batch = _overflowing_case(kind)
    cfg = opt_cfg(train_a=train_a)
    out = {}
    with np.errstate(all="ignore"):
        for backend in ("numpy", "numba"):
            out[backend] = li2024.loss_and_grads(params, batch, cfg, backend, check=False, return_aux=True)
    (ln, gn, an), (lj, gj, aj) = out["numpy"], out["numba"]
    assert np.isnan(ln) and np.isnan(lj)  # the loss is NaN on both paths, never a finite number
    np.testing.assert_array_equal(np.isfinite(aj["out"]), np.isfinite(an["out"]))
    np.testing.assert_array_equal(np.isnan(aj["attn"]), np.isnan(an["attn"]))
    for k in gn:
        np.testing.assert_array_equal(np.isfinite(gj[k]), np.isfinite(gn[k]), err_msg=f"{kind}: grad {k}")
    for backend in ("numpy", "numba"):
        with np.errstate(all="ignore"), pytest.raises(NonFiniteError, match="loss"):
            li2024.loss_and_grads(params, batch, cfg, backend)


def test_evaluate_and_measure_never_count_a_nan_output():
    params, batch = _overflowing_case("scores")
    cfg = li2024.preset("tiny")
    with np.errstate(all="ignore"):
        with pytest.raises(NonFiniteError, match="F"):
            li2024.evaluate(params, batch, cfg)
        with pytest.raises(NonFiniteError, match="F"):
            li2024.metrics.measure(params, cfg, li2024.make_data(cfg, 0), 10, np.random.default_rng(0))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_divergent_training_raises_at_the_step_on_both_backends(backend):
    """lr = 50 diverges; the run stops in the step whose loss or gradient is first non-finite,
    before that step's update, naming the tensor and the step (the Numba path once finished such a
    run with NaN parameters and a loss shown as 1.0)."""
    cfg = li2024.preset("tiny", **{"train.lr": 50.0})
    with np.errstate(all="ignore"), pytest.raises(NonFiniteError, match=r"at step \d+.*lower lr") as exc:
        li2024.train(cfg, 0, backend=backend, progress=False)
    assert exc.value.step is not None and exc.value.step > 0
    assert exc.value.tensor in ("loss", "F") or exc.value.tensor.startswith("grads[")


# --------------------------------------------------------------------------------------------
# training (spec L11)
# --------------------------------------------------------------------------------------------
def test_training_moves_the_trained_parameters_only():
    cfg = li2024.preset("tiny", train={"steps": 60})
    res = li2024.train(cfg, seed=2, progress=False)
    assert isinstance(res, Trajectory) and res.model == "li2024" and res.seed == 2 and res.stopped_at is None
    r0 = li2024.train(cfg.replace(train=dict(steps=0)), seed=2, progress=False)  # its initial Ψ
    for k in ("W_Q", "W_K", "W_V", "W_O"):
        assert np.max(np.abs(res.params[k] - r0.params[k])) > 1e-6, k
    np.testing.assert_array_equal(res.params["a"], r0.params["a"])  # a is fixed (train_a=False)
    ra = li2024.train(cfg.replace(model=dict(train_a=True)), seed=2, progress=False)
    assert np.max(np.abs(ra.params["a"] - r0.params["a"])) > 1e-6
    # history per step, records every eval_every steps and at the end
    assert res.history["loss"].shape == (60,) and res.steps_done == 60
    np.testing.assert_array_equal(res.records["step"], [0, 25, 50, 60])
    assert set(res.records) == {"step"} | {f"{s}/{m}" for s in ("train", "unseen", "ood")
                                           for m in ("error", "hinge", "attn_same")}


def test_numpy_and_numba_training_give_the_same_trajectory():
    cfg = li2024.preset("tiny").replace(train=dict(steps=30))
    rn = li2024.train(cfg, seed=1, backend="numpy", progress=False)
    rj = li2024.train(cfg, seed=1, backend="numba", progress=False)
    assert_rel_close(rj.history["loss"], rn.history["loss"], "loss trajectory", tol=1e-10)
    for k in li2024.PARAM_NAMES:
        assert_rel_close(rj.params[k], rn.params[k], f"trained {k}", tol=1e-10)


def test_tiny_preset_training_lowers_the_hinge_loss():
    """The "tiny" preset (for smoke runs) must learn within its own step budget.

    At initialisation |F| ~ 1e-3 (ξ = 0.01), so the batch hinge loss is 1 ± 0.003. A 10 % drop of
    the last-10-step mean below the first-10-step mean is far outside that noise; a working run of
    the spec's SGD goes to ≈0.1 or lower (see the next test).
    """
    cfg = li2024.preset("tiny")
    res = li2024.train(cfg, seed=0, progress=False)
    loss = res.history["loss"]
    assert len(loss) == cfg.train.steps
    first, last = float(np.mean(loss[:10])), float(np.mean(loss[-10:]))
    assert abs(first - 1.0) < 0.02  # sanity: the run starts at the untrained loss
    assert last < 0.9 * first, (
        f"tiny preset ({cfg.train.steps} steps, lr {cfg.train.lr}, B {cfg.train.batch_size}): "
        f"mean loss first 10 steps {first:.4f}, last 10 steps {last:.4f}"
    )


def test_a_few_hundred_steps_generalise_to_unseen_tasks():
    """Spec L11/L13 at tiny size: 400 SGD steps learn the ICL rule and it transfers to T \\ T_tr."""
    cfg = li2024.preset("tiny").replace(train=dict(steps=400, eval_every=100))
    res = li2024.train(cfg, seed=0, progress=False)
    loss = res.history["loss"]
    first, last = float(np.mean(loss[:10])), float(np.mean(loss[-10:]))
    assert abs(first - 1.0) < 0.02
    assert last < 0.25, (first, last)
    # fresh prompts of the unseen tasks (never used in training); chance is 0.5
    batch = li2024.sample_batch(res.data, 2000, np.random.default_rng(123), tasks="unseen")
    ev = li2024.evaluate(res.params, batch, cfg)
    assert ev["error"] < 0.1, ev
    assert ev["hinge"] < 0.5, ev
    # the untrained model is at chance on the same prompts (so the bar above means something)
    ev0 = li2024.evaluate(li2024.init_params(cfg, 0), batch, cfg)
    assert ev0["error"] > 0.3 and ev0["hinge"] > 0.95, ev0


def test_training_runs_or_is_rejected_when_no_task_is_left_unseen():
    """M1 = 4 with the default shifts S = {1, 2, 3} makes T_tr = T, so T \\ T_tr is empty.

    DataConfig accepts this (it is a legitimate "train on every task" setting), so train() must
    run it (skipping or marking the empty unseen-task evaluation); the alternative is a ValueError
    at construction that names train_shifts. A crash inside sample_batch is neither.
    """
    try:
        cfg = li2024.preset("tiny").replace(data=dict(M1=4, M2=8, M1_ood=2, alpha_test=1.0),
                                           train=dict(steps=5, eval_every=5))
    except ValueError as exc:
        assert "train_shifts" in str(exc)
        return
    inst = li2024.make_data(cfg, 0)
    assert len(inst.tasks_unseen) == 0 and len(inst.tasks_train) == len(inst.tasks_all) == 12
    res = li2024.train(cfg, seed=0, progress=False)
    assert np.all(np.isfinite(res.history["loss"])) and len(res.history["loss"]) == 5
    assert np.all(np.isfinite(res.records["train/error"]))


def test_numpy_and_numba_agree_at_the_default_preset():
    """The blocked per-prompt loops at the benchmark size (B = 64, l = 20, d = 40, m = 100)."""
    cfg = li2024.preset("default")
    inst = li2024.make_data(cfg, 0)
    params = li2024.init_params(cfg, 1)
    batch = li2024.sample_batch(inst, cfg.train.batch_size, np.random.default_rng(2))
    l1, g1, a1 = li2024.loss_and_grads(params, batch, cfg, "numpy", return_aux=True)
    l2, g2, a2 = li2024.loss_and_grads(params, batch, cfg, "numba", return_aux=True)
    assert l2 == pytest.approx(l1, rel=1e-12)
    np.testing.assert_allclose(a2["attn"], a1["attn"], rtol=1e-12, atol=1e-15)
    for k, g in g1.items():
        assert np.max(np.abs(g2[k] - g)) <= 1e-12 * max(np.max(np.abs(g)), 1e-300), k


@pytest.mark.parametrize("backend", ["numba", "numba_parallel"])
def test_unchecked_path_refuses_wrong_shapes_instead_of_reading_out_of_bounds(backend):
    """check=False skips validation, not the kernels' O(1) shape checks: a too-short z (the kernel
    would index z[b] for every prompt), prompts of the wrong width or a mis-shaped weight raise
    ValueError naming the array."""
    cfg = li2024.preset("tiny")
    params = li2024.init_params(cfg, 0)
    batch = li2024.sample_batch(li2024.make_data(cfg, 0), 8, np.random.default_rng(1))
    li2024.loss_and_grads(params, batch, cfg, backend, check=False)  # the well-shaped call runs
    bad = [
        ("batch\\['z'\\]", params, {**batch, "z": batch["z"][:3]}),
        ("batch\\['P'\\]", params, {**batch, "P": batch["P"][:, :-1]}),
        ("params\\['W_K'\\]", {**params, "W_K": params["W_K"][:-1]}, batch),
        ("params\\['W_O'\\]", {**params, "W_O": params["W_O"][:, :-1]}, batch),
        ("params\\['a'\\]", {**params, "a": params["a"][:-1]}, batch),
    ]
    for name, p, b in bad:
        with pytest.raises(ValueError, match=name):
            li2024.loss_and_grads(p, b, cfg, backend, check=False)
