"""``refimpl --version`` prints the package version (``refimpl.__version__``) and exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

import refimpl
from refimpl.cli import main


def test_version_flag_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"refimpl {refimpl.__version__}"


def test_version_from_the_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "refimpl", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"refimpl {refimpl.__version__}"
