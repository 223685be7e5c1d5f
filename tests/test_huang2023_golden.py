"""Golden vectors for spec H (§6): export writes the spec's keys with values the model reproduces,
deterministically (the generic round trip through ``compare`` is tests/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl import huang2023 as H
from refimpl.cli import main
from refimpl.core.golden import compare, load_golden

# spec H §6, with grad_Ew/Q stored as grad/Q_Ew (the file format's sections; see golden.py)
SPEC_H6_KEYS = {
    "param/Q", "input/X", "input/xq", "input/w", "input/y", "input/yq",
    "output/attn", "output/y_hat", "output/loss", "output/loss_Ew", "grad/Q", "grad/Q_Ew",
    "trajectory/lr", "trajectory/loss",
}


@pytest.fixture(scope="module")
def golden_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "h.npz"
    assert main(["golden", "export", "huang2023", "--seed", "0", "--out", str(path)]) == 0
    return path


def test_export_writes_spec_keys_and_consistent_values(golden_file):
    g = load_golden(golden_file)
    assert {k for k in g if not k.startswith("meta/")} == SPEC_H6_KEYS
    assert str(g["meta/model"]) == "huang2023" and str(g["meta/dtype"]) == "float64"
    B, N, d = g["input/X"].shape
    assert g["output/attn"].shape == (B, N) and g["param/Q"].shape == (d, d)
    assert g["trajectory/loss"].shape == (10,)
    assert np.min(np.abs(g["param/Q"])) > 0, "golden Q must be random and nonzero (spec H §6)"
    batch = {k: g[f"input/{k}"] for k in ("X", "xq", "y", "yq")}
    np.testing.assert_allclose(batch["y"], np.einsum("bnd,bd->bn", batch["X"], g["input/w"]), atol=1e-14)
    cfg = H.preset("golden")
    loss, grads, aux = H.loss_and_grads({"Q": g["param/Q"]}, batch, cfg, return_aux=True)
    loss_ew, grads_ew = H.loss_and_grads({"Q": g["param/Q"]}, batch, cfg.replace(loss="Ew"))
    np.testing.assert_allclose(aux["out"], g["output/y_hat"], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(aux["attn"], g["output/attn"], rtol=1e-14, atol=1e-16)
    assert loss == pytest.approx(float(g["output/loss"]), rel=1e-14)
    assert loss_ew == pytest.approx(float(g["output/loss_Ew"]), rel=1e-14)
    np.testing.assert_allclose(grads["Q"], g["grad/Q"], rtol=1e-13, atol=1e-17)
    np.testing.assert_allclose(grads_ew["Q"], g["grad/Q_Ew"], rtol=1e-13, atol=1e-17)
    assert g["trajectory/loss"][0] == pytest.approx(loss, rel=1e-14)
    assert g["trajectory/loss"][-1] < g["trajectory/loss"][0]
    # Q is not symmetric, so a transposed Q in a candidate is caught
    assert np.max(np.abs(g["param/Q"] - g["param/Q"].T)) > 0.05
    assert np.max(np.abs(grads["Q"] - grads["Q"].T)) > 1e-3


def test_export_is_deterministic_and_takes_a_config(golden_file, tmp_path):
    again = tmp_path / "again.npz"
    assert main(["golden", "export", "huang2023", "--seed", "0", "--out", str(again)]) == 0
    assert compare(golden_file, again, rtol=0, atol=0).ok
    config, arrays = H.golden_arrays(0, config=H.preset("golden", attend_to_query=True))
    assert config["attend_to_query"] is True and arrays["output/attn"].shape == (8, 7)  # N + 1 columns
    with pytest.raises(TypeError, match="Config"):
        H.golden_arrays(0, config={"K": 3})
