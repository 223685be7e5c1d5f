"""The README's commands are the ones CI and users run; its golden-vector example (ten lines with
PyTorch) passes, and fails when the model is wrong."""

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


def _golden_example() -> str:
    return re.search(r"```python\n(import torch\nfrom refimpl.testing import golden, assert_matches\n.*?)```",
                     README, flags=re.S).group(1)


def test_the_golden_example_is_the_ten_line_path():
    code = _golden_example()
    body = [ln for ln in code.splitlines() if ln.strip() and not ln.startswith((" ", "def "))]
    assert body[1] == "from refimpl.testing import golden, assert_matches"
    assert len(body) <= 10 and body[-1].startswith("assert_matches(")  # the user's model aside


def test_the_golden_example_runs_and_its_assert_is_live(tmp_path):
    """The README's example passes with torch; the same code with the softmax over the wrong axis
    fails naming a key (the assert is not decorative)."""
    pytest.importorskip("torch", reason="torch not installed (pip install -e '.[parity]' to run this check)")
    code = _golden_example()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    wrong = code.replace("pq @ p[\"W_Q\"].T), dim=-1)", "pq @ p[\"W_Q\"].T), dim=0)")
    assert wrong != code
    res = subprocess.run([sys.executable, "-c", wrong], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode != 0 and "AssertionError: candidate does not match golden li2024" in res.stderr
    assert "first wrong key output/F (MISMATCH)" in res.stderr


def test_the_readme_commands_for_files_work(tmp_path, capsys):
    assert main(["golden", "export", "li2024", "--config", "default", "--out", str(tmp_path / "li.npz")]) == 0
    assert main(["golden", "compare", str(tmp_path / "li.npz"), str(tmp_path / "li.npz")]) == 0
    assert "PASS" in capsys.readouterr().out
