"""refimpl.testing: golden() and assert_matches() accept correct implementations in float64 and
float32 with the default tolerances, and reject wrong ones naming a key.

Measurements behind the default tolerances (refimpl/core/golden.py): largest error of a correct
candidate, relative to the key's max |ref|, and the largest share of the tolerance it uses
(err/tol), over seeds 0–19 of li2024 and the transformer:

=========================================  ========  ========  ==============  ==============
candidate                                  float64   float32   err/tol (f64)   err/tol (f32)
=========================================  ========  ========  ==============  ==============
li2024 torch (this file), outputs, grads    9.7e-16   5.8e-7    2.1e-4          0.041
li2024 torch float32 vs the float64 golden  —         5.1e-7    —               0.029
li2024 refimpl Numba vs NumPy float32       —         3.2e-7    —               0.024
li2024 refimpl NumPy float32 vs float64     —         4.7e-7    —               0.031
transformer torch, outputs, grads           9.0e-15   1.9e-6    4.0e-4          0.10
trajectories (10 GD / 10 Adam steps)        4.5e-16   3.8e-7    1.7e-8          5.2e-3
transformer ∇b_K (zero up to rounding)      4.1       2.0e9     1.2e-3          0.023
=========================================  ========  ========  ==============  ==============

∇b_K errs by 1.2e-16 (float64) and 2.3e-8 (float32) of its section's largest entry: hence the
section share of the scale. Single entries small through cancellation err by up to 0.14 of
themselves in float32 (li2024 ∇W_K against the float64 golden): hence the absolute floor. With the
first float32 trajectory rtol (1e-3) a learning rate 1% off passed (err/tol 0.57); with 1e-4 it
fails.

Mutation check of the checker (``MUTANTS``): PyTorch candidates written as their users would write
them (li2024: the README's model; transformer: nn.Linear, nn.LayerNorm(eps=1e-5), attention with
the 1/√d_head scale, F.gelu(approximate="tanh"), torch.optim.Adam), unmutated on every
configuration of the golden suite (they pass all of them, float64 and float32: an independent
check of the suite), and mutated: W_Q and W_K swapped, W_V transposed, softmax over the wrong
axis, a learning rate 1% low (li2024); no 1/√d_h scale, exact GELU, W_Q/W_K swapped, W_V
transposed, softmax over the queries, Adam without bias correction, layer-norm ε 1e-6 and the hinge
subgradient 1 at the kink (transformer). Each fails in both precisions, naming its first wrong key.
Two need a particular configuration: layer-norm ε shows where tokens have small variance
(``small_inputs``; on the default it fails float32 by a factor 2.6 only), and the hinge
subgradient at the kink only where a margin is exactly 1 (``hinge_kink``, built so; every other
file keeps margins and ReLU inputs away from their kinks, where implementations may differ).
li2024's Relu'(0) convention likewise shows only on ``relu_kink_0``/``relu_kink_1``. A hinge kink
in li2024 cannot be built the same way: F = aᵀRelu(W_O W_V C σ) is exactly 1 only if the softmax
σ is exact, i.e. with degenerate (equal) scores and dyadic parameters throughout.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest

from refimpl import models
from refimpl.core.golden import FORMAT_VERSION, TOLERANCES, compare
from refimpl.testing import assert_matches, golden, golden_arrays_function, golden_configs, golden_fixture

torch = pytest.importorskip("torch", reason="the torch candidates need torch (pip install -e '.[parity]')")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: torch's intra-op thread pool only contends on the shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------------------------
# candidates as their users would write them (README "Checking your implementation")
# --------------------------------------------------------------------------------------------
LI_NAMES = ["W_Q", "W_K", "W_V", "W_O"]


def _li2024_model(p, P, z, mutant=None, opts=None, keep=None):  # spec L7, L9, L10
    opts = opts or {}
    l = P.shape[-1] - 1
    C, pq = P[:, :, :l], P[:, :, l]  # context columns, query column
    keys = P if opts.get("attend_to_query") else C  # the columns the softmax runs over
    W_Q, W_K, W_V = p["W_Q"], p["W_K"], p["W_V"]
    if mutant == "swap_W_Q_W_K":
        W_Q, W_K = W_K, W_Q
    if mutant == "transpose_W_V":  # the golden W_V is square and not symmetric
        W_V = W_V.T
    s = torch.einsum("bdi,kd,bk->bi", keys, W_K, pq @ W_Q.T)
    attn = torch.softmax(s, dim=0 if mutant == "softmax_batch_axis" else -1)
    h = torch.einsum("vd,bdi,bi->bv", W_V, C, attn[:, :l]) @ p["W_O"].T
    r = torch.where(h >= 0, h, torch.zeros_like(h)) if opts.get("relu_at_zero") == 1 else torch.relu(h)
    a = p["a"] if keep is None else p["a"] * keep  # spec L9: pruned rows removed
    F = r @ a
    return F, attn, torch.clamp(1 - z * F, min=0).mean()


def li2024_torch(g, mutant=None):
    """A PyTorch li2024 candidate in the golden's dtype: outputs, gradients, 10 GD steps (torch
    tensors, gradients still attached to the outputs: assert_matches detaches them). It reads the
    options of the golden's configuration (meta/config, input/keep), so it runs every li2024
    configuration of the suite."""
    opts = json.loads(str(g["meta/config"]))["model"]
    names = LI_NAMES + (["a"] if opts["train_a"] else [])
    P, z = torch.from_numpy(g["input/P"]), torch.from_numpy(g["input/z"])
    keep = torch.from_numpy(g["input/keep"]) if "input/keep" in g else None
    p = {k: torch.tensor(g[f"param/{k}"], requires_grad=k in names) for k in LI_NAMES + ["a"]}
    F, attn, loss = _li2024_model(p, P, z, mutant, opts, keep)
    loss.backward()
    out = {"output/F": F, "output/attn": attn, "output/loss": loss}
    out.update({f"grad/{k}": p[k].grad.clone() for k in names})
    lr, traj = float(g["trajectory/lr"]), []
    lr_used = 0.99 * lr if mutant == "lr_1pct_low" else lr
    for _ in range(10):
        for k in names:
            p[k].grad = None
        loss = _li2024_model(p, P, z, mutant, opts, keep)[2]
        traj.append(loss.item())  # Python floats: the candidate is still float32 when P is
        loss.backward()
        with torch.no_grad():
            for k in names:
                p[k] -= lr_used * p[k].grad
    out["trajectory/loss"] = traj
    out["trajectory/lr"] = lr  # the learning rate it was given
    return out


# The spec T transformer as a PyTorch user writes it: nn.Linear, nn.LayerNorm(eps=1e-5), attention
# with the 1/√d_head scale and a causal mask, F.gelu(approximate="tanh"), torch.optim.Adam. It reads
# the golden's configuration from meta/config, so it runs every configuration of the suite.
nn, F_ = torch.nn, torch.nn.functional


class TorchBlock(nn.Module):
    def __init__(self, c, mutant):
        super().__init__()
        D, self.H, self.c, self.mutant = c["d_model"], c["n_heads"], c, mutant
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(D, c["d_ff"]), nn.Linear(c["d_ff"], D)
        eps = 1e-6 if mutant == "layernorm_eps_1e-6" else 1e-5
        self.ln1, self.ln2 = nn.LayerNorm(D, eps=eps), nn.LayerNorm(D, eps=eps)

    def attn(self, x):
        B, T, D = x.shape
        H, dh = self.H, D // self.H
        q, k, v = (f(x).view(B, T, H, dh).transpose(1, 2) for f in (self.q, self.k, self.v))  # (B, H, T, dh)
        s = q @ k.transpose(-2, -1)  # (B, H, T, T) query, key
        if self.mutant != "no_attention_scale":
            s = s / math.sqrt(dh)
        if self.c["causal"]:
            s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1), float("-inf"))
        A = torch.softmax(s, dim=-2 if self.mutant == "softmax_wrong_axis" else -1)
        return self.o((A @ v).transpose(1, 2).reshape(B, T, D)), A

    def ff(self, x):
        h = self.fc1(x)
        if self.c["activation"] == "relu":
            h = torch.relu(h)
        else:
            h = F_.gelu(h, approximate="none" if self.mutant == "exact_gelu" else "tanh")
        return self.fc2(h)

    def forward(self, x):
        if self.c["norm"] == "post":
            a, A = self.attn(x)
            x = self.ln1(x + a)
            return self.ln2(x + self.ff(x)), A
        a, A = self.attn(self.ln1(x))
        x = x + a
        return x + self.ff(self.ln2(x)), A


class TorchTransformer(nn.Module):
    def __init__(self, c, mutant=None):
        super().__init__()
        self.c, self.mutant = c, mutant
        self.read_in, self.read_out = nn.Linear(c["d_in"], c["d_model"]), nn.Linear(c["d_model"], 1)
        self.pos = nn.Parameter(torch.zeros(c["max_T"], c["d_model"])) if c["positions"] == "learned" else None
        self.blocks = nn.ModuleList(TorchBlock(c, mutant) for _ in range(c["n_layers"]))
        self.ln_f = nn.LayerNorm(c["d_model"], eps=1e-6 if mutant == "layernorm_eps_1e-6" else 1e-5)

    def forward(self, X):
        h = self.read_in(X)
        if self.pos is not None:
            h = h + self.pos[: X.shape[1]]
        attn = []
        for blk in self.blocks:
            h, A = blk(h)
            attn.append(A)
        if self.c["norm"] == "pre":
            h = self.ln_f(h)
        out = self.read_out(h if self.c["readout"] == "all" else h[:, -1]).squeeze(-1)
        return out, torch.stack(attn)

    def loss(self, out, target):
        if self.c["loss"] == "squared":
            return 0.5 * ((out - target) ** 2).mean()
        if self.mutant == "hinge_subgradient_1_at_kink":  # torch.clamp passes gradient 1 at the boundary
            return torch.clamp(1 - target * out, min=0).mean()
        return torch.relu(1 - target * out).mean()  # subgradient 0 at the kink, as refimpl

    def slots(self):
        """refimpl name -> (torch parameter, whether it holds the transpose)."""
        s = {"read_in.W": self.read_in.weight, "read_in.b": self.read_in.bias,
             "read_out.W": self.read_out.weight, "read_out.b": self.read_out.bias}
        if self.pos is not None:
            s["pos"] = self.pos
        if self.c["norm"] == "pre":
            s["ln_f.g"], s["ln_f.b"] = self.ln_f.weight, self.ln_f.bias
        for i, b in enumerate(self.blocks):
            q, k = (b.k, b.q) if self.mutant == "swap_W_Q_W_K" else (b.q, b.k)
            for n, lin in (("Q", q), ("K", k), ("V", b.v), ("O", b.o)):
                s[f"layer{i}.attn.W_{n}"], s[f"layer{i}.attn.b_{n}"] = lin.weight, lin.bias
            for n, lin in (("1", b.fc1), ("2", b.fc2)):
                s[f"layer{i}.ff.W{n}"], s[f"layer{i}.ff.b{n}"] = lin.weight, lin.bias
            for n, ln in (("ln1", b.ln1), ("ln2", b.ln2)):
                s[f"layer{i}.{n}.g"], s[f"layer{i}.{n}.b"] = ln.weight, ln.bias
        return {k: (t, self.mutant == "transpose_W_V" and k.endswith("attn.W_V")) for k, t in s.items()}


def transformer_torch(g, mutant=None):
    """A PyTorch transformer candidate in the golden's dtype: outputs, attention, every gradient and
    10 steps of torch.optim.Adam (the loss before each step)."""
    c = json.loads(str(g["meta/config"]))
    dt = torch.float64 if str(g["meta/dtype"]) == "float64" else torch.float32
    model = TorchTransformer(c, mutant).to(dt)
    slots = model.slots()
    with torch.no_grad():
        for k, (t, transposed) in slots.items():
            v = torch.from_numpy(g[f"param/{k}"])
            t.copy_(v.T if transposed else v)
    X, target = torch.from_numpy(g["input/X"]), torch.from_numpy(g["input/target"])
    out, attn = model(X)
    loss = model.loss(out, target)
    loss.backward()
    cand = {"output/out": out, "output/loss": loss, "output/attn": attn}
    cand.update({f"grad/{k}": (t.grad.T if tr else t.grad).clone() for k, (t, tr) in slots.items()})
    lr, b1, b2, eps, wd = (float(g[f"trajectory/{k}"]) for k in ("lr", "beta1", "beta2", "eps", "weight_decay"))
    params = [t for t, _ in slots.values()]
    if mutant == "adam_no_bias_correction":  # the update of Kingma & Ba without the 1/(1 − βᵗ) factors
        state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]

        def step():
            with torch.no_grad():
                for p, (m, v) in zip(params, state):
                    m.mul_(b1).add_(p.grad, alpha=1 - b1)
                    v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                    p.sub_(lr * m / (v.sqrt() + eps))
    else:
        opt = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
        step = opt.step
    traj = []
    for _ in range(10):
        for p in params:
            p.grad = None
        L = model.loss(model(X)[0], target)
        traj.append(L.item())
        L.backward()
        step()
    cand["trajectory/loss"] = torch.tensor(traj, dtype=dt)
    cand.update({k: g[k] for k in g if k.startswith("trajectory/") and k != "trajectory/loss"})  # given
    return cand


def refimpl_path(model, g, backend):
    """refimpl's own loss_and_grads on the golden's params and inputs, in their dtype (li2024)."""
    pkg = models.load(model)
    params = {k[6:]: v for k, v in g.items() if k.startswith("param/")}
    batch = {"P": g["input/P"], "z": g["input/z"]}
    if "cfg" in inspect.signature(pkg.loss_and_grads).parameters:  # the model contract (refimpl.models)
        cfg = pkg.preset("golden")

        def lg(p):
            return pkg.loss_and_grads(p, batch, cfg, backend=backend, return_aux=True)
    else:  # before the contract: options as keywords, defaults = the golden preset's

        def lg(p):
            return pkg.loss_and_grads(p, batch, backend=backend, return_aux=True)

    loss, grads, aux = lg(params)
    dt = g["input/P"].dtype
    out = {"output/F": aux.get("out", aux.get("F")), "output/attn": aux["attn"], "output/loss": np.asarray(loss, dt)}
    out.update({f"grad/{k}": v for k, v in grads.items()})
    lr, traj, p = dt.type(g["trajectory/lr"]), [], dict(params)
    for _ in range(10):
        loss, gr, _ = lg(p)
        traj.append(loss)
        p = {k: (v - lr * gr[k] if k in gr else v) for k, v in p.items()}
    out["trajectory/loss"] = np.asarray(traj, dt)
    out["trajectory/lr"] = g["trajectory/lr"]
    return out


@pytest.fixture(scope="module")
def li64():
    return golden("li2024", seed=0, dtype="float64")


@pytest.fixture(scope="module")
def li32():
    return golden("li2024", seed=0, dtype="float32")


def _np(cand):
    return {k: (v.detach().numpy() if hasattr(v, "detach") else np.asarray(v)) for k, v in cand.items()}


# --------------------------------------------------------------------------------------------
# golden()
# --------------------------------------------------------------------------------------------
def test_golden_is_what_export_writes(li64, tmp_path):
    from refimpl.cli import main

    assert str(li64["meta/format"]) == "refimpl-golden" and str(li64["meta/version"]) == FORMAT_VERSION == "2"
    assert str(li64["meta/model"]) == "li2024" and int(li64["meta/seed"]) == 0 and str(li64["meta/dtype"]) == "float64"
    _, arrays = golden_arrays_function("li2024")(0, "float64")
    assert {k for k in li64 if not k.startswith("meta/")} == set(arrays)
    assert main(["golden", "export", "li2024", "--seed", "0", "--out", str(tmp_path / "li.npz")]) == 0
    with np.load(tmp_path / "li.npz") as f:
        assert set(f.files) == set(li64)
        for k in f.files:
            assert f[k].dtype == li64[k].dtype and f[k].tobytes() == li64[k].tobytes(), k


def test_golden_float32_has_float32_inputs(li32):
    assert li32["input/P"].dtype == np.float32 and li32["param/W_Q"].dtype == np.float32
    assert li32["grad/W_Q"].dtype == np.float32


@pytest.mark.parametrize("kwargs, match", [
    (dict(model="nope"), "unknown model 'nope'"),
    (dict(model="li2024", dtype="float16"), "dtype must be one of"),
    (dict(model="li2024", seed=-1), "seed must be an integer ≥ 0"),
    (dict(model="li2024", seed=1.5), "seed must be an integer ≥ 0"),
])
def test_golden_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        golden(**kwargs)


# --------------------------------------------------------------------------------------------
# correct candidates pass with the defaults
# --------------------------------------------------------------------------------------------
def _worst_ratio(cand, g, **kw):
    res = compare(g, cand, **kw)
    assert res.ok, res.table()
    return max(r.ratio for r in res.rows)


def test_torch_candidate_passes_in_float64(li64):
    cand = li2024_torch(li64)
    assert cand["grad/W_Q"].dtype == torch.float64
    assert_matches(cand, li64)
    assert _worst_ratio(cand, li64) < 0.01  # measured 6.9e-16 of max|ref|: far inside 1e-12


def test_torch_candidate_passes_in_float32(li32):
    cand = li2024_torch(li32)
    assert cand["grad/W_Q"].dtype == torch.float32 and cand["output/F"].requires_grad
    assert compare(li32, cand).precision == "float32"
    assert_matches(cand, li32)
    assert _worst_ratio(cand, li32) < 0.2


def test_float32_torch_candidate_passes_against_the_float64_golden(li64):
    """A float32 model run on the float64 golden's inputs (cast) is checked in float32."""
    g32_inputs = {k: (v.astype(np.float32) if k.startswith(("param/", "input/")) else v) for k, v in li64.items()}
    assert_matches(li2024_torch(g32_inputs), li64)


