"""Numba's cache must not serve stale machine code when a kernel's DEPENDENCY changes.

Numba validates a cached function by the stamp of its own source file only. A refimpl kernel
that inlines or calls a function from another file (the vector exp/tanh of ``core/vmath.py``,
``core/kernels.row_dots``) would keep the old compiled code after that other file is edited.
``refimpl.core.jit`` adds the hash of every kernel source to the stamp. The test copies the
package, adds a kernel in one file calling a helper in another, runs it, edits ONLY the helper,
and runs it again in a fresh process: the new value must appear.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(pkg_parent: Path, cache: Path) -> str:
    code = "from refimpl._t_kernel import f; print(f(3.0))"
    env = {"PYTHONPATH": str(pkg_parent), "NUMBA_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=pkg_parent)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_editing_a_helper_file_recompiles_the_kernels_that_use_it(tmp_path):
    pkg = tmp_path / "src" / "refimpl"
    shutil.copytree(ROOT / "refimpl", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "core" / "_t_helper.py").write_text(textwrap.dedent("""
        from refimpl.core.jit import njit

        @njit(inline="always")
        def g(x):
            return x + 1.0
    """))
    (pkg / "_t_kernel.py").write_text(textwrap.dedent("""
        from refimpl.core._t_helper import g
        from refimpl.core.jit import njit

        @njit
        def f(x):
            return g(x) * 2.0
    """))
    cache = tmp_path / "cache"
    assert _run(tmp_path / "src", cache) == "8.0"
    assert _run(tmp_path / "src", cache) == "8.0"  # served from the cache
    assert any(cache.rglob("*.nbi"))
    helper = pkg / "core" / "_t_helper.py"
    helper.write_text(helper.read_text().replace("x + 1.0", "x + 2.0"))  # only the helper changes
    assert _run(tmp_path / "src", cache) == "10.0"
