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
fails. The mutants below (W_Q and W_K swapped, W_V transposed, softmax over the batch axis, the
learning rate 1% low) fail in both precisions. The hinge subgradient at the kink (1 instead of 0)
is not a mutant here: the li2024 golden batch is drawn with every ReLU input and hinge margin at
least 1e-6 away from its kink, so no implementation can be told apart by its choice there.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import numpy as np
import pytest

from refimpl import models
from refimpl.core.golden import FORMAT_VERSION, TOLERANCES, compare
from refimpl.testing import assert_matches, golden, golden_arrays_function, golden_fixture

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


def _li2024_model(p, P, z, mutant=None):  # spec L7, L10
    C, pq = P[:, :, :-1], P[:, :, -1]  # context columns, query column
    W_Q, W_K, W_V = p["W_Q"], p["W_K"], p["W_V"]
    if mutant == "swap_W_Q_W_K":
        W_Q, W_K = W_K, W_Q
    if mutant == "transpose_W_V":  # the golden W_V is square and not symmetric
        W_V = W_V.T
    s = torch.einsum("bdi,kd,bk->bi", C, W_K, pq @ W_Q.T)
    attn = torch.softmax(s, dim=0 if mutant == "softmax_batch_axis" else -1)
    F = torch.relu(torch.einsum("vd,bdi,bi->bv", W_V, C, attn) @ p["W_O"].T) @ p["a"]
    return F, attn, torch.clamp(1 - z * F, min=0).mean()


def li2024_torch(g, mutant=None):
    """A PyTorch li2024 candidate in the golden's dtype: outputs, gradients, 10 GD steps (torch
    tensors, gradients still attached to the outputs: assert_matches detaches them)."""
    P, z = torch.from_numpy(g["input/P"]), torch.from_numpy(g["input/z"])
    p = {k: torch.tensor(g[f"param/{k}"], requires_grad=k in LI_NAMES) for k in LI_NAMES + ["a"]}
    F, attn, loss = _li2024_model(p, P, z, mutant)
    loss.backward()
    out = {"output/F": F, "output/attn": attn, "output/loss": loss}
    out.update({f"grad/{k}": p[k].grad.clone() for k in LI_NAMES})
    lr, traj = float(g["trajectory/lr"]), []
    lr_used = 0.99 * lr if mutant == "lr_1pct_low" else lr
    for _ in range(10):
        for k in LI_NAMES:
            p[k].grad = None
        loss = _li2024_model(p, P, z, mutant)[2]
        traj.append(loss.item())  # Python floats: the candidate is still float32 when P is
        loss.backward()
        with torch.no_grad():
            for k in LI_NAMES:
                p[k] -= lr_used * p[k].grad
    out["trajectory/loss"] = traj
    out["trajectory/lr"] = lr  # the learning rate it was given
    return out


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
# (model, candidate builder, mutant): a model with a golden API adds its entries here; the
# builder takes the golden dict and a mutant name (None = the correct model) and returns the
# candidate. The hinge subgradient at the kink is not here: see the module docstring.
MUTANTS = [
    ("li2024", li2024_torch, "swap_W_Q_W_K"),
    ("li2024", li2024_torch, "transpose_W_V"),
    ("li2024", li2024_torch, "softmax_batch_axis"),
    ("li2024", li2024_torch, "lr_1pct_low"),  # only trajectory/loss can catch it
]


@pytest.fixture(scope="module")
def goldens():
    cache = {}

    def get(model, dtype):
        if (model, dtype) not in cache:
            cache[model, dtype] = golden(model, seed=0, dtype=dtype)
        return cache[model, dtype]

    return get


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model, build", sorted({(m, b) for m, b, _ in MUTANTS}, key=lambda t: t[0]),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_unmutated_candidate_passes(goldens, model, build, dtype):
    """The control of the mutation test: the same builder without a mutation passes."""
    assert_matches(build(goldens(model, dtype)), goldens(model, dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model, build, mutant", MUTANTS, ids=[f"{m}-{x}" for m, _, x in MUTANTS])
def test_mutant_fails_naming_a_key(goldens, model, build, mutant, dtype):
    g = goldens(model, dtype)
    with pytest.raises(AssertionError) as info:
        assert_matches(build(g, mutant), g)
    msg = str(info.value)
    key = re.search(r"first wrong key (\S+) \((MISMATCH|NONFINITE)\)", msg).group(1)
    assert key in g and not key.startswith("meta/")
    assert re.search(rf"^{re.escape(key)} +(MISMATCH|NONFINITE) ", msg, flags=re.M), msg


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