def test_refimpl_numba_float32_passes_against_the_numpy_float32_golden(li32):
    """A genuine float32 computation with another summation order (the Numba kernels)."""
    cand = refimpl_path("li2024", li32, "numba")
    assert cand["grad/W_K"].dtype == np.float32
    assert_matches(cand, li32)
    # the old default (rtol 1e-9, atol 1e-12) rejects it: that was the defect
    assert not compare(li32, cand, rtol=1e-9, atol=1e-12).ok


def test_refimpl_numpy_float32_passes_against_the_float64_golden(li64):
    g = {k: (v.astype(np.float32) if k.startswith(("param/", "input/")) else v) for k, v in li64.items()}
    cand = refimpl_path("li2024", g, "numpy")
    assert cand["output/F"].dtype == np.float32
    assert_matches(cand, li64)


def test_float64_golden_cast_to_float32_passes(li64):
    """The cheapest float32 'candidate': the float64 reference rounded to float32 (old defaults:
    every gradient failed, entries small through cancellation erring by up to 2e-3 of themselves)."""
    cand = {k: v.astype(np.float32) for k, v in li64.items() if k.startswith(("output/", "grad/", "trajectory/"))}
    assert_matches(cand, li64)


def test_a_float32_computation_saved_as_float64_needs_dtype(li32):
    """Precision is inferred from the arrays; a float32 model that upcasts everything says so."""
    cand = {k: np.asarray(v, np.float64) for k, v in _np(li2024_torch(li32)).items()}
    assert_matches(cand, li32)  # a float32 reference is never checked tighter than float32
    li32_as_64 = {**{k: np.asarray(v, np.float64) for k, v in li32.items() if not k.startswith("meta/")},
                  **{k: v for k, v in li32.items() if k.startswith("meta/")}, "meta/dtype": np.array("float64")}
    with pytest.raises(AssertionError, match="float64 defaults"):
        assert_matches(cand, li32_as_64)
    assert_matches(cand, li32_as_64, dtype="float32")


