"""Files refimpl writes get the permissions the umask allows (0644 under umask 022), atomically.

Before, every file was created through ``tempfile.mkstemp`` and renamed into place, so it kept
mkstemp's mode 0600 whatever the umask: a report on shared storage was unreadable by colleagues.
"""

from __future__ import annotations

import os
import stat

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from refimpl.cli import main  # noqa: E402
from refimpl.core import io  # noqa: E402


@pytest.fixture
def umask():
    old = os.umask(0o022)
    try:
        yield lambda m: os.umask(m)
    finally:
        os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writers_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert io.current_umask() == mask
    fig = plt.figure()
    paths = [io.atomic_write_bytes(tmp_path / "a.bin", b"x"), io.atomic_write_text(tmp_path / "b.md", "x"),
             io.atomic_write_json(tmp_path / "c.json", {"a": 1}), io.atomic_savez(tmp_path / "d.npz", {"x": np.ones(2)}),
             io.atomic_savefig(tmp_path / "e.png", fig)]
    plt.close(fig)
    for p in paths:
        assert _mode(p) == expected, f"{p.name}: {oct(_mode(p))} != {oct(expected)}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_cli_outputs_are_0644_under_umask_022(tmp_path, umask):
    umask(0o022)
    assert main(["golden", "export", "li2024", "--seed", "0", "--out", str(tmp_path / "g.npz")]) == 0
    assert main(["train", "li2024", "--steps", "2", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    files = [tmp_path / "g.npz", *(tmp_path / "run").iterdir()]
    assert len(files) == 4
    for p in files:
        assert _mode(p) == 0o644, f"{p.name}: {oct(_mode(p))}"


def test_a_failed_write_keeps_the_previous_file(tmp_path, umask):
    target = io.atomic_write_text(tmp_path / "r.md", "old")

    class Boom(Exception):
        pass

    def bad(fh):
        fh.write(b"half")
        raise Boom

    with pytest.raises(Boom):
        io._atomic(target, bad)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]
