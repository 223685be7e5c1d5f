"""The committed golden suite (tests/data/golden, issue 12 items 3 and 5): the current code
reproduces every file bit for bit, the suite covers every option of every model, float32 files are
float32 through, and a change of the math fails the check.

Design: each file is regenerated in memory (``refimpl.testing.golden``, the code path of
``refimpl golden suite --out tests/data/golden``, which rewrites them) and compared with the
committed one by :func:`refimpl.core.golden.bit_diff`: every key's dtype, shape and bytes, the
``meta/*`` keys included except the package version. float64 and float32 both reproduce bit for
bit here (NumPy paths only, no threads inside the golden computations); on a failure the message
also says whether the new arrays still pass ``assert_matches``' default tolerances (a changed
rounding, e.g. another BLAS) or not (changed math). After an intended change of the math,
regenerate with ``refimpl golden suite --out tests/data/golden`` and say so in the CHANGELOG.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import refimpl.core.ops
from refimpl import models
from refimpl.cli import main
from refimpl.core.golden import DTYPES, bit_diff, compare, load_golden
from refimpl.testing import SUITE_SEED, check_suite, golden, parse_suite_name, suite

SUITE_DIR = Path(__file__).resolve().parent / "data" / "golden"
ENTRIES = [(e, dt) for e in suite() for dt in DTYPES]


def _ids(item):
    e, dt = item
    return e.file_name(dt)[:-4]


def check_file(entry, dtype: str) -> None:
    """The regression check of one committed file: regenerate, compare bit for bit."""
    path = SUITE_DIR / entry.file_name(dtype)
    assert path.is_file(), f"{path} is missing: regenerate with `refimpl golden suite --out {SUITE_DIR}`"
    ref = load_golden(path)
    new = golden(entry.model, entry.config, seed=SUITE_SEED, dtype=dtype)
    diff = bit_diff(ref, new)
    if diff:
        why = ("still within the default tolerances: a rounding change?" if compare(ref, new).ok
               else "beyond the default tolerances: the math changed")
        raise AssertionError(
            f"{path.name} is no longer reproduced bit for bit ({len(diff)} keys differ; {why}):\n  "
            + "\n  ".join(diff) + f"\nIf the change is intended: refimpl golden suite --out {SUITE_DIR} (and a CHANGELOG line)")


@pytest.mark.parametrize("item", ENTRIES, ids=[_ids(i) for i in ENTRIES])
def test_committed_file_is_reproduced_bit_for_bit(item):
    check_file(*item)


def test_the_folder_holds_exactly_the_suite():
    present = {p.name for p in SUITE_DIR.glob("*.npz")}
    assert present == {e.file_name(dt) for e, dt in ENTRIES}
    assert all(parse_suite_name(n)[2] in DTYPES for n in present)


def test_the_suite_is_small():
    sizes = {p.name: p.stat().st_size for p in SUITE_DIR.glob("*.npz")}
    assert sum(sizes.values()) < 3_000_000 and max(sizes.values()) < 300_000, sizes


def test_the_default_configuration_is_config_none():
    for m in models.names():
        a, b = golden(m, seed=1), golden(m, "default", seed=1)
        assert bit_diff(a, b) == [], m
        assert json.loads(str(a["meta/config"]))["golden_config"] == "default"
        gm = __import__(f"{models.get(m).module}.golden", fromlist=["golden_arrays"])
        c, arrays = gm.golden_arrays(1, "float32", config="default")  # the model's own name for it
        assert bit_diff({k: v for k, v in golden(m, seed=1, dtype="float32").items() if not k.startswith("meta/")},
                        arrays) == [], m


def test_unknown_configuration_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown golden configuration 'nope' of li2024; allowed: \['default'"):
        golden("li2024", "nope")


# --------------------------------------------------------------------------------------------
# coverage: every option value of the registry (refimpl.models) appears in some configuration
# --------------------------------------------------------------------------------------------
def _config(entry) -> dict:
    return json.loads(str(load_golden(SUITE_DIR / entry.file_name("float64"))["meta/config"]))


def _field(cfg: dict, dotted: str):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize("model", models.names())
def test_the_suite_covers_every_registered_option_value(model):
    configs = [_config(e) for e in suite(model)]
    for option, values in models.get(model).options.items():
        seen = {_field(c, option) for c in configs}
        assert set(values) <= seen, f"{model}: option {option} takes {values}, the suite only {sorted(seen, key=str)}"


def test_the_suite_covers_the_model_specific_options():
    files = {(e.model, e.config): load_golden(SUITE_DIR / e.file_name("float64")) for e in suite()}
    cfgs = {k: json.loads(str(g["meta/config"])) for k, g in files.items()}
    # li2024: a pruning mask that prunes some rows and keeps others, and a trained a
    keep = [g["input/keep"] for (m, _), g in files.items() if m == "li2024" and "input/keep" in g]
    assert keep and set(np.unique(keep[0])) == {0.0, 1.0}
    assert any("grad/a" in g for (m, _), g in files.items() if m == "li2024")
    # li2024: exact ReLU kinks (h = 0) with both derivatives there, visible in ∇W_O's kink rows
    k0, k1 = files["li2024", "relu_kink_0"], files["li2024", "relu_kink_1"]
    rows = cfgs["li2024", "relu_kink_0"]["zero_rows_of_W_O"]
    assert np.all(k0["param/W_O"][rows] == 0) and np.all(k0["grad/W_O"][rows] == 0)
    assert np.all(np.abs(k1["grad/W_O"][rows]).max(axis=1) > 0)
    # yang2024: H < N and H ≥ N; huang2023: balanced and imbalanced
    HN = {(c["H"] < c["N"]) for (m, _), c in cfgs.items() if m == "yang2024"}
    assert HN == {True, False}
    assert {c["p_kind"] for (m, _), c in cfgs.items() if m == "huang2023"} == {"balanced", "imbalanced"}
    # transformer: the hinge kink configuration has outputs exactly on the kink and off it
    t = files["transformer", "hinge_kink"]
    margin = t["input/target"] * t["output/out"]
    assert np.any(margin == 1.0) and np.any(margin < 1.0)


# --------------------------------------------------------------------------------------------
# float32 is float32: every array float32, computed in float32
# --------------------------------------------------------------------------------------------
def _float64_grads(entry, g) -> dict:
    """The gradients of a float32 file recomputed in float64 from its (float32) params and inputs."""
    pkg = models.load(entry.model)
    gm = __import__(f"{models.get(entry.model).module}.golden", fromlist=["suite_config"])
    cfg = gm.suite_config(entry.config)
    p = {k[6:]: v.astype(np.float64) for k, v in g.items() if k.startswith("param/")}
    inp = {k[6:]: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in g.items() if k.startswith("input/")}
    kw = {}
    if entry.model == "yang2024" and "Z_all" in inp:
        inp.pop("y")  # the population loss's file stores one prompt (N,) for output/y_hat only
    if entry.model == "li2024":
        kw = {"keep": inp.pop("keep", None)}
    if entry.model == "huang2023":  # grad/Q: the sample loss's gradient, grad/Q_Ew: the E_w loss's
        Q_Ew = pkg.loss_and_grads(p, inp, cfg.replace(loss="Ew"))[1]["Q"]
        return {"Q": pkg.loss_and_grads(p, inp, cfg.replace(loss="sample"))[1]["Q"], "Q_Ew": Q_Ew}
    return pkg.loss_and_grads(p, inp, cfg, **kw)[1]


@pytest.mark.parametrize("entry", suite(), ids=lambda e: f"{e.model}-{e.config}")
def test_float32_files_are_float32_and_computed_in_float32(entry):
    g = load_golden(SUITE_DIR / entry.file_name("float32"))
    arrays = {k: v for k, v in g.items() if not k.startswith("meta/")}
    assert {k for k, v in arrays.items() if v.dtype.kind == "f" and v.dtype != np.float32} == set()
    assert {k for k, v in arrays.items() if v.dtype.kind != "f"} <= {"input/N"}  # yang2024's prompt length
    g64 = _float64_grads(entry, g)
    rounded = {f"grad/{k}": v.astype(np.float32) for k, v in g64.items()}
    # the float32 arithmetic is visible (a float64 computation rounded would equal the file) ...
    assert any(not np.array_equal(rounded[k], g[k]) for k in rounded), "float32 file computed in float64?"
    # ... and correct: it matches the float64 computation within the float32 tolerances
    res = compare(g, rounded, sections=["grad"])
    assert res.ok, res.table()


@pytest.mark.parametrize("model", models.names())
def test_float32_loss_and_grads_stay_float32(model):
    """The model itself: float32 params and inputs give float32 gradients on every backend
    (huang2023's default prompt weights used to be float64, promoting its gradients)."""
    e = suite(model)[0]
    g = load_golden(SUITE_DIR / e.file_name("float32"))
    gm = __import__(f"{models.get(model).module}.golden", fromlist=["suite_config"])
    cfg = gm.suite_config(e.config)
    p = {k[6:]: v for k, v in g.items() if k.startswith("param/")}
    inp = {k[6:]: v for k, v in g.items() if k.startswith("input/")}
    if model == "yang2024":
        del inp["y"]  # one prompt (N,) for output/y_hat; the population loss takes none
    for backend in models.get(model).backends:
        grads = models.load(model).loss_and_grads(p, inp, cfg, backend)[1]
        assert {k: v.dtype for k, v in grads.items()} == {k: np.dtype(np.float32) for k in grads}, backend


# --------------------------------------------------------------------------------------------
# the check is not vacuous: a change of the math fails it
# --------------------------------------------------------------------------------------------
def _entry(model, config="default"):
    return next(e for e in suite(model) if e.config == config)


def _perturbed_softmax(real):
    def softmax_forward(x, axis=-1):
        y, cache = real(x, axis=axis)
        return y * (1 + 2.0 ** -40), cache  # a relative change of 1e-12: invisible in float32
    return softmax_forward


@pytest.mark.parametrize("model, module", [
    ("li2024", "refimpl.li2024.model"), ("yang2024", "refimpl.yang2024.model"),
    ("huang2023", "refimpl.huang2023.model"), ("transformer", "refimpl.transformer.blocks"),
])
def test_a_softmax_off_by_1e12_fails_the_float64_check(monkeypatch, model, module):
    mod = __import__(module, fromlist=["softmax_forward"])
    monkeypatch.setattr(mod, "softmax_forward", _perturbed_softmax(mod.softmax_forward))
    with pytest.raises(AssertionError, match="no longer reproduced bit for bit"):
        check_file(_entry(model), "float64")


def test_a_perturbed_gelu_constant_fails_the_check(monkeypatch):
    """One constant of the math (the 0.044715 of the tanh GELU) changed in its 12th digit: the
    float64 file of the default transformer is no longer reproduced, although every array still
    passes the default tolerances (which is why the suite is compared bit for bit)."""
    monkeypatch.setattr(refimpl.core.ops, "_GELU_A", 0.044715 * (1 + 1e-12))
    with pytest.raises(AssertionError, match="still within the default tolerances") as info:
        check_file(_entry("transformer"), "float64")
    assert "output/out" in str(info.value) and "grad/read_in.W" in str(info.value)
    with pytest.raises(AssertionError, match="no longer reproduced"):
        check_file(_entry("transformer", "last_hinge"), "float64")
    check_file(_entry("transformer", "post_relu"), "float64")  # no GELU in it: unchanged


def test_a_wrong_gelu_constant_is_beyond_the_tolerances(monkeypatch):
    monkeypatch.setattr(refimpl.core.ops, "_GELU_A", 0.0447)
    for dtype in DTYPES:
        with pytest.raises(AssertionError, match="beyond the default tolerances: the math changed"):
            check_file(_entry("transformer"), dtype)


# --------------------------------------------------------------------------------------------
# the command line that writes and checks the suite
# --------------------------------------------------------------------------------------------
def test_cli_suite_check_passes_on_the_committed_suite(capsys):
    assert main(["golden", "suite", "--out", str(SUITE_DIR), "--check"]) == 0
    assert f"all {len(ENTRIES)} golden files reproduced bit for bit" in capsys.readouterr().out


def test_cli_suite_writes_what_check_accepts_and_check_reports_differences(tmp_path, capsys):
    assert main(["golden", "suite", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {e.file_name(dt) for e, dt in ENTRIES}
    for p in tmp_path.iterdir():
        assert bit_diff(load_golden(p), load_golden(SUITE_DIR / p.name)) == [], p.name
    assert check_suite(tmp_path) == {}
    (tmp_path / "yang2024-sample-float32.npz").unlink()
    g = dict(np.load(tmp_path / "huang2023-default-float64.npz"))
    g["grad/Q"] = g["grad/Q"] * (1 + 2.0 ** -52)
    np.savez(tmp_path / "huang2023-default-float64.npz", **g)
    np.savez(tmp_path / "li2024-nope-float64.npz", x=np.zeros(1))
    capsys.readouterr()
    assert main(["golden", "suite", "--out", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "yang2024-sample-float32.npz:\n  missing" in out
    assert "huang2023-default-float64.npz:\n  grad/Q: " in out
    assert "li2024-nope-float64.npz:\n  not a configuration of the suite" in out
    assert f"{len(ENTRIES) - 2} of {len(ENTRIES)} golden files reproduced bit for bit" in out


def test_cli_suite_list_and_export_config(tmp_path, capsys):
    assert main(["golden", "suite", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(f"{e.model:<12} {e.config:<22}" in out for e in suite())
    path = tmp_path / "t.npz"
    assert main(["golden", "export", "transformer", "--config", "post_relu", "--dtype", "float32", "--out", str(path)]) == 0
    assert bit_diff(load_golden(path), load_golden(SUITE_DIR / "transformer-post_relu-float32.npz")) == []
    assert main(["golden", "export", "transformer", "--config", "nope", "--out", str(path)]) == 2
    assert "unknown golden configuration 'nope'" in capsys.readouterr().err