def test_jax_arrays_are_accepted(li32):
    jnp = pytest.importorskip("jax.numpy", reason="jax not installed")
    cand = {k: jnp.asarray(v) for k, v in _np(li2024_torch(li32)).items()}
    assert_matches(cand, li32)


def test_npz_candidate_and_golden_paths(li64, tmp_path):
    from refimpl.core.io import atomic_savez

    atomic_savez(tmp_path / "g.npz", li64)
    np.savez(tmp_path / "cand.npz", **_np(li2024_torch(li64)))
    assert_matches(tmp_path / "cand.npz", tmp_path / "g.npz")
    assert_matches(str(tmp_path / "cand.npz"), li64)


def test_importing_refimpl_testing_needs_neither_torch_nor_pytest():
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "import numpy as np\n"
        "from refimpl.testing import golden, assert_matches\n"
        "g = golden('li2024', seed=1)\n"
        "assert_matches({k: v for k, v in g.items() if not k.startswith('meta/')}, g)\n"
        "assert 'torch' not in sys.modules and 'jax' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


li2024_golden32 = golden_fixture("li2024", dtype="float32")


def test_golden_fixture(li2024_golden32):
    assert str(li2024_golden32["meta/dtype"]) == "float32"
    assert_matches(li2024_torch(li2024_golden32), li2024_golden32)


