"""Parity of the spec T NumPy transformer with an independent PyTorch model (torch.nn + autograd).

The torch model is written the way a PyTorch user would write it: ``nn.Linear``, ``nn.LayerNorm``
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

from refimpl.transformer import Adam, forward, init_params, loss_and_grads, preset

REL = 1e-10


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: torch's intra-op thread pool only contends on the shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TorchLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D = cfg.d_model
        self.norm, self.act, self.causal = cfg.norm, cfg.activation, cfg.causal
        self.attn = nn.MultiheadAttention(D, cfg.n_heads, bias=True, batch_first=True)
        self.ln1 = nn.LayerNorm(D, eps=1e-5)
        self.fc1 = nn.Linear(D, cfg.d_ff)
        self.fc2 = nn.Linear(cfg.d_ff, D)
        self.ln2 = nn.LayerNorm(D, eps=1e-5)

    def ff(self, x):
        h = self.fc1(x)
        h = torch.relu(h) if self.act == "relu" else F.gelu(h, approximate="tanh")
        return self.fc2(h)

    def sa(self, x):
        T = x.shape[1]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1) if self.causal else None
        y, w = self.attn(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
        return y, w

    def forward(self, x):
        if self.norm == "post":
            a, w = self.sa(x)
            x = self.ln1(x + a)
            x = self.ln2(x + self.ff(x))
        else:
            a, w = self.sa(self.ln1(x))
            x = x + a
            x = x + self.ff(self.ln2(x))
        return x, w


class TorchTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.read_in = nn.Linear(cfg.d_in, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(cfg.max_T, cfg.d_model)) if cfg.positions == "learned" else None
        self.layers = nn.ModuleList([TorchLayer(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=1e-5) if cfg.norm == "pre" else None
        self.read_out = nn.Linear(cfg.d_model, 1)

    def forward(self, X):
        h = self.read_in(X)
        if self.pos is not None:
            h = h + self.pos[: X.shape[1]]
        attn = []
        for layer in self.layers:
            h, w = layer(h)
            attn.append(w)
        if self.ln_f is not None:
            h = self.ln_f(h)
        out = self.read_out(h).squeeze(-1) if self.cfg.readout == "all" else self.read_out(h[:, -1]).squeeze(-1)
        return out, attn

    def loss(self, out, target):
        if self.cfg.loss == "squared":
            return 0.5 * ((out - target) ** 2).mean()
        return torch.clamp(1.0 - target * out, min=0.0).mean()

    # name map: refimpl parameter name → (torch tensor, rows) ; in_proj holds [W_Q; W_K; W_V]
    def slots(self):
        D = self.cfg.d_model
        s = {"read_in.W": (self.read_in.weight, None), "read_in.b": (self.read_in.bias, None),
             "read_out.W": (self.read_out.weight, None), "read_out.b": (self.read_out.bias, None)}
        if self.pos is not None:
            s["pos"] = (self.pos, None)
        if self.ln_f is not None:
            s["ln_f.g"], s["ln_f.b"] = (self.ln_f.weight, None), (self.ln_f.bias, None)
        for l, L in enumerate(self.layers):
            p = f"layer{l}."
            for i, n in enumerate("QKV"):
                rows = slice(i * D, (i + 1) * D)
                s[p + f"attn.W_{n}"] = (L.attn.in_proj_weight, rows)
                s[p + f"attn.b_{n}"] = (L.attn.in_proj_bias, rows)
            s[p + "attn.W_O"], s[p + "attn.b_O"] = (L.attn.out_proj.weight, None), (L.attn.out_proj.bias, None)
            s[p + "ff.W1"], s[p + "ff.b1"] = (L.fc1.weight, None), (L.fc1.bias, None)
            s[p + "ff.W2"], s[p + "ff.b2"] = (L.fc2.weight, None), (L.fc2.bias, None)
            for ln in ("ln1", "ln2"):
                m = getattr(L, ln)
                s[p + f"{ln}.g"], s[p + f"{ln}.b"] = (m.weight, None), (m.bias, None)
        return s

    def load(self, params):
        slots = self.slots()
        assert set(slots) == set(params), sorted(set(slots) ^ set(params))
        with torch.no_grad():
            for k, (t, rows) in slots.items():
                (t if rows is None else t[rows]).copy_(torch.from_numpy(params[k]))

    def read(self, grad: bool):
        out = {}
        for k, (t, rows) in self.slots().items():
            src = t.grad if grad else t
            out[k] = (src if rows is None else src[rows]).detach().numpy().copy()
        return out


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
    out, cache = forward(params, batch["X"], cfg)
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
