"""Scalar float64 maps for the compiled kernels (numba; optional).

NumPy's float64 ``tanh`` is a scalar libm call on machines without AVX-512
(15-19 ns per element on a Zen 3 core, measured in issue 13). These maps are
written so that LLVM vectorises the loops of :mod:`mlpckpt.execution._compiled`
over them (no branches that do not become selects, no calls): ``exp`` by
Cody-Waite range reduction, a fitted polynomial and an exponent built from
integer bits, and tanh, sigmoid and softplus from it with the rounding of
every step but the last corrected (paper_notes/kernels.md, eqs. K1-K9).
Accuracy: within 2 ulp of the correctly rounded value, derivatives within 2
ulp of ``f'`` at the stored output (tests/execution/test_fastmath.py, against mpmath;
1 ulp was the worst seen on 10^7 samples each, see the notes).
"""

import math

try:
    import numba
except ImportError as error:  # an optional extra: NumPy's kernels run without it
    raise ImportError('the scalar maps of the compiled kernels need numba: pip install "mlpckpt[fast]"') from error
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["exp_neg", "expm1_neg", "tanh", "sigmoid", "softplus"]


@intrinsic
def _bits(typingctx, x):
    """The IEEE bit pattern of a float64, as int64 (a register move)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _float(typingctx, k):
    """The float64 whose bit pattern is the int64 ``k``."""
    if k != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _fma(typingctx, x, y, z):
    """``x * y + z`` rounded once (llvm.fma; used for exact residuals)."""
    if not (x == y == z == types.float64):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return types.float64(types.float64, types.float64, types.float64), codegen


_jit = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always", fastmath={"contract"})

# eq. K1: ln 2 = LN2_HI + LN2_LO; LN2_HI has 32 zero low bits, so k * LN2_HI
# is exact for |k| < 2**21 (LN2_LO: ln 2 - LN2_HI to 2e-23, from mpmath).
LN2_HI = 0.6931467056274414
LN2_LO = 4.7493250390316726e-07
INV_LN2 = 1.4426950408889634
SHIFT = 6755399441055744.0  # 1.5 * 2**52: y + SHIFT rounds y to an integer in the low bits
#: below this k the scale 2**k is applied in two steps (the result is subnormal)
K_SPLIT = -1000
TWO_M600 = 2.0**-600
LEAKY_SLOPE = 0.01  # as mlpckpt.core._activations.LEAKY_SLOPE (a test checks)
# eq. K5: tanh(x) = x + x z g(z), z = x**2, for |x| <= TANH_SMALL; g fitted
# by mpmath.chebyfit (12 terms, |error| < 4e-18), highest degree first.
# Above, eq. K6: 1 - 2e / (1 + e), e = exp(-2|x|).
TANH_SMALL = 0.625
TANH_G = (
    6.485163482793113e-06, -3.12011014257974e-05, 9.257116129556769e-05,
    -0.0002375906496055562, 0.0005896606577757043, -0.0014557754120478055,
    0.0035921217511549622, -0.008863235103240878, 0.021869488519008305,
    -0.05396825396789699, 0.13333333333333042, -0.3333333333333333,
)

# eq. K2: (exp(r) - 1 - r) / r**2 on |r| <= 1.0001 ln(2)/2, fitted by
# mpmath.chebyfit (11 terms, |error| < 1.4e-18), highest degree first.
EXP_P = (
    2.0914686968086876e-09, 2.5105217004720745e-08, 2.75572736431103e-07,
    2.7557255400206422e-06, 2.4801587325547743e-05, 0.00019841269874820627,
    0.0013888888888883748, 0.008333333333326136, 0.04166666666666667,
    0.1666666666666667, 0.5,
)


@_jit
def _horner(coeffs, x):
    # coefficients highest degree first; numba unrolls the loop over the tuple
    p = coeffs[0]
    for c in coeffs[1:]:
        p = p * x + c
    return p


@_jit
def _reduce(y):
    # eq. K1: y = k ln 2 + r, |r| <= ln(2)/2; returns k and exp(r) - 1
    kd = y * INV_LN2 + SHIFT
    k = _bits(kd) - _bits(SHIFT)  # round(y / ln 2), exact
    kf = kd - SHIFT
    r = (y - kf * LN2_HI) - kf * LN2_LO
    p = _horner(EXP_P, r)
    return k, r + r * r * p


@_jit
def _exp2(y):
    # eq. K3: exp(y) = hi + lo for y <= 0 (lo: the rounding error of hi, exact)
    k, q = _reduce(max(y, -760.0))  # NaN stays NaN (max keeps its first argument)
    small = k < K_SPLIT  # two scalings, only the last one rounds
    s = _float(((k + 600 if small else k) + 1023) << 52)
    sq = s * q  # exact: s is a power of 2
    hi = s + sq
    lo = (s - hi) + sq  # Fast2Sum: |s| >= |sq|
    return (hi * TWO_M600, lo * TWO_M600) if small else (hi, lo)


@_jit
def exp_neg(y):
    """``exp(y)`` for ``y <= 0`` (eqs. K1-K3); ``y < -760`` gives 0."""
    return _exp2(y)[0]


@_jit
def expm1_neg(y):
    """``exp(y) - 1`` for ``y <= 0`` (eq. K4); ``y < -80`` gives -1."""
    k, q = _reduce(max(y, -80.0))
    s = _float((k + 1023) << 52)
    return s * q + (s - 1.0)  # both terms exact but the last rounding


@_jit
def _tanh_small(x):
    # eq. K5: x + x z g(z), z = x**2
    z = x * x
    g = _horner(TANH_G, z)
    return x + x * (z * g)


@_jit
def tanh(x):
    """``tanh(x)`` (eqs. K5-K6)."""
    ax = abs(x)
    e = exp_neg(-2.0 * min(ax, 40.0))  # tanh(40) rounds to 1
    big = 1.0 - 2.0 * e / (1.0 + e)
    return _tanh_small(x) if ax <= TANH_SMALL else math.copysign(big, x)


@_jit
def sigmoid(x):
    """``1 / (1 + exp(-x))``, corrected for every rounding but the last (eq. K7)."""
    e, e_lo = _exp2(-abs(x))
    pos = x >= 0
    num, num_lo = (1.0, 0.0) if pos else (e, e_lo)
    c = 1.0 + e
    c_lo = (1.0 - c) + e + e_lo  # 1 + e - c, exact but e_lo's part
    s0 = num / c
    rem = _fma(-s0, c, num)  # num - s0 c, exact
    inv_c = s0 if pos else 1.0 - s0  # 1 / (1 + e), to a few percent (enough: it scales a correction)
    return s0 + (rem + num_lo - s0 * c_lo) * inv_c


@_jit
def softplus(x):
    """``log(1 + exp(x)) = max(x, 0) + log1p(e)``, ``e = exp(-|x|)`` (eq. K8)."""
    u, u_lo = _exp2(-abs(x))
    # log1p(u) = 2 atanh(s), s = u / (2 + u) in [0, 1/3]; s carried as s0 + s_lo
    c = 2.0 + u
    c_lo = (2.0 - c) + u + u_lo
    s0 = u / c
    rem = _fma(-s0, c, u)
    s_lo = (rem + u_lo - s0 * c_lo) * (0.5 * (1.0 - s0))  # 1 / c = (1 - s) / 2
    w = s0 * s0
    p = 1.0 / 33.0
    for j in range(15, 0, -1):
        p = p * w + 1.0 / (2 * j + 1)
    # 2 atanh(s0 + s_lo) = 2 s0 + 2 s0 w p + 2 s_lo / (1 - s0**2), the last to O(w**3)
    tail = 2.0 * s0 * (w * p) + 2.0 * s_lo * (1.0 + w * (1.0 + w))
    return max(x, 0.0) + (2.0 * s0 + tail)


@_jit
def _tanh_derivative(a):
    # eq. K9: 1 - a**2, factored where it cancels
    m = abs(a)
    return (1.0 - m) * (1.0 + m) if m >= 0.5 else 1.0 - a * a


@_jit
def _sigmoid_derivative(a):
    return a * (1.0 - a)


@_jit
def _softplus_derivative(a):
    # eq. K9: 1 - exp(-a) = sigmoid(z) from a = softplus(z)
    return -expm1_neg(-a)


@_jit
def _identity(x):
    return x


@_jit
def _relu(x):
    return max(x, 0.0)  # NaN stays NaN


@_jit
def _leaky_relu(x):
    return x if x >= 0 else (LEAKY_SLOPE * x if x < 0 else x)  # the last: NaN


@_jit
def _relu_derivative(a):
    return 1.0 if a > 0 else (0.0 if a <= 0 else a)  # NaN stays NaN


@_jit
def _leaky_relu_derivative(a):
    return 1.0 if a > 0 else (LEAKY_SLOPE if a <= 0 else a)
