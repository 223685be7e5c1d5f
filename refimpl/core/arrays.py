"""Argument checking for arrays handed to public functions: clear errors that name the argument."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np


def require(cond: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``cond`` (config validation: the message names the
    field, its value and what is allowed)."""
    if not cond:
        raise ValueError(message)


def is_int(x) -> bool:
    """True for Python and NumPy integers, False for bools and everything else."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def check_array(
    name: str,
    x,
    *,
    ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    finite: bool = True,
    dtype=None,
) -> np.ndarray:
    """Return ``x`` as a floating ndarray, or raise a ``ValueError``/``TypeError`` naming ``name``.

    ``shape`` entries that are ``None`` match any size. Integer and bool arrays are converted to
    ``dtype`` (float64 when not given); floating arrays keep their dtype unless ``dtype`` is given.
    """
    if not isinstance(x, (np.ndarray, list, tuple, float, int, np.floating, np.integer)):
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    elif not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if shape is not None:
        want = tuple("any" if s is None else s for s in shape)
        if arr.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, arr.shape)):
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} must be finite; found {arr[tuple(bad)]} at index {tuple(int(i) for i in bad)}"
        )
    return arr


def check_shape(name: str, x, shape: Sequence[int | None]) -> None:
    """O(1) guard that ``x`` is an array of ``shape`` (``None`` entries match any size), raising a
    ``ValueError`` naming ``name`` otherwise. Shapes only, no scan of the values: the check every
    Numba kernel call makes, also on the unchecked fast path (``check=False``), so that a
    wrong-shaped array raises instead of letting a compiled loop read or write out of bounds."""
    got = getattr(x, "shape", None)
    if got is None or len(got) != len(shape) or any(s is not None and s != n for s, n in zip(shape, got)):
        want = tuple("any" if s is None else s for s in shape)
        raise ValueError(f"{name} must have shape {want}, got {got if got is not None else type(x).__name__}")


def require_fit(ok: bool, name_the_entry) -> None:
    """The O(1) shape agreement the ``check=False`` paths keep (the Numba kernels index without
    bounds checks). When ``ok`` is False, ``name_the_entry()`` — the model's full validation, run on
    this error path only — raises a ``ValueError`` naming the bad entry; should it pass, a generic
    ``ValueError`` is raised instead. Never returns on a mismatch."""
    if ok:
        return
    name_the_entry()
    raise ValueError("params and batch do not fit together (check=False skips validation, not this shape "
                     "check); call loss_and_grads with check=True to find the bad entry")


def check_choice(name: str, value, allowed: Sequence) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


#: the dtypes parameters and batches may hold: float64 (the default) and float32
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``dtype`` as a NumPy dtype if it is float64 or float32; ``TypeError`` naming ``name`` otherwise
    (integer, bool, float16 and complex dtypes are refused, never converted)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float64 or float32, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float64 or float32, got {dt}")
    return dt


def check_float_array(name: str, x, **kw) -> np.ndarray:
    """:func:`check_array` for a float64/float32 array: integer, bool, float16 or complex data is a
    ``TypeError`` naming ``name`` and the dtype (never converted silently)."""
    dt = getattr(x, "dtype", None)
    if dt is not None and np.dtype(dt) not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float64 or float32 array, got dtype {dt}")
    arr = check_array(name, x, **kw)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float64 or float32 array, got dtype {arr.dtype}")
    return arr
