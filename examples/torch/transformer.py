"""The spec T transformer in PyTorch, as a PyTorch user writes it: ``nn.Linear``, ``nn.LayerNorm``
(ε = 1e−5), ``nn.MultiheadAttention`` (batch_first, boolean causal mask), ``F.gelu(approximate=
"tanh")`` or ReLU, learned positions, post-norm (Vaswani) or pre-norm with a final norm (GPT-2),
read-out at every position or the last, squared or hinge loss; autograd + ``torch.optim.Adam``.

    model = Model(params, n_layers=3, n_heads=2, norm="pre", activation="gelu", causal=True,
                  positions="learned", readout="last", loss="hinge")
    loss, outputs = model.compute_loss({"X": X, "target": target})

``params`` is refimpl's flat dict (``layer0.attn.W_Q``, ...; weights (n_out, n_in) as
``nn.Linear``); ``load``/``read`` map it onto the modules (``in_proj_weight`` = [W_Q; W_K; W_V]).
Training runs attention through ``scaled_dot_product_attention`` (``need_weights=False``);
``outputs`` asks for the attention probabilities, which takes the explicit path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

nn = torch.nn
F = torch.nn.functional


@dataclass(frozen=True)
class Config:
    n_layers: int
    d_model: int
    n_heads: int
    d_ff: int
    d_in: int
    norm: str = "pre"  # "pre" (GPT-2) or "post" (Vaswani)
    activation: str = "gelu"  # "gelu" (tanh approximation) or "relu"
    causal: bool = False
    positions: str = "none"  # "none" or "learned"
    max_T: int = 64
    readout: str = "all"  # "all" (out (B, T)) or "last" (out (B,))
    loss: str = "squared"  # "squared" or "hinge"


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

    def sa(self, x, need_weights):
        T = x.shape[1]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1) if self.causal else None
        return self.attn(x, x, x, attn_mask=mask, need_weights=need_weights, average_attn_weights=False)

    def forward(self, x, need_weights=True):
        if self.norm == "post":
            a, w = self.sa(x, need_weights)
            x = self.ln1(x + a)
            x = self.ln2(x + self.ff(x))
        else:
            a, w = self.sa(self.ln1(x), need_weights)
            x = x + a
            x = x + self.ff(self.ln2(x))
        return x, w


class TorchTransformer(nn.Module):
    """The model of ``cfg`` (a :class:`Config`, or any object with its fields)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.read_in = nn.Linear(cfg.d_in, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(cfg.max_T, cfg.d_model)) if cfg.positions == "learned" else None
        self.layers = nn.ModuleList([TorchLayer(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=1e-5) if cfg.norm == "pre" else None
        self.read_out = nn.Linear(cfg.d_model, 1)

    def forward(self, X, need_weights=True):
        """out ((B, T) or (B,)) and the attention of every layer ((B, H, T, T) each, or None)."""
        h = self.read_in(X)
        if self.pos is not None:
            h = h + self.pos[: X.shape[1]]
        attn = []
        for layer in self.layers:
            h, w = layer(h, need_weights)
            attn.append(w)
        if self.ln_f is not None:
            h = self.ln_f(h)
        out = self.read_out(h).squeeze(-1) if self.cfg.readout == "all" else self.read_out(h[:, -1]).squeeze(-1)
        return out, attn

    def loss(self, out, target):
        if self.cfg.loss == "squared":
            return 0.5 * ((out - target) ** 2).mean()
        return torch.relu(1.0 - target * out).mean()  # derivative 0 at the kink, as refimpl

    def compute_loss(self, batch):
        out, _ = self(batch["X"], need_weights=False)
        return self.loss(out, batch["target"]), {"out": out}

    def outputs(self, batch):
        out, attn = self(batch["X"], need_weights=True)
        return {"out": out, "attn": torch.stack(attn)}  # attn (n_layers, B, H, T, T)

    # refimpl parameter name → (tensor, rows); in_proj holds [W_Q; W_K; W_V]
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
        """Copy refimpl's parameter dict into the modules (names and shapes must match)."""
        slots = self.slots()
        if set(slots) != set(params):
            raise ValueError(f"parameter names differ from the model's: {sorted(set(slots) ^ set(params))}")
        with torch.no_grad():
            for k, (t, rows) in slots.items():
                (t if rows is None else t[rows]).copy_(torch.from_numpy(params[k]))

    def read(self, grad: bool):
        """The parameters (or their gradients) as NumPy arrays keyed like refimpl's."""
        out = {}
        for k, (t, rows) in self.slots().items():
            src = t.grad if grad else t
            out[k] = (src if rows is None else src[rows]).detach().numpy().copy()
        return out

    def paper_arrays(self, grads: bool = False) -> dict:
        return self.read(grads)


def Model(params, *, n_layers, n_heads, norm="pre", activation="gelu", causal=False, positions="none",
          readout="all", loss="squared"):
    """A :class:`TorchTransformer` holding ``params``; the sizes are read off the arrays."""
    W1 = params["layer0.ff.W1"]  # (d_ff, d_model)
    cfg = Config(n_layers=n_layers, d_model=W1.shape[1], n_heads=n_heads, d_ff=W1.shape[0],
                 d_in=params["read_in.W"].shape[1], norm=norm, activation=activation, causal=causal,
                 positions=positions, max_T=params["pos"].shape[0] if "pos" in params else 1,
                 readout=readout, loss=loss)
    model = TorchTransformer(cfg).to(torch.from_numpy(W1[:0, :0].copy()).dtype)
    model.load(params)
    return model
