"""Atomic file output that respects the umask: the one writer every part of refimpl uses.

A file is written to a temporary name in the destination folder and renamed over the target
(``os.replace``), so a reader never sees a half-written file and an interrupted write leaves the
previous file intact. ``tempfile.mkstemp`` creates files with mode 0600; before the rename the
file gets the mode a plain ``open(path, "w")`` would give it (0666 minus the umask: 0644 under
umask 022), so reports, figures, golden files and caches written on shared storage stay readable
by colleagues.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the classic read (set and restore)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 without the umask's bits."""
    return 0o666 & ~current_umask()


def _atomic(path, write: Callable[[Any], None], suffix: str = ".tmp") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
    return _atomic(path, lambda fh: fh.write(data))


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, **dumps_kwargs) -> Path:
    """``json.dumps(obj, **dumps_kwargs)`` written atomically (indent 2 unless given)."""
    dumps_kwargs.setdefault("indent", 2)
    return atomic_write_text(path, json.dumps(obj, **dumps_kwargs))


def atomic_savez(path, payload: Mapping[str, np.ndarray]) -> Path:
    """``np.savez`` to ``path`` atomically: never a half-written ``.npz``."""
    buf = io.BytesIO()
    np.savez(buf, **payload)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_savefig(path, fig, **savefig_kwargs) -> Path:
    """Save a matplotlib figure atomically (PNG unless ``format`` is given)."""
    savefig_kwargs.setdefault("format", "png")
    buf = io.BytesIO()
    fig.savefig(buf, **savefig_kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def check_output_dir(path, *, overwrite: bool = False, what: str = "--out") -> Path:
    """Check, before any work, that ``path`` can receive a run's files: not an existing file, not a
    non-empty folder (unless ``overwrite``), and writable (its first existing ancestor). Returns it
    as a Path; raises ``ValueError`` with one clear line otherwise. Nothing is created."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what} {p} is a file, not a folder")
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise ValueError(f"{what} {p} is not empty; refusing to overwrite it (choose another folder or add --overwrite)")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{what} {p}: {probe} is a file, so the folder cannot be created")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {p}: {probe} is not writable")
    return p


def check_output_file(path, *, what: str = "--out") -> Path:
    """Check, before any work, that ``path`` can be written as a file: not a folder, its folder
    writable (or creatable). Raises ``ValueError`` with one clear line otherwise."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a folder; give a file name (e.g. {p / 'out.npz'})")
    probe = p.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{what} {p}: {probe} is a file, so the folder cannot be created")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {p}: {probe} is not writable")
    if p.exists() and not os.access(p, os.W_OK) and not os.access(p.parent, os.W_OK):
        raise ValueError(f"{what} {p} is not writable")
    return p


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None (unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