def test_documented_defaults_are_the_ones_used():
    import refimpl.testing as T

    def sci(x):
        return f"{x:.0e}".replace("e-0", "e-")

    doc = " ".join(T.__doc__.split())
    for prec, kinds in TOLERANCES.items():
        row = doc[doc.index(f"{prec} rtol"):][:80]
        assert row.startswith(f"{prec} rtol {sci(kinds['default'][0])}, atol {sci(kinds['default'][1])}·scale(key)"
                              f" rtol {sci(kinds['trajectory'][0])}, atol {sci(kinds['trajectory'][1])}·scale(key)"), row


# --------------------------------------------------------------------------------------------
# wrong candidates fail, naming a key
# --------------------------------------------------------------------------------------------
# (model, candidate builder, mutant, configuration of the golden suite): a model with a golden API
# adds its entries here; the builder takes the golden dict and a mutant name (None = the correct
# model) and returns the candidate. Each mutant must fail in float64 and float32, naming a key.
MUTANTS = [
    ("li2024", li2024_torch, "swap_W_Q_W_K", "default"),
    ("li2024", li2024_torch, "transpose_W_V", "default"),
    ("li2024", li2024_torch, "softmax_batch_axis", "default"),
    ("li2024", li2024_torch, "lr_1pct_low", "default"),  # only trajectory/loss can catch it
    ("transformer", transformer_torch, "no_attention_scale", "default"),
    ("transformer", transformer_torch, "exact_gelu", "default"),
    ("transformer", transformer_torch, "adam_no_bias_correction", "default"),  # only trajectory/loss
    ("transformer", transformer_torch, "swap_W_Q_W_K", "default"),
    ("transformer", transformer_torch, "transpose_W_V", "default"),
    ("transformer", transformer_torch, "softmax_wrong_axis", "default"),  # over the queries
    # layer norm ε 1e-6 instead of 1e-5: x̂ moves by (ε − ε')/2σ², so it shows where the tokens'
    # variance σ² is small. float32 fails the default by a factor 2.6 only (1.4–3 over seeds 0–7)
    # and passes post_relu, post_relu_last_hinge and hinge_kink; small_inputs (σ² ~ 3e-3) fails it
    # by ≥ 170 on seeds 0–7.
    ("transformer", transformer_torch, "layernorm_eps_1e-6", "default"),
    ("transformer", transformer_torch, "layernorm_eps_1e-6", "small_inputs"),
    # the hinge subgradient at the kink (torch.clamp(1 − t·out, min=0) passes gradient 1 there,
    # refimpl and torch.relu 0): only a batch with exact kinks can tell, hinge_kink has them
    ("transformer", transformer_torch, "hinge_subgradient_1_at_kink", "hinge_kink"),
]
BUILDERS = {"li2024": li2024_torch, "transformer": transformer_torch}


