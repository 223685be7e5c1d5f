"""The validation cache: one pickled value and one JSON sidecar per computation (issue 14).

An entry of ``ctx.cached(name, config, fn)`` lives in the cache folder (``--cache-dir``, default
``<out>/.cache``) as two files with the same stem ``<name>-<key>``:

- ``<stem>.pkl``: the value, pickled (the bytes are written as computed, by the client only);
- ``<stem>.json``: the sidecar — name, key, config, the code units and their hashes, the digest of
  the local functions' bytecode, refimpl's version, when and where it was written, size, seconds.

The key hashes (name, config, the code the computation depends on, refimpl's version); see
:mod:`refimpl.validation.codedeps` for what "depends on" means. Both files are written atomically
(sidecar first, value last), so an entry exists exactly when its ``.pkl`` exists, a reader never
sees half a file, and an interrupted run keeps every entry written so far.

``refimpl cache info`` lists the entries and says which are stale (a code unit they hashed has
changed since, so no current run can reach them); ``refimpl cache prune`` deletes stale entries,
entries without a sidecar (written before sidecars existed: their keys are not reachable either),
sidecars without a value, and temporary files left by killed writers.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refimpl.core.io import atomic_write_bytes
from refimpl.validation.codedeps import CodeIndex, reach
from refimpl.validation.jsonable import jsonable, strict

SIDECAR_FORMAT = 1
TEMP_GRACE_S = 300.0  # a temp file older than this is a leftover (atomic writes take well under a second)


@dataclass
class Entry:
    """One cache entry's identity: key, file stem and what the key hashes."""

    name: str
    config: Any
    key: str
    stem: str
    code: dict  # unit -> hash
    fn_code: str | None  # digest of the local functions' bytecode
    version: str
    exclusive: bool = False
    functions: tuple = ()  # "qualname:digest" of the hashed local functions

    def sidecar(self, size: int, seconds: float) -> dict:
        return {
            "format": SIDECAR_FORMAT, "name": self.name, "key": self.key, "config": strict(self.config),
            "code": self.code, "fn_code": self.fn_code, "functions": list(self.functions), "refimpl": self.version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "size": size, "seconds": round(seconds, 3),
            "host": socket.gethostname(), "pid": os.getpid(),
        }


