"""The README's commands are the ones CI and users run; its PyTorch snippet produces a passing file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from refimpl.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_setup_is_two_commands_main_job_first():
    first, second = _bash_blocks()[:2]
    assert first.strip().startswith("pip install") and "refimpl validate --profile quick" in first
    assert second.strip().startswith("pip install") and "pytest" in second


def test_ci_runs_exactly_the_readmes_test_command():
    test_cmd = _bash_blocks()[1].strip()
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines, f".ci/run must run the README's test command {test_cmd!r}"


def test_pytorch_snippet_produces_a_candidate_that_compares_clean(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="torch not installed (pip install -e '.[parity]' to run this check)")
    snippet = re.search(r"```python\n(import numpy as np, torch\n.*?)```", README, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    assert main(["golden", "export", "li2024", "--seed", "0", "--out", "li.npz"]) == 0
    subprocess.run([sys.executable, "-c", snippet], check=True, cwd=tmp_path)
    assert main(["golden", "compare", "li.npz", "cand.npz"]) == 0