@pytest.fixture(scope="module")
def goldens():
    cache = {}

    def get(model, dtype, config="default"):
        if (model, dtype, config) not in cache:
            cache[model, dtype, config] = golden(model, config, seed=0, dtype=dtype)
        return cache[model, dtype, config]

    return get


CONTROLS = [(m, c) for m in BUILDERS for c in golden_configs(m)]  # every configuration of the suite


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model, config", CONTROLS, ids=[f"{m}-{c}" for m, c in CONTROLS])
def test_unmutated_candidate_passes(goldens, model, config, dtype):
    """The control of the mutation test: the same builder without a mutation passes, on every
    configuration of the golden suite (an independent PyTorch check of the suite itself)."""
    g = goldens(model, dtype, config)
    assert_matches(BUILDERS[model](g), g)
    assert _worst_ratio(BUILDERS[model](g), g) < 0.2


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model, build, mutant, config", MUTANTS, ids=[f"{m}-{x}-{c}" for m, _, x, c in MUTANTS])
def test_mutant_fails_naming_a_key(goldens, model, build, mutant, config, dtype):
    g = goldens(model, dtype, config)
    with pytest.raises(AssertionError) as info:
        assert_matches(build(g, mutant), g)
    msg = str(info.value)
    key = re.search(r"first wrong key (\S+) \((MISMATCH|NONFINITE)\)", msg).group(1)
    assert key in g and not key.startswith("meta/")
    assert re.search(rf"^{re.escape(key)} +(MISMATCH|NONFINITE) ", msg, flags=re.M), msg


