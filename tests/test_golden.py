"""Golden vectors: export writes spec L §7's keys in format version 2; compare passes on itself and
fails naming a key; nothing passes by accident (issue 12 items 1–2, issue 15 item 2): tolerances
must be finite and ≥ 0, unknown format versions are refused with the regeneration command,
non-real candidates are refused by key, non-finite references match only themselves, partial
candidates are checked by section, and a check of nothing is an error."""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.cli import main
from refimpl.core.golden import FORMAT_VERSION, compare, load_golden
from refimpl.li2024 import loss_and_grads, preset

SPEC_L7_KEYS = {
    "param/W_Q", "param/W_K", "param/W_V", "param/W_O", "param/a", "input/P", "input/z",
    "output/F", "output/attn", "output/loss", "grad/W_Q", "grad/W_K", "grad/W_V", "grad/W_O",
    "trajectory/lr", "trajectory/loss",
}


@pytest.fixture(scope="module")
def golden_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "li.npz"
    assert main(["golden", "export", "li2024", "--seed", "0", "--out", str(path)]) == 0
    return path


def test_export_writes_spec_keys_and_meta(golden_file):
    g = load_golden(golden_file)
    assert {k for k in g if not k.startswith("meta/")} == SPEC_L7_KEYS
    assert str(g["meta/model"]) == "li2024" and int(g["meta/seed"]) == 0 and str(g["meta/dtype"]) == "float64"
    assert str(g["meta/format"]) == "refimpl-golden" and str(g["meta/version"]) == FORMAT_VERSION == "2"
    B, d, L1 = g["input/P"].shape
    assert g["output/attn"].shape == (B, L1 - 1) and g["trajectory/loss"].shape == (10,)
    # the stored outputs are what the reference computes from the stored params and batch
    loss, grads = loss_and_grads({k[6:]: g[k] for k in g if k.startswith("param/")},
                                 {"P": g["input/P"], "z": g["input/z"]}, preset("golden"))
    assert loss == pytest.approx(float(g["output/loss"]), rel=1e-14)
    for k, v in grads.items():
        np.testing.assert_allclose(v, g[f"grad/{k}"], rtol=1e-13, atol=1e-18)
    assert g["trajectory/loss"][0] == pytest.approx(loss, rel=1e-14)
    assert np.all(np.diff(g["trajectory/loss"]) < 0), "GD on the stored batch should lower the loss"
    # W_Q ≠ W_K and W_V not symmetric: swapped or transposed parameters would be caught
    assert np.max(np.abs(g["param/W_Q"] - g["param/W_K"])) > 0.05
    assert np.max(np.abs(g["param/W_V"] - g["param/W_V"].T)) > 0.05


def test_export_is_deterministic(golden_file, tmp_path):
    again = tmp_path / "again.npz"
    assert main(["golden", "export", "li2024", "--seed", "0", "--out", str(again)]) == 0
    assert compare(golden_file, again, rtol=0, atol=0).ok


def test_compare_self_exits_zero(golden_file, capsys):
    assert main(["golden", "compare", str(golden_file), str(golden_file)]) == 0
    assert "PASS" in capsys.readouterr().out


