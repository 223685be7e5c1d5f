"""Golden vectors for spec Y (§7): export writes the spec's keys, values are consistent with the
model, and the file compares clean against itself (and catches a perturbation)."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl import yang2024 as Y
from refimpl.cli import main
from refimpl.core.golden import compare, load_golden

SPEC_Y7_KEYS = {
    "param/Q", "param/w", "input/V_all", "input/Z_all", "input/N", "input/tau", "input/y",
    "output/A_hat", "output/A", "output/y_hat", "output/loss", "output/L_star",
    "grad/Q", "grad/w", "trajectory/lr_Q", "trajectory/lr_w", "trajectory/loss",
}


@pytest.fixture(scope="module")
def golden_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "y.npz"
    assert main(["golden", "export", "yang2024", "--seed", "0", "--out", str(path)]) == 0
    return path


def test_export_writes_spec_keys_and_consistent_values(golden_file):
    g = load_golden(golden_file)
    assert {k for k in g if not k.startswith("meta/")} == SPEC_Y7_KEYS
    assert str(g["meta/model"]) == "yang2024" and str(g["meta/dtype"]) == "float64"
    H, d, _ = g["param/Q"].shape
    K = g["param/w"].shape[1]
    N = int(g["input/N"])
    assert g["input/V_all"].shape == (d, K) and g["input/y"].shape == (N,)
    assert g["output/A_hat"].shape == (N, K) and g["output/A"].shape == (N, K) and g["output/y_hat"].shape == (K,)
    assert g["trajectory/loss"].shape == (10,)
    assert np.min(np.abs(g["param/w"])) > 0, "golden w must be random and nonzero (spec Y §7)"
    params = {"Q": g["param/Q"], "w": g["param/w"]}
    batch = {k: g[f"input/{k}"] for k in ("V_all", "Z_all", "N", "tau")}
    loss, grads, aux = Y.loss_and_grads(params, batch, Y.preset("golden"), return_aux=True)
    assert loss == pytest.approx(float(g["output/loss"]), rel=1e-14)
    assert aux["pop"].L_star == pytest.approx(float(g["output/L_star"]), rel=1e-14)
    np.testing.assert_allclose(grads["Q"], g["grad/Q"], rtol=1e-13, atol=1e-17)
    np.testing.assert_allclose(grads["w"], g["grad/w"], rtol=1e-13, atol=1e-17)
    np.testing.assert_allclose(g["output/y_hat"], g["input/y"] @ g["output/A_hat"], rtol=1e-14, atol=1e-15)
    assert np.max(np.abs(grads["Q"])) > 1e-3
    assert float(g["trajectory/lr_w"]) == pytest.approx(float(g["trajectory/lr_Q"]))  # γ = 1
    assert g["trajectory/loss"][0] == pytest.approx(loss, rel=1e-14)
    assert np.all(np.diff(g["trajectory/loss"]) < 0) and np.all(g["trajectory/loss"] > g["output/L_star"])
    # Q_h is not symmetric, so a transposed Q in a candidate is caught
    assert np.max(np.abs(g["param/Q"] - np.swapaxes(g["param/Q"], 1, 2))) > 0.05
    assert np.max(np.abs(grads["Q"] - np.swapaxes(grads["Q"], 1, 2))) > 1e-4


def test_golden_arrays_at_package_level_and_with_a_config():
    config, arrays = Y.golden_arrays(1, "float32")
    assert config["preset"] == "golden" and arrays["grad/Q"].dtype == np.float32
    config, arrays = Y.golden_arrays(1, config=Y.preset("golden", H=5))
    assert config["H"] == 5 and arrays["param/Q"].shape == (5, 4, 4) and config["preset"] is None
    with pytest.raises(TypeError, match="Config"):
        Y.golden_arrays(0, config={"H": 5})


def test_compare_self_is_clean_and_perturbation_fails(golden_file, tmp_path, capsys):
    assert main(["golden", "compare", str(golden_file), str(golden_file)]) == 0
    assert "PASS" in capsys.readouterr().out
    again = tmp_path / "again.npz"
    assert main(["golden", "export", "yang2024", "--seed", "0", "--out", str(again)]) == 0
    assert compare(golden_file, again, rtol=0, atol=0).ok
    g = dict(np.load(golden_file))
    G = g["grad/Q"].copy()
    idx = np.unravel_index(np.argmax(np.abs(G)), G.shape)
    G[idx] *= 1 + 1e-6
    g["grad/Q"] = G
    bad = tmp_path / "bad.npz"
    np.savez(bad, **g)
    capsys.readouterr()
    assert main(["golden", "compare", str(golden_file), str(bad)]) == 1
    assert "grad/Q" in capsys.readouterr().out