def test_the_kink_mutant_passes_away_from_kinks(goldens):
    """The hinge convention cannot be seen without exact kinks: the last_hinge file (margins at
    least 1e-4 from 1) accepts both; hinge_kink tells them apart (test above)."""
    for dtype in ("float64", "float32"):
        g = goldens("transformer", dtype, "last_hinge")
        assert_matches(transformer_torch(g, "hinge_subgradient_1_at_kink"), g)


def test_relu_at_zero_needs_the_kink_configurations(goldens):
    """li2024's Relu'(0) convention: relu_kink_0 and relu_kink_1 have h = 0 exactly on three rows
    of W_O; a candidate with the other convention fails each (∇W_O on those rows)."""
    for dtype in ("float64", "float32"):
        g0, g1 = goldens("li2024", dtype, "relu_kink_0"), goldens("li2024", dtype, "relu_kink_1")
        swapped0 = {**g0, "meta/config": g1["meta/config"]}  # the builder reads relu_at_zero = 1
        swapped1 = {**g1, "meta/config": g0["meta/config"]}
        for g, cand in ((g0, li2024_torch(swapped0)), (g1, li2024_torch(swapped1))):
            with pytest.raises(AssertionError, match=r"first wrong key grad/W_O \(MISMATCH\)"):
                assert_matches(cand, g)


