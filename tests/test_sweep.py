"""``refimpl sweep`` (refimpl/validation/sweep.py): the grid and its table at tiny sizes, bad
overrides refused before any work with nothing written, resuming after an interruption computes
only the missing runs, ``--workers 2`` gives the serial numbers, and a serial sweep never imports
Dask."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refimpl import yang2024
from refimpl.cli import main, workers_arg
from refimpl.validation import sweep as S

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--set", "H=2,4", "--set", "eta_Q=0.5,1.0", "--seeds", "0-1"]


def _rows(out):
    with open(Path(out) / "sweep.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_grid_table_and_plot(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sweep", "yang2024", *GRID, "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} == {".cache", "sweep-spec.json", "sweep.csv", "sweep.json", "sweep.png"}
    rows = _rows(out)
    assert [(r["H"], r["eta_Q"], r["seed"]) for r in rows] == [
        (H, e, s) for H in ("2", "4") for e in ("0.5", "1.0") for s in ("0", "1")]
    assert list(rows[0])[:5] == ["model", "H", "eta_Q", "seed", "steps"]
    assert {"excess", "loss", "history/loss", "wall_s", "backend", "engine", "code_version", "status"} <= set(rows[0])
    assert all(r["model"] == "yang2024" and r["status"] == "ok" and r["backend"] == "numba" for r in rows)
    # every row is the run it names
    for r in rows:
        traj = yang2024.train(yang2024.preset("tiny", H=int(r["H"]), eta_Q=float(r["eta_Q"])), int(r["seed"]),
                              backend="numba", progress=False)
        assert float(r["excess"]) == traj.final("excess") and int(r["steps"]) == traj.steps_done
        assert float(r["history/loss"]) == float(traj.history["loss"][-1])
    js = json.loads((out / "sweep.json").read_text())
    assert js["metric"] == "excess" and len(js["rows"]) == 8 and js["rows"][3]["excess"] == float(rows[3]["excess"])
    assert js["spec"]["grid"] == {"H": [2, 4], "eta_Q": [0.5, 1.0]}
    assert "8 runs" in capsys.readouterr().out


def test_final_metrics_take_every_scalar_series_but_counters_and_clocks():
    from refimpl.core.trajectory import Trajectory

    t = Trajectory("x", None, 0, {}, history={"step": np.arange(3), "loss": np.array([3.0, 2.0, 1.0]),
                                              "step_time": np.ones(3)},
                   records={"step": np.array([0, 3]), "time": np.array([0.0, 1.0]), "loss": np.array([5.0, 0.5]),
                            "C": np.ones((2, 3, 3))})
    assert S.final_metrics(t) == {"loss": 0.5, "history/loss": 1.0}


def test_values_seeds_and_workers_parsing():
    assert S.split_values("0.2, 0.4,0.6") == ["0.2", "0.4", "0.6"]
    assert S.split_values("[1,2],[1,3]") == ["[1,2]", "[1,3]"]
    assert S.split_values('"a,b",c') == ['"a,b"', "c"]
    assert S.parse_grid(["data.train_shifts=[1,2],[1,3]"]) == {"data.train_shifts": [(1, 2), (1, 3)]}
    assert S.parse_seeds("0-3,8") == [0, 1, 2, 3, 8] and S.parse_seeds("5") == [5]
    for bad in ("a", "3-1", "-1", "0,0", "1-2-3"):
        with pytest.raises(ValueError, match="--seeds"):
            S.parse_seeds(bad)
    assert workers_arg("auto") == len(os.sched_getaffinity(0)) and workers_arg("3") == 3


@pytest.mark.parametrize("argv, needle", [
    (["--set", "nope=1,2"], "nope"),
    (["--set", "H=2,0"], "H must be an int ≥ 1"),
    (["--set", "H=2,x"], "H='x'"),
    (["--set", "loss=population,bogus"], "loss must be one of"),
    (["--set", "H=2", "--set", "H=4"], "H is given twice"),
    (["--set", "H=2,2"], "listed twice"),
    (["--set", "H"], "FIELD=VALUE"),
    (["--seeds", "3-1"], "--seeds"),
    (["--backend", "torch"], "--backend"),
    (["--preset", "nope"], "preset"),
    (["--steps", "-1"], "--steps"),
    (["--workers", "0"], "--workers"),
])
def test_bad_overrides_fail_before_any_work(tmp_path, capsys, argv, needle):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) if argv[0] == "--workers" else _nothing():
        assert main(["sweep", "yang2024", *argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and needle in err[-1], err
    assert len(err) == 1 or argv[0] == "--workers"  # argparse prints its usage line first
    assert not out.exists()


def test_a_bad_combination_is_refused_before_work(tmp_path, capsys):
    """yang2024 needs N ≤ K: K = 4 and N = 6 are each valid on the preset, not together."""
    out = tmp_path / "o"
    assert main(["sweep", "yang2024", "--set", "K=4,8", "--set", "N=3,6", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--set K=4, N=6: N must be" in err[0] and not out.exists()
    assert main(["sweep", "li2024", "--set", "data.alpha=0.4,2", "--out", str(out), "--quiet"]) == 2
    assert "--set data.alpha=2: alpha must be in [0, 1]" in capsys.readouterr().err and not out.exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_output_folder_rules(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["sweep", "yang2024", "--set", "H=2,4", "--out", str(out), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    other = tmp_path / "other"
    assert main(["sweep", "yang2024", "--set", "H=2,4", "--out", str(other), "--quiet"]) == 0
    assert main(["sweep", "yang2024", "--set", "H=2,4", "--out", str(other), "--quiet"]) == 0  # same sweep: resumed
    assert "resuming" in capsys.readouterr().out
    assert main(["sweep", "yang2024", "--set", "H=2,8", "--out", str(other), "--quiet"]) == 2  # another sweep
    assert "holds a different sweep" in capsys.readouterr().err
    assert main(["sweep", "yang2024", "--set", "H=2,8", "--out", str(other), "--quiet", "--overwrite"]) == 0
    assert "1 computed, 1 from the cache" in capsys.readouterr().out  # H = 2 is reused
    (tmp_path / "file").write_text("x")
    assert main(["sweep", "yang2024", "--out", str(tmp_path / "file"), "--quiet"]) == 2


def test_an_unknown_metric_names_the_available_ones(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["sweep", "yang2024", "--set", "H=2,4", "--metric", "nope", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "'excess'" in err and (out / "sweep.csv").exists()
    assert main(["sweep", "yang2024", "--set", "H=2,4", "--metric", "history/loss", "--out", str(out), "--quiet"]) == 0
    assert (out / "sweep.png").exists() and "0 computed" in capsys.readouterr().out


def test_resume_computes_only_the_missing_runs(tmp_path, capsys, monkeypatch):
    """Ctrl-C after two of four runs keeps them; the same command again trains the other two."""
    real = yang2024.train
    calls = []
    stop_after = [2]

    def counting_train(cfg, seed, **kw):
        if len(calls) == stop_after[0]:
            raise KeyboardInterrupt
        calls.append((cfg.H, seed))
        return real(cfg, seed, **kw)

    monkeypatch.setattr(yang2024, "train", counting_train)
    out = tmp_path / "o"
    argv = ["sweep", "yang2024", "--set", "H=2,4", "--seeds", "0-1", "--out", str(out), "--quiet"]
    assert main(argv) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    assert calls == [(2, 0), (2, 1)] and not (out / "sweep.csv").exists()
    assert len(list((out / ".cache").glob("*.pkl"))) == 2
    stop_after[0] = None
    assert main(argv) == 0
    assert calls == [(2, 0), (2, 1), (4, 0), (4, 1)]  # only the missing runs
    assert "4 runs (2 computed, 2 from the cache)" in capsys.readouterr().out
    assert len(_rows(out)) == 4


def test_a_diverged_run_is_a_row(tmp_path, capsys, monkeypatch):
    from refimpl.core.errors import NonFiniteError

    real = yang2024.train

    def diverging(cfg, seed, **kw):
        if cfg.H == 4:
            raise NonFiniteError("loss is NaN at step 3")
        return real(cfg, seed, **kw)

    monkeypatch.setattr(yang2024, "train", diverging)
    out = tmp_path / "o"
    assert main(["sweep", "yang2024", "--set", "H=2,4", "--out", str(out), "--quiet"]) == 0
    rows = _rows(out)
    assert rows[0]["status"] == "ok" and rows[1]["status"].startswith("diverged: NonFiniteError: loss is NaN")
    assert rows[1]["excess"] == "nan" and "1 diverged" in capsys.readouterr().out
    assert main(["sweep", "yang2024", "--set", "H=4,8", "--out", str(tmp_path / "all"), "--quiet"]) in (0, 1)


def test_serial_sweep_never_imports_dask(tmp_path):
    code = ("import sys; from refimpl.cli import main; "
            f"rc = main(['sweep', 'yang2024', '--set', 'H=2,4', '--out', {str(tmp_path / 'o')!r}, '--quiet']); "
            "assert rc == 0, rc; bad = [m for m in sys.modules if m.split('.')[0] in ('distributed', 'dask')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_workers_2_equals_serial(tmp_path, capsys):
    pytest.importorskip("distributed")
    argv = ["sweep", "li2024", "--set", "data.alpha=0.4,0.8", "--seeds", "0-1", "--steps", "60", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "serial")]) == 0
    assert main([*argv, "--out", str(tmp_path / "dask"), "--workers", "2"]) == 0
    assert "on dask (2 workers, local)" in capsys.readouterr().out
    a, b = _rows(tmp_path / "serial"), _rows(tmp_path / "dask")
    skip = {"wall_s", "engine"}
    assert [{k: v for k, v in r.items() if k not in skip} for r in a] == \
        [{k: v for k, v in r.items() if k not in skip} for r in b]
    assert b[0]["engine"].startswith("dask") and a[0]["engine"] == "serial"