def make_entry(name: str, config: Any, fn, index: CodeIndex, *, code=None, override: str | None = None,
               exclusive: bool = False) -> Entry:
    """The entry of ``ctx.cached(name, config, fn, code=...)``; ``override`` replaces the code
    part by a fixed string (tests)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"cached: name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise TypeError(f"cached: fn must be callable, got {type(fn).__name__}")
    if override is not None:
        code_map, fn_code, functions = {"<override>": str(override)}, None, ()
    else:
        r = reach(fn, index)
        units = index.units(r.modules) if code is None else index.check_units(code)
        code_map, fn_code, functions = {u: index.hashes[u] for u in units}, r.digest(), tuple(r.functions())
    blob = json.dumps({"name": name, "config": config, "code": code_map, "fn": fn_code, "refimpl": index.version},
                      sort_keys=True, default=jsonable)
    key = hashlib.sha256(blob.encode()).hexdigest()[:24]
    return Entry(name, config, key, f"{name.replace('/', '_')}-{key}", code_map, fn_code, index.version,
                 bool(exclusive), functions)


@dataclass
class Cache:
    """The cache folder as one run sees it. With ``use_cache=False`` (``--no-cache``) entries not
    written by this run are ignored (and overwritten); entries this run wrote are reused, so a
    computation requested by several modules still runs once."""

    root: Path
    use_cache: bool = True
    fresh: set = field(default_factory=set)  # keys written by this run
    written: int = 0

    def __post_init__(self):
        self.root = Path(self.root)

    def value_path(self, entry: Entry) -> Path:
        return self.root / f"{entry.stem}.pkl"

    def available(self, entry: Entry) -> bool:
        return (self.use_cache or entry.key in self.fresh) and self.value_path(entry).is_file()

    def load_bytes(self, entry: Entry) -> bytes | None:
        if not (self.use_cache or entry.key in self.fresh):
            return None
        try:
            return self.value_path(entry).read_bytes()
        except OSError:
            return None

    def load(self, entry: Entry) -> tuple[bool, Any]:
        """(True, value) if the entry is present and readable; a corrupt entry counts as absent
        (it is recomputed and overwritten, never trusted)."""
        blob = self.load_bytes(entry)
        if blob is None:
            return False, None
        try:
            return True, pickle.loads(blob)
        except Exception:
            return False, None

    def store(self, entry: Entry, blob: bytes, seconds: float) -> None:
        """Write the sidecar, then the value (both atomically). Only the client calls this."""
        atomic_write_bytes(self.root / f"{entry.stem}.json",
                           json.dumps(entry.sidecar(len(blob), seconds), indent=1, default=jsonable).encode())
        atomic_write_bytes(self.value_path(entry), blob)
        self.fresh.add(entry.key)
        self.written += 1

    def count(self) -> int:
        try:
            return sum(1 for _ in self.root.glob("*.pkl"))
        except OSError:
            return 0


# ---- refimpl cache info / prune --------------------------------------------------------------------


@dataclass
class EntryStatus:
    stem: str
    name: str
    size: int  # bytes, value + sidecar
    seconds: float | None
    created: str | None
    state: str  # "current", "stale", "no sidecar", "no value"
    why: str = ""


def scan(root, index: CodeIndex | None = None) -> tuple[list[EntryStatus], list[Path]]:
    """Every entry of the cache folder with its state, and the leftover temporary files."""
    root = Path(root)
    index = index or CodeIndex.build()
    if not root.is_dir():
        return [], []
    values = {p.stem: p for p in root.glob("*.pkl")}
    sides = {p.stem: p for p in root.glob("*.json")}
    now = time.time()
    temps = [p for p in root.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")
             and now - p.stat().st_mtime > TEMP_GRACE_S]
    out = []
    for stem in sorted(set(values) | set(sides)):
        v, s = values.get(stem), sides.get(stem)
        size = sum(p.stat().st_size for p in (v, s) if p is not None)
        meta = None
        if s is not None:
            try:
                meta = json.loads(s.read_text())
            except (OSError, ValueError):
                meta = None
        name = meta.get("name", stem) if meta else stem.rsplit("-", 1)[0]
        secs = meta.get("seconds") if meta else None
        created = meta.get("created") if meta else None
        if v is None:
            out.append(EntryStatus(stem, name, size, secs, created, "no value", "sidecar without a value"))
            continue
        if meta is None:
            out.append(EntryStatus(stem, name, size, secs, created, "no sidecar",
                                   "no (readable) sidecar: written by an older refimpl"))
            continue
        changed = [u for u, h in (meta.get("code") or {}).items() if index.hashes.get(u) != h]
        if meta.get("refimpl") != index.version:
            changed.append(f"refimpl {meta.get('refimpl')} -> {index.version}")
        state = "stale" if changed else "current"
        out.append(EntryStatus(stem, name, size, secs, created, state,
                               ("changed: " + ", ".join(changed)) if changed else ""))
    return out, temps


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def info_text(root, index: CodeIndex | None = None) -> str:
    entries, temps = scan(root, index)
    if not entries and not temps:
        return f"{root}: no cache entries"
    lines = [f"{'entry':<48} {'size':>9} {'compute':>9}  {'created':<24} state"]
    for e in entries:
        secs = f"{e.seconds:.1f} s" if e.seconds is not None else "-"
        lines.append(f"{e.name[:48]:<48} {_size(e.size):>9} {secs:>9}  {(e.created or '-'):<24} {e.state}"
                     + (f" ({e.why})" if e.why and e.state != "current" else ""))
    total = sum(e.size for e in entries)
    by = {s: [e for e in entries if e.state == s] for s in ("current", "stale", "no sidecar", "no value")}
    summary = (f"{root}: {len(entries)} entries, {_size(total)}; {len(by['current'])} current, "
               f"{len(by['stale'])} stale ({_size(sum(e.size for e in by['stale']))})")
    if by["no sidecar"] or by["no value"]:
        summary += f", {len(by['no sidecar']) + len(by['no value'])} incomplete"
    if temps:
        summary += f", {len(temps)} leftover temporary file(s)"
    prunable = len(entries) - len(by["current"]) + len(temps)
    summary += "; `refimpl cache prune` removes the stale and incomplete ones" if prunable else ""
    return "\n".join(lines + [summary])


def prune(root, index: CodeIndex | None = None) -> tuple[int, int]:
    """Delete stale and incomplete entries and leftover temporary files; returns (files, bytes)."""
    root = Path(root)
    entries, temps = scan(root, index)
    n = size = 0
    for e in entries:
        if e.state == "current":
            continue
        for p in (root / f"{e.stem}.pkl", root / f"{e.stem}.json"):
            try:
                s = p.stat().st_size
                p.unlink()
                n, size = n + 1, size + s
            except FileNotFoundError:
                pass
    for p in temps:
        try:
            s = p.stat().st_size
            p.unlink()
            n, size = n + 1, size + s
        except FileNotFoundError:
            pass
    return n, size
