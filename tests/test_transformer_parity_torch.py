"""Parity of the spec T NumPy transformer with an independent PyTorch model (torch.nn + autograd).

The torch model (examples/torch/transformer.py) is written the way a PyTorch user would write it: ``nn.Linear``,
``nn.LayerNorm``
(ε = 1e−5), ``nn.MultiheadAttention`` (batch_first, boolean causal mask, per-head weights returned),
``F.gelu(approximate="tanh")``, ``torch.optim.Adam``. It loads the NumPy parameters
(``in_proj_weight`` = [W_Q; W_K; W_V]) and everything is compared in float64:
output, attention probabilities, loss, every gradient, and 10 Adam steps (loss per step and final
parameters). Tolerance: |a − b| ≤ 1e−10 · max|b| per tensor, plus 1e−14 · (largest entry of the
section) for tensors that are mathematically zero (∇b_K: softmax ignores the key bias), whose
entries are pure rounding noise in both implementations; after the Adam steps b_K is checked
against the bound of that noise instead (see the test).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch parity test: torch is an optional dependency")
nn = torch.nn
F = torch.nn.functional

from refimpl.examples.torch.transformer import TorchTransformer  # noqa: E402  (after importorskip)
from refimpl.transformer import Adam, forward, init_params, loss_and_grads, preset  # noqa: E402

REL = 1e-10


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: torch's intra-op thread pool only contends on the shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def assert_close_dicts(ours, ref, what):
    floor = 1e-14 * max(float(np.max(np.abs(v))) for v in ref.values())
    for k in ref:
        tol = REL * float(np.max(np.abs(ref[k]))) + floor
        err = float(np.max(np.abs(ours[k] - ref[k])))
        assert err <= tol, f"{what} {k}: max |ours − torch| = {err:.3e} > {tol:.3e}"


CONFIGS = {
    "vaswani4": preset("vaswani4", d_model=16, n_heads=4, d_ff=24, d_in=5),
    "gpt2_3l2h": preset("gpt2_3l2h", d_model=16, d_ff=32, d_in=5, max_T=8),
    "post_gelu_causal_last_hinge": preset("vaswani4", d_model=12, n_heads=3, d_ff=10, d_in=4, n_layers=2,
                                          activation="gelu", causal=True, readout="last", loss="hinge"),
    "pre_relu_positions_all_squared": preset("gpt2_3l2h", d_model=12, d_ff=10, d_in=4, max_T=9, activation="relu",
                                             causal=False, readout="all", loss="squared", init="xavier"),
}


def setup(name, seed=0, B=3, T=7):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in init_params(cfg, seed).items()}
    X = rng.standard_normal((B, T, cfg.d_in))
    shape = (B, T) if cfg.readout == "all" else (B,)
    target = np.where(rng.random(shape) < 0.5, -1.0, 1.0) if cfg.loss == "hinge" else rng.standard_normal(shape)
    model = TorchTransformer(cfg).double()
    model.load(params)
    return cfg, params, {"X": X, "target": target}, model


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_forward_loss_and_gradients_match_torch_autograd(name):
    cfg, params, batch, model = setup(name)
    Xt, tt = torch.from_numpy(batch["X"]), torch.from_numpy(batch["target"])
    out_t, attn_t = model(Xt)
    loss_t = model.loss(out_t, tt)
    loss_t.backward()
    out, cache = forward(params, batch, cfg)
    loss, grads = loss_and_grads(params, batch, cfg)
    ref_out = out_t.detach().numpy()
    assert out.shape == ref_out.shape
    assert np.max(np.abs(out - ref_out)) <= REL * np.max(np.abs(ref_out))
    for l, (A, At) in enumerate(zip(cache["attn"], attn_t)):
        assert A.shape == tuple(At.shape)
        assert np.max(np.abs(A - At.detach().numpy())) <= REL, f"attention layer {l}"
    assert abs(loss - loss_t.item()) <= REL * abs(loss_t.item())
    assert_close_dicts(grads, model.read(grad=True), "gradient")


@pytest.mark.parametrize("name", ["vaswani4", "gpt2_3l2h"])
def test_ten_adam_steps_match_torch_optim_adam(name):
    cfg, params, batch, model = setup(name, seed=1)
    lr, betas, eps, wd = 3e-3, (0.9, 0.999), 1e-8, 0.0
    opt_t = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps, weight_decay=wd)
    opt = Adam(lr, betas=betas, eps=eps, weight_decay=wd)
    start = {k: v.copy() for k, v in params.items()}
    Xt, tt = torch.from_numpy(batch["X"]), torch.from_numpy(batch["target"])
    losses, losses_t = [], []
    for _ in range(10):
        opt_t.zero_grad()
        loss_t = model.loss(model(Xt)[0], tt)
        loss_t.backward()
        opt_t.step()
        losses_t.append(loss_t.item())
        loss, grads = loss_and_grads(params, batch, cfg)
        opt.step(params, grads)
        losses.append(loss)
    np.testing.assert_allclose(losses, losses_t, rtol=REL, atol=0)
    assert losses[-1] < losses[0]
    after_t = model.read(grad=False)
    # ∇b_K is rounding noise (|g| ≲ 1e-16 · scale) in both implementations, so Adam moves b_K by
    # ≈ lr·g/ε per step, differently in each: compare b_K against that bound, everything else at REL.
    key_biases = [k for k in params if k.endswith("attn.b_K")]
    for k in key_biases:
        bound = 10 * lr * 1e-14 / eps  # 10 steps, |g| ≤ 1e-14
        assert np.max(np.abs(params[k] - start[k])) <= bound and np.max(np.abs(after_t[k] - start[k])) <= bound, k
    assert_close_dicts({k: v for k, v in params.items() if k not in key_biases},
                       {k: v for k, v in after_t.items() if k not in key_biases}, "parameter after 10 Adam steps")
    moved = min(float(np.max(np.abs(params[k] - start[k]))) for k in params if k not in key_biases)
    assert moved > 1e-4  # every other tensor moved by ≈ lr or more: the comparison is not vacuous
