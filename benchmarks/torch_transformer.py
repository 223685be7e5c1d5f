"""PyTorch model of spec T, written as a PyTorch user would write it: ``nn.Linear``,
``nn.LayerNorm`` (ε = 1e−5), ``nn.MultiheadAttention`` (batch_first, boolean causal mask, per-head
weights returned), ``F.gelu(approximate="tanh")``; loads refimpl's parameter dict
(``in_proj_weight`` = [W_Q; W_K; W_V]). Used by tests/test_transformer_parity_torch.py and as the
torch competitor of ``refimpl bench --model transformer``.

Imports torch at module level: import this module only where torch is installed.
"""

from __future__ import annotations

import torch

nn = torch.nn
F = torch.nn.functional


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


class Runner:
    """Benchmark runner (loss_and_grads / step / params) for a transformer Problem; variant
    "eager" or "compile" (torch.compile of the model; the optimiser step stays eager)."""

    def __init__(self, problem, variant: str = "eager"):
        if variant not in ("eager", "compile"):
            raise ValueError(f"variant must be 'eager' or 'compile', got {variant!r}")
        cfg = problem.options["cfg"]
        dt = torch.float64 if problem.dtype == "float64" else torch.float32
        self.model = TorchTransformer(cfg).to(dt)
        self.model.load(problem.params)
        self.X = torch.from_numpy(problem.batch["X"])
        self.t = torch.from_numpy(problem.batch["target"])
        fwd = torch.compile(self.model) if variant == "compile" else self.model
        self._loss = lambda: self.model.loss(fwd(self.X)[0], self.t)
        o = problem.optimizer
        self.opt = torch.optim.Adam(self.model.parameters(), lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"])

    def loss_and_grads(self):
        self.opt.zero_grad()
        loss = self._loss()
        loss.backward()
        return float(loss.item()), self.model.read(grad=True)

    def step(self) -> None:
        self.opt.zero_grad()
        self._loss().backward()
        self.opt.step()

    def params(self) -> dict:
        return self.model.read(grad=False)