@pytest.mark.parametrize("key", ["grad/W_Q", "grad/W_K", "grad/W_V", "grad/W_O"])
def test_one_gradient_entry_perturbed_1e6_relative_fails_and_names_key(golden_file, tmp_path, capsys, key):
    g = dict(np.load(golden_file))
    G = g[key].copy()
    idx = np.unravel_index(np.argmax(np.abs(G)), G.shape)
    G[idx] *= 1 + 1e-6
    g[key] = G
    cand = tmp_path / "pert.npz"
    np.savez(cand, **g)
    assert main(["golden", "compare", str(golden_file), str(cand)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL: {key}" in out
    row = next(line for line in out.splitlines() if line.startswith(key))
    assert "MISMATCH" in row and str(tuple(int(i) for i in idx)) in row


def test_missing_key_and_shape_mismatch_fail(golden_file, tmp_path, capsys):
    g = dict(np.load(golden_file))
    del g["grad/W_O"]
    g["output/F"] = g["output/F"][:-1]
    cand = tmp_path / "bad.npz"
    np.savez(cand, **g)
    res = compare(golden_file, cand)
    assert not res.ok and set(res.failed_keys) == {"grad/W_O", "output/F"}
    assert {r.key: r.status for r in res.rows}["grad/W_O"] == "MISSING"
    assert main(["golden", "compare", str(golden_file), str(cand)]) == 1


def test_nan_in_candidate_fails(golden_file, tmp_path):
    g = dict(np.load(golden_file))
    g["output/F"] = g["output/F"].copy()
    g["output/F"][0] = np.nan
    cand = tmp_path / "nan.npz"
    np.savez(cand, **g)
    assert compare(golden_file, cand).failed_keys == ["output/F"]


def test_compare_rejects_non_golden_reference_and_missing_files(golden_file, tmp_path, capsys):
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros(3))
    assert main(["golden", "compare", str(plain), str(golden_file)]) == 2
    assert "not a refimpl golden file" in capsys.readouterr().err
    assert main(["golden", "compare", str(golden_file), str(tmp_path / "nope.npz")]) == 2
    assert "not found" in capsys.readouterr().err


def test_float32_export(tmp_path):
    path = tmp_path / "li32.npz"
    assert main(["golden", "export", "li2024", "--seed", "3", "--dtype", "float32", "--out", str(path)]) == 0
    g = load_golden(path)
    assert g["grad/W_Q"].dtype == np.float32 and str(g["meta/dtype"]) == "float32"


def test_export_never_leaves_partial_files(tmp_path, monkeypatch):
    """An export that fails while writing leaves the previous file intact and no temp files."""
    path = tmp_path / "li.npz"
    path.write_bytes(b"previous contents")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError):
        main(["golden", "export", "li2024", "--seed", "0", "--out", str(path)])
    assert path.read_bytes() == b"previous contents"
    assert [p.name for p in tmp_path.iterdir()] == ["li.npz"]


# --------------------------------------------------------------------------------------------
# format version 2: meta/format and meta/version are checked on load
# --------------------------------------------------------------------------------------------
def _save(path, data):
    np.savez(path, **data)
    return path


@pytest.mark.parametrize("version", ["99", "1", ""])
def test_unknown_format_version_is_refused_with_the_regeneration_command(golden_file, tmp_path, capsys, version):
    g = dict(np.load(golden_file))
    g["meta/version"] = np.array(version)
    bad = _save(tmp_path / "v.npz", g)
    with pytest.raises(ValueError) as info:
        load_golden(bad)
    msg = str(info.value)
    assert f"meta/version = {version!r}" in msg and "reads version 2" in msg
    assert f"refimpl golden export li2024 --seed 0 --dtype float64 --out {bad}" in msg
    with pytest.raises(ValueError, match="meta/version"):  # a reference dict is checked the same way
        compare(g, golden_file)
    assert main(["golden", "compare", str(bad), str(golden_file)]) == 2
    err = capsys.readouterr().err
    assert "meta/version" in err and "refimpl golden export li2024" in err


def test_missing_version_and_format_are_refused(golden_file, tmp_path):
    g = dict(np.load(golden_file))
    del g["meta/version"]
    with pytest.raises(ValueError, match="meta/version = None"):
        load_golden(_save(tmp_path / "nov.npz", g))
    g = dict(np.load(golden_file))
    g["meta/format"] = np.array("something-else")
    with pytest.raises(ValueError, match="meta/format = 'something-else', expected 'refimpl-golden'"):
        load_golden(_save(tmp_path / "nof.npz", g))


# --------------------------------------------------------------------------------------------
# tolerances: finite and ≥ 0, a usage error on the command line
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1e-9", "NaN"])
@pytest.mark.parametrize("flag", ["--rtol", "--atol"])
def test_cli_refuses_non_finite_or_negative_tolerance(golden_file, tmp_path, capsys, flag, value):
    """Old behaviour: --atol nan (or --rtol nan) passed any candidate."""
    cand = {k: np.zeros_like(v) for k, v in np.load(golden_file).items() if not k.startswith("meta/")}
    other = _save(tmp_path / "zeros.npz", cand)
    assert main(["golden", "compare", str(golden_file), str(other), f"{flag}={value}"]) == 2
    out, err = capsys.readouterr()
    assert "PASS" not in out and out == ""
    assert len(err.strip().splitlines()) == 1 and f"{flag} must be a finite number ≥ 0, got {float(value)!r}" in err