def test_failure_message_is_a_table_naming_the_first_wrong_key(li64):
    cand = _np(li2024_torch(li64))
    G = cand["grad/W_V"].copy()
    G[3, 5] = G[3, 5] * (1 + 1e-6) + 1e-9
    cand["grad/W_V"] = G
    with pytest.raises(AssertionError) as info:
        assert_matches(cand, li64)
    msg = str(info.value)
    assert msg.startswith("candidate does not match golden li2024 seed 0 (float64): first wrong key grad/W_V (MISMATCH); "
                          "1 of 9 checked keys wrong")
    row = next(line for line in msg.splitlines() if line.startswith("grad/W_V"))
    assert "(3, 5): " in row and f"{li64['grad/W_V'][3, 5]:.17g} → {G[3, 5]:.17g}" in row
    assert " 1e-09 " in row  # the tolerance used
    for k in ("output/F", "output/attn", "output/loss", "grad/W_Q", "trajectory/loss"):
        assert re.search(rf"^{re.escape(k)} +ok ", msg, flags=re.M), k
    assert msg.rstrip().endswith("FAIL: grad/W_V")


def test_partial_candidate_by_section(li64):
    grads = {k: v for k, v in li64.items() if k.startswith("grad/")}
    assert_matches(grads, li64, sections=["grad"])
    with pytest.raises(AssertionError, match=r"first wrong key output/F \(MISSING\)"):
        assert_matches(grads, li64)


