"""Vectorisable ``exp`` and ``tanh`` for Numba kernels, in float64 and float32.

Numba lowers ``math.exp``/``np.tanh`` inside a loop to calls into libm, which the LLVM loop
vectoriser cannot turn into SIMD code (and ``fastmath``, which would allow vector library calls,
is off project-wide: DESIGN.md, "Numba"). The functions here are straight-line arithmetic (range
reduction, a polynomial, integer bit operations for the power of two, selects for the special
cases), with no call and no branch left after inlining, so a loop over them vectorises. Each
precision has its own function, computing in that precision only: float32 inputs never pass
through float64.

Scalars: :func:`exp` and :func:`tanh` dispatch on the argument's type inside Numba code (an
``overload``) and in plain Python (``NUMBA_DISABLE_JIT``); :func:`exp64`, :func:`exp32`,
:func:`tanh64`, :func:`tanh32` are the typed versions. Arrays: :func:`vexp`, :func:`vtanh`
(new arrays) and :func:`exp_into`, :func:`tanh_into` (flat, in place or into ``out``). The scalar
functions and the dispatch are inlined in Numba's IR (``inline="always"``): LLVM's own inliner
leaves a function the size of tanh as a call, and a call in a loop stops vectorisation.

Algorithm
---------
**exp(x)** (Cody & Waite reduction, as in fdlibm / ARM optimized-routines, without the table):

1. Clamp x to [−746, 710] (float32: [−104, 89]), where exp already underflows to 0 / overflows to
   inf; NaN passes the clamp unchanged (comparisons with NaN are false).
2. n = round(x / ln 2) by the shift trick: k = x·log₂e + 1.5·2⁵² (float32: 1.5·2²³) rounds to an
   integer held in k's low mantissa bits; n is read from k's bits (no float→int conversion, which
   would be undefined for NaN) and k − 1.5·2⁵² is n as a float.
3. r = (x − n·ln2_hi) − n·ln2_lo, |r| ≤ ln2/2 ≈ 0.347. ln2_hi has enough trailing zero bits for
   n·ln2_hi to be exact over the whole clamped range, so the first difference is exact
   (Sterbenz); the second rounds once.
4. eʳ = 1 + (r + r²·q(r)), q a degree-10 (float32: degree-5) near-minimax polynomial (Chebyshev
   fit on [−0.35, 0.35]) of (eʳ − 1 − r)/r², evaluated by Horner. Its approximation error is
   < 2e−18 (float32: < 2e−9) of q, i.e. < 0.003 (float32: < 0.01) ulp of the result.
5. eˣ = (eʳ · 2^⌊n/2⌋) · 2^(n − ⌊n/2⌋), each power of two built from its exponent bits. Both
   factors are normal numbers over the clamped range; the first product is exact, the second
   rounds once, so results that overflow give inf, and subnormal results and underflow to 0 are
   rounded once from the accurate eʳ·2ⁿ.

Error bound (normal results, u = 2⁻⁵³ the unit roundoff): p = r + r²q carries the rounding of
that sum (u|p|), a tenth of that from r²q, and the rounding of r in step 3 times dexp/dr = eʳ
(u|r|eʳ): at most ≈ 1.03 u absolute at r = +0.347 (≈ 0.63 u at r = −0.347); 1 + p adds half an
ulp, the scaling nothing. First-order bound ≈ 1.1 ulp; measured 0.94 ulp (below). Subnormal
results carry the same error relative to the exact value plus one rounding to the subnormal grid.

**tanh(x)**:

- |x| < 0.55: tanh x = x + x³·P(x²), P a degree-10 (float32: degree-5) near-minimax fit of
  (tanh √s − √s)/s^{3/2} on s ∈ [0, 0.31] (approximation error < 1e−17, float32 < 5e−10). The
  x³P term is at most 10% of the result, so the error is the final rounding plus a tenth of the
  term's own: ≤ 0.7 ulp. Subnormal and zero x return x (x³ underflows); the result takes the
  sign of x (so tanh(−0) = −0).
- |x| ≥ 0.55: tanh |x| = 1 − 2/(e^{2|x|} + 1), then the sign of x. e^{2|x|} = 2ⁿ(1 + p) comes from
  the reduction of exp (2|x| clamped at 40, where the result is 1 in both precisions, so ±inf
  give ±1), and the denominator is summed as (2ⁿ + 1) + 2ⁿ·p: 2ⁿ + 1 is exact (n ≤ 52, float32
  n ≤ 23; beyond, 2/(…) is below the result's ulp anyway) and 2ⁿ·p is exact, so the denominator
  is rounded once on top of p's error. At |x| ≥ 0.55 the result is ≥ 0.5 and q = 2/(…) ≤ 0.5
  carries ≲ 2.5 u of relative error, ≤ 1.2 ulp of the result, plus the final rounding: ≤ 1.7 ulp
  first-order bound at the cut, less above it (q shrinks like e^{−2|x|}); measured 1.35 ulp.
- NaN propagates.

Measured maximum errors against references ~2¹¹ times finer (``np.longdouble`` for float64,
float64 for float32) over dense sweeps and 10⁷ random bit patterns: exp 0.939 / 0.945 ulp, tanh
1.346 / 1.327 ulp (float64 / float32; NumPy's own on the same inputs: 0.716 / 2.516 and
1.194 / 1.374). tests/test_core_vmath.py bounds them at 1 ulp (exp) and 1.5 ulp (tanh) and
requires exact agreement with NumPy on ±0, ±inf, NaN, overflow and underflow.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from refimpl.core.jit import njit

# --------------------------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------------------------
_f32 = np.float32

_LOG2E = 1.4426950408889634  # 1 / ln 2
_SHIFT = 6755399441055744.0  # 1.5·2⁵²: adding it rounds |z| < 2⁵¹ to an integer
_SHIFT_BITS = np.int64(np.float64(_SHIFT).view(np.int64))
_LN2_HI = 6.93147180369123816490e-01  # 0x3fe62e42fee00000: 21 trailing zero bits
_LN2_LO = 1.90821492927058770002e-10  # ln 2 − _LN2_HI
_EXP_LO = -746.0  # exp(x) rounds to 0 below −745.14
_EXP_HI = 710.0  # exp(x) overflows above 709.79
_Q64 = (0.5, 0.1666666666666667, 0.04166666666666667, 0.008333333333325544, 0.0013888888888883327,
        0.00019841269876864356, 2.4801587327007187e-05, 2.755725283351691e-06, 2.75572718102198e-07,
        2.5106274733573296e-08, 2.0915442297780116e-09)  # q(r) = (eʳ − 1 − r)/r², lowest degree first
_P64 = (-0.3333333333333333, 0.13333333333332653, -0.05396825396736269, 0.021869488490426265,
        -0.008863234323440806, 0.0035921094028949856, -0.001455654068126178, 0.0005888979771589568,
        -0.0002345222396597348, 8.492963117452886e-05, -2.047588229699226e-05)  # P(s), tanh x = x + x³P(x²)
_TANH_CUT = 0.55
_TANH_CLAMP = 40.0  # 2|x| clamped here: 1 − 2/(e⁴⁰ + 1) rounds to 1 (also in float32)

_LOG2E_32 = _f32(1.4426950408889634)
_SHIFT_32 = _f32(12582912.0)  # 1.5·2²³
_SHIFT_BITS_32 = np.int64(_SHIFT_32.view(np.int32))
_LN2_HI_32 = _f32(0.693145751953125)  # 0x3f317200: 9 trailing zero bits
_LN2_LO_32 = _f32(1.428606765330187045e-06)
_EXP_LO_32 = _f32(-104.0)  # exp rounds to 0 below −103.98
_EXP_HI_32 = _f32(89.0)  # exp overflows above 88.73
_Q32 = tuple(_f32(c) for c in (0.5, 0.1666666716337204, 0.04166645556688309, 0.00833331048488617,
                                 0.0013934541493654251, 0.00019891980628017336))
_P32 = tuple(_f32(c) for c in (-0.3333333432674408, 0.1333332359790802, -0.05396456643939018,
                                 0.02181706391274929, -0.008520500734448433, 0.002517892047762871))
_TANH_CUT_32 = _f32(0.55)
_TANH_CLAMP_32 = _f32(40.0)
_ONE_32 = _f32(1.0)
_TWO_32 = _f32(2.0)

(_Q0, _Q1, _Q2, _Q3, _Q4, _Q5, _Q6, _Q7, _Q8, _Q9, _Q10) = _Q64
(_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7, _P8, _P9, _P10) = _P64
(_Q0f, _Q1f, _Q2f, _Q3f, _Q4f, _Q5f) = _Q32
(_P0f, _P1f, _P2f, _P3f, _P4f, _P5f) = _P32


# --------------------------------------------------------------------------------------------
# float64
# --------------------------------------------------------------------------------------------
@njit(inline="always")  # inlined in Numba IR: LLVM would not inline it into loops
def _exp_parts64(x):
    """(eʳ − 1, n) with x = n ln2 + r, |r| ≤ ln2/2, for x already in [−746, 710] or NaN."""
    k = x * _LOG2E + _SHIFT  # n = round(x / ln 2) in the low bits of k
    n = np.float64(k).view(np.int64) - _SHIFT_BITS
    kn = k - _SHIFT  # n as a float (exact)
    r = (x - kn * _LN2_HI) - kn * _LN2_LO  # |r| ≤ ln2/2
    q = _Q10
    q = q * r + _Q9
    q = q * r + _Q8
    q = q * r + _Q7
    q = q * r + _Q6
    q = q * r + _Q5
    q = q * r + _Q4
    q = q * r + _Q3
    q = q * r + _Q2
    q = q * r + _Q1
    q = q * r + _Q0
    return r + (r * r) * q, n


@njit(inline="always")  # inlined in Numba IR: LLVM would not inline it into loops
def exp64(x):
    """eˣ in float64 (module docstring); inf above 709.78, 0 below −745.13, NaN → NaN."""
    x = np.float64(x)
    if x > _EXP_HI:  # NaN fails both tests and passes through
        x = _EXP_HI
    if x < _EXP_LO:
        x = _EXP_LO
    pm, n = _exp_parts64(x)
    p = 1.0 + pm  # eʳ
    n1 = n >> 1
    s1 = np.int64((n1 + 1023) << 52).view(np.float64)  # 2^⌊n/2⌋
    s2 = np.int64((n - n1 + 1023) << 52).view(np.float64)  # 2^(n − ⌊n/2⌋)
    return (p * s1) * s2


@njit(inline="always")  # inlined in Numba IR: LLVM would not inline it into loops
def tanh64(x):
    """tanh x in float64 (module docstring)."""
    x = np.float64(x)
    ax = abs(x)
    s = x * x
    P = _P10
    P = P * s + _P9
    P = P * s + _P8
    P = P * s + _P7
    P = P * s + _P6
    P = P * s + _P5
    P = P * s + _P4
    P = P * s + _P3
    P = P * s + _P2
    P = P * s + _P1
    P = P * s + _P0
    small = np.copysign(x + (x * s) * P, x)  # |x| < 0.55 (the sign of x also for x = −0)
    a2 = 2.0 * ax
    if a2 > _TANH_CLAMP:  # NaN passes
        a2 = _TANH_CLAMP
    if a2 < 1.0:  # the small branch is taken: keep n ≥ 1 below
        a2 = 1.0
    pm, n = _exp_parts64(a2)  # e^{2|x|} = 2ⁿ (1 + pm), n ∈ [1, 58]
    s = np.int64((n + 1023) << 52).view(np.float64)
    big = 1.0 - 2.0 / ((s + 1.0) + s * pm)  # 2ⁿ + 1 exact (n ≤ 52), s·pm exact: one rounding
    if x < 0.0:
        big = -big
    return small if ax < _TANH_CUT else big  # NaN: big is NaN


# --------------------------------------------------------------------------------------------
# float32 (every constant and every operation in float32)
# --------------------------------------------------------------------------------------------
@njit(inline="always")  # inlined in Numba IR: LLVM would not inline it into loops
def _exp_parts32(x):
    """(eʳ − 1, n) in float32, x already in [−104, 89] or NaN."""
    k = x * _LOG2E_32 + _SHIFT_32
    n = np.int64(np.float32(k).view(np.int32)) - _SHIFT_BITS_32
    kn = k - _SHIFT_32
    r = (x - kn * _LN2_HI_32) - kn * _LN2_LO_32
    q = _Q5f
    q = q * r + _Q4f
    q = q * r + _Q3f
    q = q * r + _Q2f
    q = q * r + _Q1f
    q = q * r + _Q0f
    return r + (r * r) * q, n


@njit(inline="always")  # inlined in Numba IR: LLVM would not inline it into loops
def exp32(x):
    """eˣ in float32 (module docstring); inf above 88.72, 0 below −103.97, NaN → NaN."""
    x = np.float32(x)
    if x > _EXP_HI_32:
        x = _EXP_HI_32
    if x < _EXP_LO_32:
        x = _EXP_LO_32
    pm, n = _exp_parts32(x)
    p = _ONE_32 + pm
    n1 = n >> 1
    s1 = np.int32((n1 + 127) << 23).view(np.float32)
    s2 = np.int32((n - n1 + 127) << 23).view(np.float32)
    return (p * s1) * s2


@njit(inline="always")  # inlined in Numba IR: LLVM would not inline it into loops
def tanh32(x):
    """tanh x in float32 (module docstring)."""
    x = np.float32(x)
    ax = abs(x)
    s = x * x
    P = _P5f
    P = P * s + _P4f
    P = P * s + _P3f
    P = P * s + _P2f
    P = P * s + _P1f
    P = P * s + _P0f
    small = np.copysign(x + (x * s) * P, x)
    a2 = _TWO_32 * ax
    if a2 > _TANH_CLAMP_32:
        a2 = _TANH_CLAMP_32
    if a2 < _ONE_32:
        a2 = _ONE_32
    pm, n = _exp_parts32(a2)
    s = np.int32((n + 127) << 23).view(np.float32)
    big = _ONE_32 - _TWO_32 / ((s + _ONE_32) + s * pm)
    if x < _f32(0.0):
        big = -big
    return small if ax < _TANH_CUT_32 else big


# --------------------------------------------------------------------------------------------
# dispatch on the argument's precision (Numba: at compile time; Python: at run time)
# --------------------------------------------------------------------------------------------
def exp(x):
    """eˣ in the precision of ``x`` (float32 → :func:`exp32`, anything else → :func:`exp64`)."""
    return exp32(x) if isinstance(x, np.float32) else exp64(x)


def tanh(x):
    """tanh x in the precision of ``x`` (float32 → :func:`tanh32`, anything else → :func:`tanh64`)."""
    return tanh32(x) if isinstance(x, np.float32) else tanh64(x)


def _is_f32(t) -> bool:
    return isinstance(t, types.Float) and t.bitwidth == 32


@overload(exp, inline="always")
def _exp_overload(x):
    if _is_f32(x):
        return lambda x: exp32(x)
    return lambda x: exp64(x)


@overload(tanh, inline="always")
def _tanh_overload(x):
    if _is_f32(x):
        return lambda x: tanh32(x)
    return lambda x: tanh64(x)


# --------------------------------------------------------------------------------------------
# arrays
# --------------------------------------------------------------------------------------------
@njit
def exp_into(x, out):
    """out[i] = exp(x[i]) over flat arrays of one dtype (``out`` may be ``x``)."""
    for i in range(x.size):
        out[i] = exp(x[i])


@njit
def tanh_into(x, out):
    """out[i] = tanh(x[i]) over flat arrays of one dtype (``out`` may be ``x``)."""
    for i in range(x.size):
        out[i] = tanh(x[i])


def _apply(kernel, x):
    x = np.asarray(x)
    if x.dtype not in (np.float64, np.float32):
        raise TypeError(f"x must have dtype float64 or float32, got {x.dtype}")
    src = np.ascontiguousarray(x)
    out = np.empty_like(src)
    with np.errstate(all="ignore"):  # the pure-Python kernels (NUMBA_DISABLE_JIT) warn as compiled ones do not
        kernel(src.reshape(-1), out.reshape(-1))
    return out


def vexp(x) -> np.ndarray:
    """eˣ elementwise in x's precision (float64 or float32), a new array of x's shape."""
    return _apply(exp_into, x)


def vtanh(x) -> np.ndarray:
    """tanh x elementwise in x's precision (float64 or float32), a new array of x's shape."""
    return _apply(tanh_into, x)
