"""Packaging and layers: what `pip install` puts where, imports flowing one way, lint.

- setup.cfg lists every package folder (refimpl/**, and validation/**, benchmarks/** and
  examples/** under the refimpl namespace), so nothing is left out of an install;
- a non-editable install of the tracked tree has no top-level ``validation``, ``benchmarks`` or
  ``examples``;
- the import-layer contract of setup.cfg (import-linter) holds on that install;
- ruff finds nothing;
- ``python -m refimpl`` runs the command line.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = {"refimpl": "refimpl", "validation": "refimpl.validation", "benchmarks": "refimpl.benchmarks",
             "examples": "refimpl.examples"}


def _declared_packages() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return {p.strip() for p in cfg["options"]["packages"].split() if p.strip()}


def _package_folders() -> set[str]:
    out = set()
    for top, name in NAMESPACE.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            if "__pycache__" in rel.parts:
                continue
            out.add(".".join([name, *rel.parts]) if rel.parts else name)
    return out


def test_setup_cfg_lists_every_package_folder():
    assert _declared_packages() == _package_folders()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The tracked tree installed (no deps) into a fresh target folder."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        dst = src / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / f).is_file():
            shutil.copy2(ROOT / f, dst)
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(src)], check=True, capture_output=True)
    return target


def test_install_has_no_generic_top_level_packages(installed):
    top = {p.name for p in installed.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", ".egg-info"))}
    assert "validation" not in top and "benchmarks" not in top and "examples" not in top
    assert (installed / "refimpl" / "validation" / "runner.py").is_file()
    assert (installed / "refimpl" / "benchmarks" / "run.py").is_file()
    assert (installed / "refimpl" / "examples" / "torch" / "common.py").is_file()
    assert (installed / "refimpl" / "py.typed").is_file()


def test_import_layers_hold(installed):
    pytest.importorskip("importlinter", reason="import-linter not installed (pip install -e '.[test]')")
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(installed)}
    res = subprocess.run([str(lint), str(ROOT / "setup.cfg")], capture_output=True, text=True, env=env,
                         cwd=installed)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff not installed (pip install -e '.[test]')")
    res = subprocess.run([str(ruff), "check", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def test_python_dash_m_refimpl_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "refimpl", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "validate" in res.stdout


def test_no_module_is_longer_than_700_lines():
    """A module that grows past 700 lines is split (the contract issue: li2024/checks.py had 1,881)."""
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    long = {f: n for f in files if (ROOT / f).is_file()
            and (n := len((ROOT / f).read_text(encoding="utf-8").splitlines())) > 700}
    assert files and not long, f"modules longer than 700 lines: {long}"