def test_per_key_override(li64):
    cand = {k: v for k, v in li64.items() if k.startswith(("output/", "grad/", "trajectory/"))}
    cand["grad/W_O"] = cand["grad/W_O"] * (1 + 1e-6)
    with pytest.raises(AssertionError, match="grad/W_O"):
        assert_matches(cand, li64)
    assert_matches(cand, li64, per_key={"grad/W_O": (1e-5, 0.0)})
    with pytest.raises(ValueError, match="per_key names keys that are not checked"):
        assert_matches(cand, li64, per_key={"grad/W_X": (1e-5, 0.0)})
    with pytest.raises(ValueError, match="per_key"):
        assert_matches(cand, li64, per_key={"grad/W_O": (float("nan"), 0.0)})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1e-9, "x", True])
@pytest.mark.parametrize("which", ["rtol", "atol"])
def test_tolerances_must_be_finite_and_nonnegative(li64, which, bad):
    with pytest.raises(ValueError, match=f"{which} must be a finite number ≥ 0"):
        assert_matches(li64, li64, **{which: bad})


@pytest.mark.parametrize("make, dtype_name", [
    (lambda g: torch.tensor(g["output/F"]).to(torch.complex128), "complex128"),
    (lambda g: torch.tensor(g["output/F"]).to(torch.float16), "float16"),
    (lambda g: torch.tensor(g["output/F"]) > 0, "bool"),
    (lambda g: g["output/F"].astype(np.complex64), "complex64"),
    (lambda g: g["output/F"] > 0, "bool"),
    (lambda g: g["output/F"].astype(str), "<U"),
    (lambda g: g["output/F"].astype(object), "object"),
    (lambda g: g["output/F"].astype(np.float16), "float16"),
])
def test_non_real_candidates_are_refused_by_key(li64, make, dtype_name):
    cand = {k: v for k, v in li64.items() if k.startswith(("output/", "grad/", "trajectory/"))}
    cand["output/F"] = make(li64)
    with pytest.raises(TypeError, match=rf"candidate 'output/F' has dtype \S*{dtype_name}"):
        assert_matches(cand, li64)


def test_swapped_arguments_are_refused(li64):
    cand = {k: v for k, v in li64.items() if not k.startswith("meta/")}
    with pytest.raises(ValueError, match="not a refimpl golden file.*reference comes first"):
        assert_matches(li64, cand)
