"""Golden vectors: versioned ``.npz`` files that other implementations are checked against.

File format, version 2 (DESIGN.md, "Golden vectors"):

- ``meta/format`` = "refimpl-golden", ``meta/version`` = "2", ``meta/model``, ``meta/seed``,
  ``meta/dtype``, ``meta/config`` (JSON text), ``meta/refimpl`` (package version);
- ``param/*``, ``input/*``, ``output/*``, ``grad/*``, ``trajectory/*``: arrays, keys per model spec.

Strings are stored as 0-d unicode arrays, so files load with ``np.load(path)`` (no pickle).
:func:`load_golden` refuses a file whose ``meta/format`` or ``meta/version`` it does not know
(version 1 included: its arrays are those of version 2, so regenerating it is the fix) and says
how to regenerate it. Version 2 differs from 1 in what a check means, not in the arrays: a
candidate is checked by section (:data:`DEFAULT_SECTIONS` = output, grad, trajectory; the params
and inputs are what it was given), with the dtype- and scale-aware tolerances below.

The tolerance rule (one implementation, :func:`key_tolerance`; ``refimpl.testing.assert_matches``
and ``refimpl golden compare`` both call :func:`compare`)
-----------------------------------------------------------------------------------------------
An entry passes when ``|cand − ref| ≤ atol + rtol·|ref|``. Unless given, ``rtol`` and ``atol``
come from the *precision* of the check and the *scale* of each key:

- precision: the least precise floating dtype among the candidate's checked arrays (a float32
  model that stores its trajectory as Python floats is still float32), and never more precise
  than the reference's ``meta/dtype`` (a float32 reference carries float32 rounding); ``dtype=``
  overrides the inference (``--dtype`` on the command line);
- ``rtol`` and the floor factor ``f`` (:data:`TOLERANCES`):

  ==========  ===========================  ==============================
  precision   output, grad (param, input)  trajectory (errors accumulate)
  ==========  ===========================  ==============================
  float64     rtol 1e-9, f = 1e-12         rtol 1e-7, f = 1e-10
  float32     rtol 1e-5, f = 1e-5          rtol 1e-4, f = 1e-4
  ==========  ===========================  ==============================

- ``atol = f · scale(key)``, where ``scale(key)`` is the key's largest finite ``|ref|``, raised for
  array keys (ndim ≥ 1) to at least :data:`SECTION_SHARE` (0.1) × the largest finite ``|ref|``
  among the array keys of its section.

Why (measured on correct implementations, seeds 0–19; numbers in ``tests/test_testing.py``): a
correct candidate errs by at most 2e-15 (float64) and 2e-6 (float32) of its key's largest entry,
so the worst entry of every key uses at most 0.1 of its tolerance (float32 transformer gradients;
li2024 0.04; float64 ≤ 4e-4). Single entries that are small through cancellation err by up to
0.14 of themselves in float32, so a relative tolerance alone cannot work, and one absolute
tolerance cannot fit keys whose scales differ by orders of magnitude: hence a floor per key. The
section share refines "per key" for keys that are zero up to rounding (the transformer's ∇b_K:
softmax ignores a key bias; max |ref| ~1e-17, and a correct torch model errs by 4× that in float64,
2e9× in float32, but by 1.2e-16 and 2.3e-8 of the section's largest entry): their entries are
rounding noise of the section's scale. The float32 trajectory ``rtol`` is 1e-4, not 1e-3: ten
correct float32 GD or Adam steps err by ≤ 4e-7 of the loss, while with 1e-3 a learning rate 1% off
passed.

Explicit ``rtol``/``atol`` replace the defaults for every key (``atol`` absolute); ``per_key``
``{key: (rtol, atol)}`` replaces both for one key. Tolerances must be finite and ≥ 0.

What can never pass: a missing key or a shape mismatch in a checked section; a non-finite
candidate entry where the reference is finite; a non-finite reference entry matched by anything
but the same value (NaN only by NaN, +inf only by +inf); complex, bool, string or object
candidates (``TypeError`` naming the key, never a silent cast); an empty check (``ValueError``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refimpl.core.io import atomic_savez

FORMAT = "refimpl-golden"
FORMAT_VERSION = "2"
SUPPORTED_VERSIONS = ("2",)
SECTIONS = ("param", "input", "output", "grad", "trajectory")
DEFAULT_SECTIONS = ("output", "grad", "trajectory")
DTYPES = ("float64", "float32")

# precision -> section kind -> (rtol, floor factor f); atol = f · scale(key)   (module docstring)
TOLERANCES = {
    "float64": {"default": (1e-9, 1e-12), "trajectory": (1e-7, 1e-10)},
    "float32": {"default": (1e-5, 1e-5), "trajectory": (1e-4, 1e-4)},
}
SECTION_SHARE = 0.1  # an array key's scale is at least this share of its section's largest |ref|
REGENERATE = "refimpl golden export {model} --seed {seed} --dtype {dtype} --out {out}"


def check_dtype(dtype: str) -> str:
    """The dtype names a golden export accepts; ``ValueError`` otherwise."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    return dtype


