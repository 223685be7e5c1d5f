"""The output folder of ``refimpl validate``: checked before any work, locked while a run uses it.

- :func:`check_dir`: ``--out`` / ``--cache-dir`` must be a folder (or creatable) in which a file
  can be created; otherwise a one-line ``ValueError`` before anything is computed.
- :class:`OutputLock`: ``<out>/.refimpl-validate.lock``, created atomically (``O_CREAT|O_EXCL``)
  with the holder's PID, host, start time and command, removed when the run ends (also on
  errors and Ctrl-C). A second run on the same folder stops with one line naming the holder. A
  lock left by a process that no longer exists (same host, PID gone) is taken over, with a
  message. A lock from another host cannot be checked and is respected.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

LOCK_NAME = ".refimpl-validate.lock"


class LockHeld(ValueError):
    """Another run holds the output folder."""


def check_dir(path, option: str) -> Path:
    """Create ``path`` if needed and make sure a file can be created in it; one-line ValueError."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{option} {p} is an existing file, not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{option} {p} cannot be created: {exc.strerror or exc}") from None
    try:
        tempfile.TemporaryFile(dir=p).close()
    except OSError as exc:
        raise ValueError(f"{option} {p} is not writable: {exc.strerror or exc}") from None
    return p


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class OutputLock:
    """Context manager holding ``<out>/.refimpl-validate.lock`` (module docstring)."""

    def __init__(self, out_dir, *, log=print):
        self.path = Path(out_dir) / LOCK_NAME
        self.log = log
        self.held = False

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv)}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                pid, host = holder.get("pid"), holder.get("host")
                if not holder:  # being written right now, or garbage: look again shortly
                    time.sleep(0.2)
                    holder = self._read()
                    pid, host = holder.get("pid"), holder.get("host")
                stale = (isinstance(pid, int) and host == socket.gethostname()
                         and (pid == os.getpid() or not _alive(pid)))
                if not stale and not (not holder and self._old()):
                    who = f"PID {pid} on {host}" if holder else "an unknown process (unreadable lock)"
                    since = f" since {holder.get('started')}" if holder.get("started") else ""
                    raise LockHeld(f"{self.path.parent} is in use by another `refimpl validate` ({who}{since}); "
                                   f"wait for it to finish, or delete {self.path} if that process is gone") from None
                if self._read() != holder:  # changed under us: someone else took it over
                    continue
                self.log(f"refimpl: taking over the lock of {self.path.parent} left by "
                         f"{'PID ' + str(pid) if holder else 'an unreadable lock file'} (no longer running)")
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
            self.held = True
            return
        raise LockHeld(f"could not lock {self.path.parent} (another run keeps taking it)")

    def _old(self) -> bool:
        try:
            return time.time() - self.path.stat().st_mtime > 60
        except OSError:
            return True

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                if self._read().get("pid") == os.getpid():
                    self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False