@pytest.mark.parametrize("kw", [dict(rtol=float("nan")), dict(atol=float("nan")), dict(rtol=-1.0),
                                dict(atol=float("inf")), dict(rtol=np.float64("nan"))])
def test_compare_refuses_non_finite_or_negative_tolerance(golden_file, kw):
    with pytest.raises(ValueError, match="must be a finite number ≥ 0"):
        compare(golden_file, golden_file, **kw)


def test_explicit_tolerances_replace_the_defaults(golden_file):
    g = dict(np.load(golden_file))
    g["grad/W_Q"] = g["grad/W_Q"] * (1 + 1e-6)
    assert compare(golden_file, g).failed_keys == ["grad/W_Q"]
    assert compare(golden_file, g, rtol=1e-5, atol=0).ok
    assert not compare(golden_file, g, rtol=0, atol=0).ok


# --------------------------------------------------------------------------------------------
# candidates that are not real numbers are refused by key
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("convert, what", [
    (lambda a: a.astype(np.complex128), "complex"),
    (lambda a: a.astype(np.complex128) + 1e-3j, "complex"),
    (lambda a: a > 0, "bool"),
    (lambda a: a.astype(str), "string"),
])
def test_non_real_candidate_is_refused_naming_the_key(golden_file, tmp_path, capsys, convert, what):
    """Old behaviour: a complex candidate passed (imaginary part dropped with a warning)."""
    g = dict(np.load(golden_file))
    g["grad/W_K"] = convert(g["grad/W_K"])
    with pytest.raises(TypeError, match=rf"candidate 'grad/W_K' has dtype .*\({what}\); refused, never cast"):
        compare(golden_file, g)
    cand = _save(tmp_path / "c.npz", g)
    assert main(["golden", "compare", str(golden_file), str(cand)]) == 2
    out, err = capsys.readouterr()
    assert "PASS" not in out and "'grad/W_K'" in err and what in err


def test_object_candidate_is_refused(golden_file):
    g = dict(np.load(golden_file))
    g["output/F"] = g["output/F"].astype(object)
    with pytest.raises(TypeError, match="candidate 'output/F' has dtype object"):
        compare(golden_file, g)


def test_integer_candidate_is_compared_not_refused(golden_file):
    """Integers are real numbers (exact): compared, and here wrong."""
    g = dict(np.load(golden_file))
    g["output/F"] = np.zeros(g["output/F"].shape, dtype=np.int64)
    res = compare(golden_file, g)
    assert res.failed_keys == ["output/F"]


# --------------------------------------------------------------------------------------------
# non-finite values: a reference NaN/±inf matches only itself; a candidate's fails a finite reference
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def nonfinite_ref(golden_file):
    g = dict(np.load(golden_file))
    F = g["output/F"].copy()
    F[[1, 2, 3]] = [np.nan, np.inf, -np.inf]
    g["output/F"] = F
    return g


@pytest.mark.parametrize("cand_values, ok", [
    ([np.nan, np.inf, -np.inf], True),
    ([0.0, 0.0, 0.0], False),  # old behaviour: NaN/inf references passed any finite candidate
    ([np.nan, -np.inf, np.inf], False),  # old behaviour: +inf vs −inf shown "ok"
    ([np.inf, np.inf, -np.inf], False),
    ([np.nan, np.inf, np.nan], False),
    ([np.nan, 1e308, -np.inf], False),
])
def test_non_finite_reference_matches_only_itself(nonfinite_ref, cand_values, ok):
    cand = dict(nonfinite_ref)
    F = cand["output/F"].copy()
    F[[1, 2, 3]] = cand_values
    cand["output/F"] = F
    res = compare(nonfinite_ref, cand)
    assert res.ok is ok
    if not ok:
        row = res.first_failure
        assert row.key == "output/F" and row.status == "NONFINITE" and row.worst_index[0] in (1, 2, 3)


