"""Golden vectors for spec T (model ``transformer``): export writes the spec's keys, values are
consistent with the model, the export is deterministic per seed, and a candidate produced by an
independent PyTorch model passes ``refimpl golden compare`` (the generic round trip through
``compare`` is in tests/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.cli import main
from refimpl.core.golden import compare, load_golden
from refimpl.transformer import forward, loss_and_grads
from refimpl.transformer.golden import ADAM, GOLDEN
from refimpl.transformer.model import param_shapes

NAMES = list(param_shapes(GOLDEN))
SPEC_T_KEYS = (
    {f"param/{n}" for n in NAMES} | {f"grad/{n}" for n in NAMES}
    | {"input/X", "input/target", "output/out", "output/loss", "output/attn", "trajectory/loss"}
    | {f"trajectory/{k}" for k in ADAM}
)


@pytest.fixture(scope="module")
def golden_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "t.npz"
    assert main(["golden", "export", "transformer", "--seed", "0", "--out", str(path)]) == 0
    return path


def test_export_writes_spec_keys_and_consistent_values(golden_file):
    g = load_golden(golden_file)
    assert {k for k in g if not k.startswith("meta/")} == SPEC_T_KEYS
    assert str(g["meta/model"]) == "transformer" and str(g["meta/dtype"]) == "float64"
    params = {n: g[f"param/{n}"] for n in NAMES}
    X, target = g["input/X"], g["input/target"]
    B, T, d_in = X.shape
    assert d_in == GOLDEN.d_in and target.shape == (B, T) and T < GOLDEN.max_T
    assert g["output/attn"].shape == (GOLDEN.n_layers, B, GOLDEN.n_heads, T, T)
    out, cache = forward(params, {"X": X}, GOLDEN)
    np.testing.assert_allclose(out, g["output/out"], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(np.stack(cache["attn"]), g["output/attn"], rtol=1e-14, atol=1e-16)
    loss, grads = loss_and_grads(params, {"X": X, "target": target}, GOLDEN)
    assert loss == pytest.approx(float(g["output/loss"]), rel=1e-14)
    assert loss == pytest.approx(np.sum((out - target) ** 2) / (2 * B * T), rel=1e-14)
    for n in NAMES:
        np.testing.assert_allclose(grads[n], g[f"grad/{n}"], rtol=1e-13, atol=1e-16, err_msg=n)
    # every parameter matters: biases and layer-norm parameters are off their trivial values, and
    # every gradient except the key biases' (zero up to rounding) is clearly nonzero
    for n in NAMES:
        if n.endswith(".g"):
            assert np.max(np.abs(g[f"param/{n}"] - 1.0)) > 0.05, n
        elif g[f"param/{n}"].ndim == 1:
            assert np.max(np.abs(g[f"param/{n}"])) > 0.05, n
        if n.endswith("attn.b_K"):
            assert np.max(np.abs(g[f"grad/{n}"])) < 1e-14
        else:
            assert np.max(np.abs(g[f"grad/{n}"])) > 1e-3, n
    assert np.all(g["grad/pos"][T:] == 0) and np.all(np.abs(g["grad/pos"][:T]).max(axis=1) > 0)
    traj = g["trajectory/loss"]
    assert traj.shape == (10,) and traj[0] == pytest.approx(loss, rel=1e-14)
    assert np.all(np.diff(traj) < 0)
    assert float(g["trajectory/lr"]) == ADAM["lr"] and float(g["trajectory/beta2"]) == ADAM["beta2"]
    # W_Q is not symmetric, so a transposed weight in a candidate is caught
    W = g["param/layer0.attn.W_Q"]
    assert np.max(np.abs(W - W.T)) > 0.1


def test_export_is_deterministic_per_seed(golden_file, tmp_path):
    """(The round trip through compare, clean and perturbed, is tests/test_contract.py's.)"""
    again = tmp_path / "again.npz"
    assert main(["golden", "export", "transformer", "--seed", "0", "--out", str(again)]) == 0
    assert compare(golden_file, again, rtol=0, atol=0).ok  # same seed → identical file
    other = tmp_path / "other.npz"
    assert main(["golden", "export", "transformer", "--seed", "1", "--out", str(other)]) == 0
    assert not compare(golden_file, other).ok


def test_float32_export(tmp_path):
    path = tmp_path / "t32.npz"
    assert main(["golden", "export", "transformer", "--seed", "0", "--out", str(path), "--dtype", "float32"]) == 0
    g = load_golden(path)
    assert str(g["meta/dtype"]) == "float32" and g["grad/read_in.W"].dtype == np.float32


def test_a_pytorch_candidate_passes_compare(golden_file, tmp_path, capsys):
    """The README's use case: a PyTorch user loads param/*, runs input/*, writes output/grad/trajectory."""
    torch = pytest.importorskip("torch", reason="the PyTorch candidate needs torch (optional)")
    from test_transformer_parity_torch import TorchTransformer

    g = load_golden(golden_file)
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = TorchTransformer(GOLDEN).double()
        model.load({n: g[f"param/{n}"] for n in NAMES})
        X, target = torch.from_numpy(g["input/X"]), torch.from_numpy(g["input/target"])
        out, attn = model(X)
        loss = model.loss(out, target)
        loss.backward()
        cand = {"output/out": out.detach().numpy(), "output/loss": loss.detach().numpy(),
                "output/attn": torch.stack(attn).detach().numpy()}
        cand.update({f"grad/{n}": v for n, v in model.read(grad=True).items()})
        cand.update({f"param/{n}": v for n, v in model.read(grad=False).items()})
        cand.update({k: g[k] for k in g if k.startswith("input/") or k.startswith("trajectory/") and k != "trajectory/loss"})
        opt = torch.optim.Adam(model.parameters(), lr=float(g["trajectory/lr"]),
                               betas=(float(g["trajectory/beta1"]), float(g["trajectory/beta2"])),
                               eps=float(g["trajectory/eps"]), weight_decay=float(g["trajectory/weight_decay"]))
        traj = []
        for _ in range(10):
            opt.zero_grad()
            L = model.loss(model(X)[0], target)
            L.backward()
            opt.step()
            traj.append(L.item())
        cand["trajectory/loss"] = np.array(traj)
    finally:
        torch.set_num_threads(n_threads)
    path = tmp_path / "torch.npz"
    np.savez(path, **cand)
    capsys.readouterr()
    assert main(["golden", "compare", str(golden_file), str(path)]) == 0, capsys.readouterr().out
