"""Golden vectors: versioned ``.npz`` files that other implementations are checked against.

File format (DESIGN.md, "Golden vectors"):

- ``meta/format`` = "refimpl-golden", ``meta/version`` (format version), ``meta/model``,
  ``meta/seed``, ``meta/dtype``, ``meta/config`` (JSON text), ``meta/refimpl`` (package version);
- ``param/*``, ``input/*``, ``output/*``, ``grad/*``, ``trajectory/*``: arrays, keys per model spec.

Strings are stored as 0-d unicode arrays, so files load with ``np.load(path)`` (no pickle).
:func:`compare` checks every array key of the reference against a candidate (any ``.npz`` with
those keys; its own ``meta/*`` keys are optional):
``|cand − ref| ≤ atol + rtol·|ref|`` elementwise; a missing key or a shape mismatch fails.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refimpl.core.io import atomic_savez

FORMAT = "refimpl-golden"
FORMAT_VERSION = "1"
SECTIONS = ("param", "input", "output", "grad", "trajectory")
DEFAULT_RTOL = 1e-9
DEFAULT_ATOL = 1e-12


DTYPES = ("float64", "float32")


def check_dtype(dtype: str) -> str:
    """The dtype names a golden export accepts; ``ValueError`` otherwise."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    return dtype


def write_golden(path, *, model: str, seed: int, dtype: str, config: Mapping, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write a golden file atomically (temp file in the same folder, then rename)."""
    from refimpl import __version__

    for key in arrays:
        if key.split("/", 1)[0] not in SECTIONS or "/" not in key:
            raise ValueError(f"golden key {key!r} must be '<section>/<name>' with section in {SECTIONS}")
    payload = {
        "meta/format": np.array(FORMAT),
        "meta/version": np.array(FORMAT_VERSION),
        "meta/model": np.array(model),
        "meta/seed": np.array(int(seed)),
        "meta/dtype": np.array(dtype),
        "meta/config": np.array(json.dumps(config, sort_keys=True)),
        "meta/refimpl": np.array(__version__),
    }
    payload.update({k: np.asarray(v) for k, v in arrays.items()})
    return atomic_savez(path, payload)


def load_npz(path) -> dict[str, np.ndarray]:
    """Load any ``.npz`` file into a dict (a candidate needs no ``meta/*`` keys)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except Exception as exc:  # zipfile / format errors
        raise ValueError(f"{path} is not a readable .npz file: {exc}") from exc


def load_golden(path) -> dict[str, np.ndarray]:
    """Load a golden file into a dict; raises ``ValueError`` if it is not one."""
    data = load_npz(path)
    fmt = data.get("meta/format")
    if fmt is None or str(fmt) != FORMAT:
        raise ValueError(f"{path} is not a refimpl golden file (meta/format = {fmt!r})")
    return data


@dataclass
class KeyDiff:
    key: str
    status: str  # "ok", "MISMATCH", "MISSING", "SHAPE"
    shape: tuple = ()
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst_index: tuple = ()
    ref_value: float = float("nan")
    cand_value: float = float("nan")
    n_bad: int = 0


@dataclass
class CompareResult:
    rows: list[KeyDiff] = field(default_factory=list)
    meta_notes: list[str] = field(default_factory=list)
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.rows)

    @property
    def failed_keys(self) -> list[str]:
        return [r.key for r in self.rows if r.status != "ok"]

    def table(self) -> str:
        head = f"{'key':<22} {'status':<8} {'shape':<16} {'max_abs':>10} {'max_rel':>10}  worst index (ref → cand)"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            if r.status in ("MISSING", "SHAPE"):
                lines.append(f"{r.key:<22} {r.status:<8} {str(r.shape):<16}")
                continue
            worst = ""
            if r.worst_index is not None and r.max_abs > 0:
                worst = f"{r.worst_index} ({r.ref_value:.17g} → {r.cand_value:.17g})"
            lines.append(
                f"{r.key:<22} {r.status:<8} {str(r.shape):<16} {r.max_abs:10.3e} {r.max_rel:10.3e}  {worst}"
            )
        lines += [f"note: {n}" for n in self.meta_notes]
        verdict = "PASS" if self.ok else f"FAIL: {', '.join(self.failed_keys)}"
        lines.append(f"tolerance |cand − ref| ≤ {self.atol:g} + {self.rtol:g}·|ref|  →  {verdict}")
        return "\n".join(lines)


def compare(ref, cand, *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> CompareResult:
    """Compare every array key of golden file (or dict) ``ref`` against ``cand``."""
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be ≥ 0, got rtol={rtol}, atol={atol}")
    R = load_golden(ref) if not isinstance(ref, Mapping) else ref
    C = load_npz(cand) if not isinstance(cand, Mapping) else dict(cand)
    out = CompareResult(rtol=rtol, atol=atol)
    for key in ("meta/model", "meta/dtype"):
        if key in R and key in C and str(R[key]) != str(C[key]):
            out.meta_notes.append(f"{key}: ref {str(R[key])!r}, candidate {str(C[key])!r}")
    for key in sorted(k for k in R if not k.startswith("meta/")):
        r = np.asarray(R[key], dtype=np.float64)
        if key not in C:
            out.rows.append(KeyDiff(key, "MISSING", r.shape))
            continue
        c = np.asarray(C[key], dtype=np.float64)
        if c.shape != r.shape:
            out.rows.append(KeyDiff(key, "SHAPE", (r.shape, c.shape)))
            continue
        diff = np.abs(c - r)
        diff = np.where(np.isnan(c) | np.isnan(r), np.where(np.isnan(c) & np.isnan(r), 0.0, np.inf), diff)
        bad = diff > atol + rtol * np.abs(r)
        rel = diff / np.maximum(np.abs(r), np.finfo(np.float64).tiny)
        row = KeyDiff(key, "MISMATCH" if bad.any() else "ok", r.shape)
        if r.size:
            score = np.where(bad, diff / (atol + rtol * np.abs(r) + 1e-300), diff)
            idx = np.unravel_index(int(np.argmax(score)), r.shape) if r.ndim else ()
            row.max_abs = float(diff.max())
            row.max_rel = float(rel.max())
            row.worst_index = tuple(int(i) for i in idx)
            row.ref_value = float(r[idx])
            row.cand_value = float(c[idx])
            row.n_bad = int(bad.sum())
        out.rows.append(row)
    return out
