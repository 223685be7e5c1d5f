"""Fuzz suite beyond the table of tests/test_fuzz.py (issue 15, "Trustworthy under bad input").

``test_any_config_field_refuses_a_value_no_field_accepts`` (hypothesis) draws config fields and
never-valid values, ``test_cli_permission_denied_folder_is_one_line`` runs four commands into a
folder the user may not write into, and ``test_cli_in_a_fresh_process_is_one_line`` runs four
cases in a new interpreter (so warnings printed before the error line are seen too).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from test_fuzz import GOLDEN, MODELS, _file, _snapshot

from refimpl.models import REGISTRY


# ------------------------------------------------------------------------------------------------
# a folder the user may not write into (root ignores permissions: run as ``nobody`` then)
# ------------------------------------------------------------------------------------------------
def _as_other_user():
    """(command prefix, python) running as a user the permissions apply to, or None."""
    import shutil
    import sys

    if os.geteuid() != 0:
        return [], sys.executable
    runuser = shutil.which("runuser")
    py = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    return ([runuser, "-u", "nobody", "--"], py) if runuser and Path(py).exists() else None


DENIED = {
    "train": ["train", "li2024", "--quiet", "--steps", "2", "--out", "{locked}/run"],
    "golden-export": ["golden", "export", "li2024", "--out", "{locked}/g.npz"],
    "validate": ["validate", "--quiet", "--profile", "quick", "--paper", "li2024", "--only", "training",
                 "--out", "{locked}/report"],
    "bench-plot": ["bench", "--quick", "--sizes", "small", "--model", "huang2023", "--backend", "numpy",
                   "--plot", "{locked}/plots"],
}


@pytest.mark.parametrize("cmd", sorted(DENIED))
def test_cli_permission_denied_folder_is_one_line(cmd, tmp_path):
    """Issue 15 (h): an output folder the user cannot write into is one line, exit 2, before any work."""
    import shutil
    import subprocess
    import sys
    import tempfile

    how = _as_other_user()
    if how is None:
        pytest.skip("running as root without runuser or a system Python of this version")
    prefix, py = how
    deps = [p for p in sys.path if p.endswith("site-packages")]  # numpy & co. (this environment's)
    if prefix and subprocess.run([*prefix, "test", "-r", str(Path(np.__file__))]).returncode:
        pytest.skip(f"user nobody cannot read this environment's numpy ({np.__file__})")
    root = Path(__file__).resolve().parents[1]
    shared = Path(tempfile.mkdtemp(prefix="refimpl-denied-"))
    try:
        shared.chmod(0o755)
        site = shared / "site" / "refimpl"  # the package as installed: validation/, benchmarks/ inside refimpl
        site.mkdir(parents=True)
        for p in (root / "refimpl").iterdir():
            (site / p.name).symlink_to(p)
        for sub in ("validation", "benchmarks", "examples"):
            (site / sub).symlink_to(root / sub)
        locked = shared / "locked"
        locked.mkdir()
        (locked / "keep.txt").write_text("keep me\n")
        locked.chmod(0o555 if prefix else 0o500)  # nobody (or this user) may not write here
        work = shared / "work"
        work.mkdir(mode=0o777)
        work.chmod(0o777)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "NUMBA_CACHE_DIR": str(work / "numba"),
               "PYTHONPATH": ":".join([str(site.parent), *deps]), "PYTHONDONTWRITEBYTECODE": "1"}
        argv = [a.format(locked=locked) for a in DENIED[cmd]]
        res = subprocess.run([*prefix, "env", *[f"{k}={v}" for k, v in env.items()], py, "-m", "refimpl", *argv],
                             capture_output=True, text=True, cwd=str(work), timeout=300)
        assert res.returncode == 2, res.stdout + res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "writable" in res.stderr or "Permission denied" in res.stderr, res.stderr
        assert sorted(p.name for p in locked.iterdir()) == ["keep.txt"]
        assert (locked / "keep.txt").read_text() == "keep me\n"
    finally:
        for p in [shared, *shared.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o700)
        shutil.rmtree(shared, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# hypothesis: any config field of any model, given a value no field accepts
# ------------------------------------------------------------------------------------------------
def _never_valid():
    from hypothesis import strategies as st

    return st.one_of(
        st.complex_numbers(allow_nan=False, allow_infinity=False).filter(lambda z: z.imag != 0),
        st.just(math.nan), st.just(-math.inf),
        st.text(max_size=8).map(lambda s: "junk:" + s),
        st.binary(min_size=1, max_size=4),
        st.lists(st.text(max_size=4).map(lambda s: "junk:" + s), min_size=1, max_size=3),
        st.builds(object),
    )


@pytest.mark.parametrize("model", MODELS)
def test_any_config_field_refuses_a_value_no_field_accepts(model):
    """Beyond the table: hypothesis draws a field of ``model``'s config and a value that is valid for
    no field (complex, NaN, −inf, an arbitrary string, bytes, a list of strings, an object); the
    preset must refuse it with ``ValueError``/``TypeError`` naming the field."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from refimpl.core.config import field_names

    mod = REGISTRY[model].load()
    fields = field_names(mod.preset("tiny"))

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(field=st.sampled_from(fields), value=_never_valid())
    def check(field, value):
        with pytest.raises((ValueError, TypeError)) as info:
            mod.preset("tiny", **{field: value})
        assert field.split(".")[-1] in str(info.value), str(info.value)

    check()


# ------------------------------------------------------------------------------------------------
# a few cases in a fresh interpreter: what a user sees (warnings, import-time output included)
# ------------------------------------------------------------------------------------------------
FRESH = {
    "train-out-existing-file": ["train", "li2024", "--quiet", "--steps", "2", "--out", "{file}"],
    "train-lr50-numpy-diverges": ["train", "li2024", "--quiet", "--set", "train.lr=50", "--out", "{dir}/new"],
    "golden-compare-atol-nan": ["golden", "compare", str(GOLDEN / "li2024-default-float64.npz"),
                                str(GOLDEN / "li2024-default-float64.npz"), "--atol", "nan"],
    "validate-out-file": ["validate", "--quiet", "--profile", "quick", "--paper", "li2024", "--out", "{file}"],
}


@pytest.mark.parametrize("case", sorted(FRESH))
def test_cli_in_a_fresh_process_is_one_line(case, tmp_path):
    import subprocess
    import sys

    file = Path(_file(tmp_path))
    argv = [a.format(file=file, dir=tmp_path) for a in FRESH[case]]
    before = _snapshot(tmp_path)
    res = subprocess.run([sys.executable, "-m", "refimpl", *argv], capture_output=True, text=True, cwd=tmp_path,
                         timeout=300)
    assert res.returncode in (1, 2), res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("refimpl: error:"), res.stderr
    assert _snapshot(tmp_path) == before
