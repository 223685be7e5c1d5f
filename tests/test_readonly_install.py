"""A read-only install used by another user works (issue: `RuntimeError: cannot cache function
'row_dots': no locator available` on import when neither the package folder, nor NUMBA_CACHE_DIR,
nor the user's home is writable).

The tracked tree is installed (no deps) into a temporary folder that is then made read-only, and
``refimpl train li2024 --preset tiny --steps 5 --backend numba`` runs from it with NUMBA_CACHE_DIR pointing at an
unwritable place and HOME at a missing folder. As root the run is done as user ``nobody`` (root
ignores file permissions) with the system Python of the same version and this environment's
site-packages; as another user, the permissions alone make the folders unwritable.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _install_read_only(tmp: Path) -> Path:
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(src)], check=True, capture_output=True)
    for p in [target, *target.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return target


def _runner():
    """(command prefix, python) to run as another user, or None when that is impossible here."""
    if os.geteuid() != 0:
        return [], sys.executable
    runuser = shutil.which("runuser")
    py = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not runuser or not Path(py).exists():
        return None
    return [runuser, "-u", "nobody", "--"], py


@pytest.fixture
def shared_tmp():
    """A temporary folder other users can traverse (pytest's tmp_path is private to its owner)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="refimpl-ro-"))
    path.chmod(0o755)
    yield path
    for p in [path, *path.rglob("*")]:
        try:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
        except OSError:
            pass
    shutil.rmtree(path, ignore_errors=True)


def test_train_from_a_read_only_install_as_another_user(shared_tmp):
    how = _runner()
    if how is None:
        pytest.skip("running as root without runuser or a system Python of this version")
    prefix, py = how
    tmp_path = shared_tmp
    target = _install_read_only(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    site = sysconfig.get_paths()["purelib"]
    if prefix and subprocess.run([*prefix, "test", "-r", str(Path(site) / "numpy" / "__init__.py")]).returncode:
        pytest.skip(f"user nobody cannot read this environment's packages ({site}); the check needs them")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "no-home"), "NUMBA_CACHE_DIR": "/proc/refimpl-unwritable",
           "PYTHONPATH": f"{target}:{site}", "TMPDIR": str(out)}
    cmd = [*prefix, "env", *[f"{k}={v}" for k, v in env.items()], py, "-m", "refimpl", "train", "li2024",
           "--preset", "tiny", "--steps", "5", "--backend", "numba", "--out", str(out / "run"), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=str(out), timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert str(target) in subprocess.run(
        [*prefix, "env", *[f"{k}={v}" for k, v in env.items()], py, "-c", "import refimpl; print(refimpl.__file__)"],
        capture_output=True, text=True, cwd=str(out)).stdout
    assert "caching compiled kernels in" in res.stderr  # the one warning that says where the cache went
    assert {p.name for p in (out / "run").iterdir()} >= {"params.npz", "summary.json"}