def test_non_finite_reference_in_the_cli(nonfinite_ref, tmp_path, capsys):
    ref = _save(tmp_path / "ref.npz", nonfinite_ref)
    cand = dict(nonfinite_ref)
    cand["output/F"] = np.where(np.isfinite(cand["output/F"]), cand["output/F"], 1.0)
    assert main(["golden", "compare", str(ref), str(_save(tmp_path / "c.npz", cand))]) == 1
    assert "FAIL: output/F" in capsys.readouterr().out
    assert main(["golden", "compare", str(ref), str(ref)]) == 0


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_candidate_fails_a_finite_reference(golden_file, value):
    g = dict(np.load(golden_file))
    W = g["grad/W_O"].copy()
    W[4, 7] = value
    g["grad/W_O"] = W
    res = compare(golden_file, g, rtol=1e-3, atol=1e-3)
    assert res.failed_keys == ["grad/W_O"] and res.rows[-3].status == "NONFINITE"
    assert res.first_failure.worst_index == (4, 7) and "NONFINITE" in res.table()


def test_huge_difference_does_not_overflow_into_a_pass(golden_file):
    g = dict(np.load(golden_file))
    g["output/attn"] = np.where(np.load(golden_file)["output/attn"] > 0, -1.7e308, 1.7e308)
    ref = dict(np.load(golden_file))
    ref["output/attn"] = -g["output/attn"]
    assert compare(ref, g).failed_keys == ["output/attn"]


# --------------------------------------------------------------------------------------------
# sections: partial candidates, and a check of nothing is an error
# --------------------------------------------------------------------------------------------
def test_candidate_with_only_outputs_grads_and_trajectory_passes(golden_file, tmp_path, capsys):
    """Old behaviour: such a candidate failed as MISSING on input/*, param/*."""
    g = np.load(golden_file)
    cand = {k: g[k] for k in g.files if k.startswith(("output/", "grad/", "trajectory/"))}
    path = _save(tmp_path / "part.npz", cand)
    assert compare(golden_file, path).ok
    assert main(["golden", "compare", str(golden_file), str(path)]) == 0
    assert "PASS" in capsys.readouterr().out
    # inputs are checked only on request
    res = compare(golden_file, path, sections=("input", "output"))
    assert set(res.failed_keys) == {"input/P", "input/z"} and res.first_failure.status == "MISSING"


def test_sections_option_checks_only_those_sections(golden_file, tmp_path, capsys):
    g = np.load(golden_file)
    cand = {k: g[k] for k in g.files if k.startswith(("output/", "grad/"))}
    path = _save(tmp_path / "og.npz", cand)
    assert main(["golden", "compare", str(golden_file), str(path), "--sections", "output", "grad"]) == 0
    capsys.readouterr()
    assert main(["golden", "compare", str(golden_file), str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL: trajectory/lr, trajectory/loss" in out
    grads = {f"grad/{k}" for k in ("W_Q", "W_K", "W_V", "W_O")}
    assert {r.key for r in compare(golden_file, path, sections=["grad"]).rows} == grads


def test_empty_check_is_an_error(golden_file, tmp_path, capsys):
    g = {k: v for k, v in np.load(golden_file).items() if not k.startswith("trajectory/")}
    with pytest.raises(ValueError, match="nothing to compare"):
        compare(g, g, sections=["trajectory"])
    ref = _save(tmp_path / "notraj.npz", g)
    assert main(["golden", "compare", str(ref), str(ref), "--sections", "trajectory"]) == 2
    assert "nothing to compare" in capsys.readouterr().err
    with pytest.raises(ValueError, match="sections must be a non-empty subset"):
        compare(golden_file, golden_file, sections=[])
    with pytest.raises(ValueError, match="sections must be a non-empty subset"):
        compare(golden_file, golden_file, sections=["outputs"])


def test_candidate_without_any_checked_key_fails(golden_file):
    res = compare(golden_file, {"F": np.zeros(16)})
    assert not res.ok and {r.status for r in res.rows} == {"MISSING"}
    assert "the candidate has none of the checked keys" in res.table()