def check_tolerance(name: str, value) -> float:
    """``value`` as a float if it is a finite number ≥ 0; ``ValueError`` naming ``name`` otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
    return v


def check_sections(sections) -> tuple[str, ...]:
    """A non-empty tuple of known section names; ``ValueError`` otherwise."""
    if isinstance(sections, str):
        sections = (sections,)
    sections = tuple(sections)
    bad = [s for s in sections if s not in SECTIONS]
    if not sections or bad:
        raise ValueError(f"sections must be a non-empty subset of {list(SECTIONS)}, got {list(sections)}")
    return sections


# --------------------------------------------------------------------------------------------
# writing and loading
# --------------------------------------------------------------------------------------------
def golden_payload(*, model: str, seed: int, dtype: str, config: Mapping, arrays: Mapping) -> dict:
    """The ``meta/*`` keys of format version 2 followed by ``arrays`` (keys ``<section>/<name>``)."""
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
    return payload


def write_golden(path, *, model: str, seed: int, dtype: str, config: Mapping, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write a golden file atomically (temp file in the same folder, then rename)."""
    return atomic_savez(path, golden_payload(model=model, seed=seed, dtype=dtype, config=config, arrays=arrays))


#: meta keys a regenerated file may change without any change of the math (the package version)
VOLATILE_META = ("meta/refimpl",)


def bit_diff(ref: Mapping, new: Mapping, *, ignore=VOLATILE_META) -> list[str]:
    """The keys on which two golden payloads differ bit for bit: a key in one only, or a
    different dtype, shape or byte content (the ``meta/*`` keys included, except ``ignore``).
    Each entry reads ``"<key>: <why>"``; an empty list means identical. This is the check of the
    committed golden suite (``refimpl golden suite --check``, tests/test_golden_suite.py)."""
    out = []
    keys = [k for k in dict.fromkeys([*ref, *new]) if k not in ignore]
    for k in keys:
        if k not in ref or k not in new:
            out.append(f"{k}: only in the {'new' if k not in ref else 'reference'} payload")
            continue
        a, b = np.asarray(ref[k]), np.asarray(new[k])
        if a.dtype != b.dtype:
            out.append(f"{k}: dtype {a.dtype} → {b.dtype}")
        elif a.shape != b.shape:
            out.append(f"{k}: shape {a.shape} → {b.shape}")
        elif a.tobytes() != b.tobytes():
            if a.dtype.kind == "f":
                with np.errstate(invalid="ignore", over="ignore"):
                    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
                n = int(np.sum(~(d == 0)))
                out.append(f"{k}: {n} of {a.size} entries differ, max |Δ| {np.nanmax(d, initial=0):.3g}")
            else:
                out.append(f"{k}: contents differ")
    return out


def load_npz(path) -> dict[str, np.ndarray]:
    """Load any ``.npz`` file into a dict (a candidate needs no ``meta/*`` keys)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a .npz file")
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except Exception as exc:  # zipfile / format errors, pickled object arrays
        raise ValueError(f"{path} is not a readable .npz file: {exc}") from exc


def _meta_str(data: Mapping, key: str):
    v = data.get(key)
    if v is None:
        return None
    try:
        return str(np.asarray(v).item()) if np.asarray(v).ndim == 0 else repr(v)
    except Exception:  # pragma: no cover - a value np.asarray cannot take
        return repr(v)


def check_golden_meta(data: Mapping, source="the reference") -> None:
    """Refuse ``data`` unless its ``meta/format`` and ``meta/version`` are known (``ValueError``
    naming the field, the value found, the versions supported and the regeneration command)."""
    fmt, version = _meta_str(data, "meta/format"), _meta_str(data, "meta/version")
    regen = REGENERATE.format(model=_meta_str(data, "meta/model") or "MODEL", seed=_meta_str(data, "meta/seed") or "S",
                              dtype=_meta_str(data, "meta/dtype") or "D",
                              out=source if isinstance(source, (str, Path)) and str(source).endswith(".npz") else "FILE")
    if fmt != FORMAT:
        raise ValueError(f"{source} is not a refimpl golden file: meta/format = {fmt!r}, expected {FORMAT!r} "
                         f"(is it the candidate? the reference comes first); write one with: {regen}")
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"{source}: unsupported golden format: meta/version = {version!r}, this refimpl reads "
                         f"version {' or '.join(SUPPORTED_VERSIONS)}; regenerate it with: {regen}")


def load_golden(path) -> dict[str, np.ndarray]:
    """Load a golden file into a dict after checking ``meta/format`` and ``meta/version``."""
    data = load_npz(path)
    check_golden_meta(data, str(path))
    return data


# --------------------------------------------------------------------------------------------
# candidates: NumPy, torch, JAX, Python numbers -> checked NumPy arrays
# --------------------------------------------------------------------------------------------
def _library(value) -> str:
    return type(value).__module__.split(".", 1)[0]


def as_array(key: str, value) -> np.ndarray:
    """``value`` as a real NumPy array, or ``TypeError`` naming ``key``: torch tensors are detached
    and moved to the CPU, JAX arrays go through ``np.asarray``; complex, bool, string, object and
    half-precision data are refused (no default tolerance exists for float16/bfloat16)."""
    lib = _library(value)
    refused = "refused, never cast: a candidate must hold real float32/float64 (or integer) data"
    half = "half precision: no default tolerance; upcast to float32 and give rtol and atol"
    if lib == "torch" and hasattr(value, "detach"):  # never imports torch: the value brings it
        name = str(value.dtype).replace("torch.", "")
        if value.is_complex() or name in ("bool", "float16", "bfloat16"):
            what = "complex" if value.is_complex() else "bool" if name == "bool" else half
            raise TypeError(f"candidate {key!r} has dtype torch.{name} ({what}); {refused}")
        try:
            arr = value.detach().cpu().resolve_conj().resolve_neg().numpy()
        except Exception as exc:  # meta, quantized or otherwise exotic tensors
            raise TypeError(f"candidate {key!r} (torch.{name}) cannot be read as an array: {exc}") from exc
    else:  # NumPy, JAX (jax.Array supports __array__), Python numbers and lists
        try:
            arr = np.asarray(value)
        except Exception as exc:
            raise TypeError(f"candidate {key!r} ({type(value).__name__}) cannot be read as an array: {exc}") from exc
    if arr.dtype.kind not in "fiu" or arr.dtype.name in ("float16", "bfloat16"):
        what = {"c": "complex", "b": "bool", "U": "string", "S": "bytes", "O": "object"}.get(arr.dtype.kind, "not real")
        what = half if arr.dtype.name in ("float16", "bfloat16") else what
        raise TypeError(f"candidate {key!r} has dtype {arr.dtype} ({what}); {refused}")
    return arr


def _precision(dtypes: Iterable[np.dtype]) -> str | None:
    """The least precise of the floating ``dtypes`` as a name of :data:`DTYPES`, or None."""
    floats = [np.dtype(d) for d in dtypes if np.dtype(d).kind == "f"]
    if not floats:
        return None
    return "float32" if min(d.itemsize for d in floats) <= 4 else "float64"


def key_tolerance(key: str, precision: str, scale: float) -> tuple[float, float]:
    """Default ``(rtol, atol)`` of ``key`` (``'<section>/<name>'``) for a check in ``precision``
    when the key's scale (module docstring) is ``scale``."""
    section = key.split("/", 1)[0]
    rtol, floor = TOLERANCES[check_dtype(precision)]["trajectory" if section == "trajectory" else "default"]
    return rtol, floor * scale


# --------------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------------
@dataclass
class KeyDiff:
    key: str
    status: str  # "ok", "MISMATCH", "NONFINITE", "MISSING", "SHAPE"
    shape: tuple = ()
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst_index: tuple | None = None
    ref_value: float = float("nan")
    cand_value: float = float("nan")
    n_bad: int = 0
    ratio: float = 0.0  # largest |cand − ref| / (atol + rtol·|ref|): > 1 fails, inf for a non-finite mismatch
    rtol: float = 0.0
    atol: float = 0.0


@dataclass
class CompareResult:
    rows: list[KeyDiff] = field(default_factory=list)
    meta_notes: list[str] = field(default_factory=list)
    reference: str = ""  # "<model> seed <seed> (<dtype>)" from the reference's meta
    precision: str = "float64"
    precision_from: str = ""
    sections: tuple = DEFAULT_SECTIONS
    rtol_given: bool = False  # the caller's rtol replaced the default of every key
    atol_given: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r.status == "ok" for r in self.rows)

    @property
    def failed_keys(self) -> list[str]:
        return [r.key for r in self.rows if r.status != "ok"]

    @property
    def first_failure(self) -> KeyDiff | None:
        return next((r for r in self.rows if r.status != "ok"), None)

    def table(self) -> str:
        """One row per checked key: status, max abs and rel error, worst index with the reference
        and candidate values there, and the tolerance used; then notes and the verdict."""
        w = max([22] + [len(r.key) for r in self.rows])
        head = (f"{'key':<{w}} {'status':<9} {'shape':<14} {'max_abs':>9} {'max_rel':>9} {'rtol':>7} {'atol':>9} {'err/tol':>8}"
                "  worst index: ref → cand")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            tol = f"{r.rtol:7.0e} {r.atol:9.2e}"
            if r.status in ("MISSING", "SHAPE"):
                shape = str(r.shape[0]) if r.status == "SHAPE" else str(r.shape)
                what = f"candidate shape {r.shape[1]}" if r.status == "SHAPE" else "not in the candidate"
                lines.append(f"{r.key:<{w}} {r.status:<9} {shape:<14} {'':>9} {'':>9} {tol} {'':>8}  {what}")
                continue
            worst = ""
            if r.worst_index is not None and (r.max_abs > 0 or r.status != "ok"):
                worst = f"{r.worst_index}: {r.ref_value:.17g} → {r.cand_value:.17g}"
                if r.n_bad > 1:
                    worst += f"  ({r.n_bad} entries out of tolerance)"
            lines.append(f"{r.key:<{w}} {r.status:<9} {str(r.shape):<14} {r.max_abs:9.2e} {r.max_rel:9.2e} {tol} "
                         f"{r.ratio:8.2g}  {worst}")
        lines += [f"note: {n}" for n in self.meta_notes]
        given = [n for n, g in (("rtol", self.rtol_given), ("atol", self.atol_given)) if g]
        how = f"{self.precision} defaults ({self.precision_from}; see refimpl.core.golden)"
        if given:
            how = " and ".join(given) + " given" + ("" if len(given) == 2 else f", otherwise {how}")
        lines.append(f"tolerance: |cand − ref| ≤ atol + rtol·|ref| per entry, {how}")
        verdict = f"PASS ({len(self.rows)} keys)" if self.ok else f"FAIL: {', '.join(self.failed_keys)}"
        lines.append(verdict)
        return "\n".join(lines)


def _as_reference(ref) -> dict:
    if isinstance(ref, Mapping):
        data = dict(ref)
        check_golden_meta(data, "the reference")
        return data
    return load_golden(ref)


def _as_candidate(cand) -> dict:
    if isinstance(cand, Mapping):
        return dict(cand)
    if isinstance(cand, (str, Path)):
        return load_npz(cand)
    raise TypeError(f"candidate must be a dict of arrays or a path to an .npz file, got {type(cand).__name__}")


def _diff_row(key: str, r: np.ndarray, c: np.ndarray, rtol: float, atol: float) -> KeyDiff:
    r = r.astype(np.float64)
    c = c.astype(np.float64)
    row = KeyDiff(key, "ok", r.shape, rtol=rtol, atol=atol)
    if r.size == 0:
        return row
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        rf, cf = np.isfinite(r), np.isfinite(c)
        both = rf & cf
        diff = np.where(both, np.abs(c - r), 0.0)  # (shape) finite pairs only
        bound = atol + rtol * np.abs(np.where(rf, r, 0.0))
        bad_finite = both & ~(diff <= bound)  # overflowed |c − r| = inf is bad too
        same_nonfinite = ~rf & ((np.isnan(r) & np.isnan(c)) | (r == c))  # NaN↔NaN, +inf↔+inf, −inf↔−inf
        bad_nonfinite = (rf & ~cf) | (~rf & ~same_nonfinite)
        score = np.where(bad_nonfinite, np.inf, np.where(diff > 0, diff / bound, 0.0))  # bound 0, diff > 0 → inf
        rel = np.where(both & (r != 0), diff / np.abs(r), 0.0)
    bad = bad_finite | bad_nonfinite
    idx = np.unravel_index(int(np.argmax(score)), r.shape)
    row.worst_index = tuple(int(i) for i in idx)
    row.ref_value, row.cand_value = float(r[idx]), float(c[idx])
    row.n_bad = int(bad.sum())
    row.ratio = float(score[idx])
    row.max_abs = float(np.inf) if bad_nonfinite.any() else float(diff.max())
    row.max_rel = float(np.inf) if bad_nonfinite.any() else float(rel.max())
    if bad_nonfinite.any():
        row.status = "NONFINITE"
    elif bad_finite.any():
        row.status = "MISMATCH"
    return row


def compare(ref, cand, *, sections=DEFAULT_SECTIONS, rtol=None, atol=None, per_key=None, dtype=None) -> CompareResult:
    """Check the keys of ``sections`` of golden ``ref`` against ``cand``; returns a :class:`CompareResult`.

    Parameters
    ----------
    ref : path or dict
        A golden file (its ``meta/format`` and ``meta/version`` are checked) or the dict
        ``refimpl.testing.golden`` returns.
    cand : path or dict
        An ``.npz`` file or a dict ``key -> array`` (NumPy, torch tensor, JAX array, Python
        number); only the keys of the checked sections are read, so a candidate may hold just
        its outputs, gradients and trajectory. Its ``meta/*`` keys are optional.
    sections : sequence of str
        Sections to check (default ``("output", "grad", "trajectory")``).
    rtol, atol : float, optional
        Replace the default tolerance of every key (``atol`` absolute). Finite and ≥ 0.
    per_key : dict, optional
        ``{key: (rtol, atol)}`` for single keys (each a checked key).
    dtype : {"float64", "float32"}, optional
        Precision of the check; default inferred (module docstring).

    Notes
    -----
    An entry passes when ``|cand − ref| ≤ atol + rtol·|ref|``; the defaults and the rest of the
    rule are in the module docstring. Errors (``ValueError``/``TypeError``) are raised before
    any comparison: bad tolerances or sections, unknown golden format or version, candidate data
    that is not real numbers (named by key), a check with no keys.
    """
    sections = check_sections(sections)
    rtol = None if rtol is None else check_tolerance("rtol", rtol)
    atol = None if atol is None else check_tolerance("atol", atol)
    overrides = {}
    for key, pair in (per_key or {}).items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"per_key[{key!r}] must be a pair (rtol, atol), got {pair!r}")
        overrides[key] = (check_tolerance(f"per_key[{key!r}] rtol", pair[0]), check_tolerance(f"per_key[{key!r}] atol", pair[1]))
    if dtype is not None:
        check_dtype(dtype)
    R = _as_reference(ref)
    C = _as_candidate(cand)

    keys = [k for s in sections for k in R if k.split("/", 1)[0] == s]  # section order, then file order
    if not keys:
        raise ValueError(f"nothing to compare: the reference has no keys in sections {list(sections)} "
                         f"(its sections: {sorted({k.split('/', 1)[0] for k in R if not k.startswith('meta/')})})")
    unknown = sorted(set(overrides) - set(keys))
    if unknown:
        raise ValueError(f"per_key names keys that are not checked: {unknown}; checked keys: {keys}")
    refs = {}
    for k in keys:
        r = np.asarray(R[k])
        if r.dtype.kind not in "fiu":
            raise TypeError(f"reference {k!r} has dtype {r.dtype}; a golden array must be real numbers")
        refs[k] = r
    cands, refused = {}, []
    for k in keys:
        if k in C:
            try:
                cands[k] = as_array(k, C[k])
            except TypeError as exc:
                refused.append(str(exc))
    if refused:
        raise TypeError("; ".join(refused))

    out = CompareResult(sections=sections, rtol_given=rtol is not None, atol_given=atol is not None)
    ref_dtype = _meta_str(R, "meta/dtype")
    out.reference = f"{_meta_str(R, 'meta/model')} seed {_meta_str(R, 'meta/seed')} ({ref_dtype})"
    cand_p = _precision(a.dtype for a in cands.values())
    ref_p = ref_dtype if ref_dtype in DTYPES else _precision(r.dtype for r in refs.values())
    if dtype is not None:
        out.precision, out.precision_from = dtype, "dtype given"
    elif cand_p is None:
        out.precision, out.precision_from = ref_p or "float64", "the reference: the candidate has no float arrays"
    elif cand_p == "float64" and ref_p == "float32":
        out.precision, out.precision_from = "float32", "the float32 reference"
    else:
        out.precision, out.precision_from = cand_p, "inferred from the candidate's arrays"
    for key in ("meta/model", "meta/dtype", "meta/seed"):
        if key in R and key in C and _meta_str(R, key) != _meta_str(C, key):
            out.meta_notes.append(f"{key}: reference {_meta_str(R, key)!r}, candidate {_meta_str(C, key)!r}")
    extra = sorted(k for k in C if k.split("/", 1)[0] in sections and k not in R)
    if extra:
        out.meta_notes.append(f"candidate keys not in the reference (ignored): {extra}")
    if not cands:
        out.meta_notes.append(f"the candidate has none of the checked keys; its keys: {sorted(C)[:20]}")

    scale = {k: float(np.max(np.abs(r[np.isfinite(r)]), initial=0.0)) for k, r in refs.items()}
    section_scale = {}
    for k, r in refs.items():
        if r.ndim >= 1:
            s = k.split("/", 1)[0]
            section_scale[s] = max(section_scale.get(s, 0.0), scale[k])
    for k in keys:
        r = refs[k]
        s = scale[k] if r.ndim == 0 else max(scale[k], SECTION_SHARE * section_scale[k.split("/", 1)[0]])
        d_rtol, d_atol = key_tolerance(k, out.precision, s)
        k_rtol, k_atol = overrides.get(k, (d_rtol if rtol is None else rtol, d_atol if atol is None else atol))
        if k not in cands:
            out.rows.append(KeyDiff(k, "MISSING", r.shape, rtol=k_rtol, atol=k_atol))
        elif cands[k].shape != r.shape:
            out.rows.append(KeyDiff(k, "SHAPE", (r.shape, cands[k].shape), rtol=k_rtol, atol=k_atol))
        else:
            out.rows.append(_diff_row(k, r, cands[k], k_rtol, k_atol))
    return out
