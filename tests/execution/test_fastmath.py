"""The compiled float64 kernels against mpmath: at most 2 ulp (issue 13)."""

import numpy as np
import pytest

from mlpckpt.testing import assert_bitwise_equal

fastmath = pytest.importorskip("mlpckpt.execution._fastmath")
from mlpckpt.execution import _compiled as fastkernels  # noqa: E402
mp = pytest.importorskip("mpmath")

mp.mp.prec = 200

ULP_MAX = 2


def ordered(x):
    """float64 -> int64 that counts representable numbers (ulp distance = difference)."""
    i = np.asarray(x, dtype=np.float64).view(np.int64)
    return np.where(i < 0, np.int64(-(2**63)) - i, i)


def ulps(got, want):
    got, want = np.asarray(got), np.asarray(want)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    return np.where(same, 0, np.abs(ordered(got) - ordered(want)))


def sample(rng, lo, hi, n=1500):
    """Points spread over [lo, hi]: uniform, log-uniform in |x| of each sign, and edges."""
    mags = 10.0 ** rng.uniform(-320, np.log10(max(abs(lo), abs(hi))), n)
    signed = np.concatenate([mags, -mags])
    pts = np.concatenate([rng.uniform(lo, hi, n), rng.uniform(-2, 2, n), signed])
    edges = [0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-8, -1e-8, 0.1733, -0.1733,
             0.3466, -0.3466, 0.5, -0.5, 0.625, -0.625, 1.0, -1.0, 18.7, 19.06, 36.7, 37.0,
             40.0, -40.0, 80.0, -708.4, -709.0, -745.0, -745.2, -746.0, 709.0]
    pts = np.concatenate([pts, edges])
    return np.sort(pts[(pts >= lo) & (pts <= hi)])


def apply(kernel, x, *extra):
    z = np.array(x, dtype=np.float64).reshape(1, -1).copy()
    if extra:
        kernel(extra[0].reshape(1, -1).copy(), z)
        return z.ravel()
    kernel(z, np.zeros((1, 1)))
    return z.ravel()


REFERENCE = {
    "tanh": lambda x: mp.tanh(x),
    "sigmoid": lambda x: 1 / (1 + mp.exp(-x)),
    "softplus": lambda x: mp.log1p(mp.exp(x)),
}
#: f'(z) as a function of the stored output a = f(z)
REFERENCE_DERIVATIVE = {
    "tanh": lambda a: 1 - a * a,
    "sigmoid": lambda a: a * (1 - a),
    "softplus": lambda a: -mp.expm1(-a),
}
RANGE = {"tanh": (-1e300, 1e300), "sigmoid": (-800.0, 800.0), "softplus": (-800.0, 1e300)}


def correctly_rounded(fn, xs):
    return np.array([float(fn(mp.mpf(float(x)))) for x in xs])


SMOOTH = ("sigmoid", "softplus", "tanh")


@pytest.mark.parametrize("name", SMOOTH)
def test_forward_within_2_ulp(name):
    xs = sample(np.random.default_rng(13), *RANGE[name])
    got = apply(fastkernels.FORWARD[name], xs)
    err = ulps(got, correctly_rounded(REFERENCE[name], xs))
    worst = int(np.argmax(err))
    assert err.max() <= ULP_MAX, (name, xs[worst], got[worst], err.max())


@pytest.mark.parametrize("name", SMOOTH)
def test_derivative_within_2_ulp(name):
    xs = sample(np.random.default_rng(14), *RANGE[name])
    a = apply(fastkernels.FORWARD[name], xs)
    got = apply(fastkernels.DERIVATIVE[name], np.ones_like(a), a)
    err = ulps(got, correctly_rounded(REFERENCE_DERIVATIVE[name], a))
    worst = int(np.argmax(err))
    assert err.max() <= ULP_MAX, (name, a[worst], got[worst], err.max())


@pytest.mark.parametrize("name", SMOOTH)
def test_special_values(name):
    got = apply(fastkernels.FORWARD[name], [np.nan, np.inf, -np.inf])
    want = {"tanh": [np.nan, 1.0, -1.0], "sigmoid": [np.nan, 1.0, 0.0],
            "softplus": [np.nan, np.inf, 0.0]}[name]
    np.testing.assert_array_equal(got, want)  # values: a NaN's sign and payload are not promised


def test_exp_neg_and_expm1_neg():
    xs = -np.abs(sample(np.random.default_rng(15), -760.0, 760.0))
    got = apply(fastkernels.FORWARD["sigmoid"], xs)  # smoke: exp enters every map
    assert np.all(np.isfinite(got))
    import numba

    exp_v = numba.njit(lambda v: [fastmath.exp_neg(t) for t in v])
    expm1_v = numba.njit(lambda v: [fastmath.expm1_neg(t) for t in v])
    assert ulps(np.array(exp_v(xs)), correctly_rounded(mp.exp, xs)).max() <= 1
    assert ulps(np.array(expm1_v(xs)), correctly_rounded(mp.expm1, xs)).max() <= 1


def test_split_of_ln2():
    # eq. K1: LN2_HI + LN2_LO is ln 2 to 2e-23, and k * LN2_HI is exact
    assert abs(mp.mpf(fastmath.LN2_HI) + mp.mpf(fastmath.LN2_LO) - mp.log(2)) < 1e-22
    assert int(np.float64(fastmath.LN2_HI).view(np.int64)) & 0xFFFFFFFF == 0


@pytest.mark.parametrize("name", SMOOTH)
def test_bias_fused_and_derivative_leaves_a(name):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((5, 7))
    b = rng.standard_normal((5, 1))
    out = z.copy()
    fastkernels.FORWARD[name](out, b)
    assert_bitwise_equal(out, apply(fastkernels.FORWARD[name], (z + b).ravel()).reshape(5, 7))
    a = out.copy()
    da = rng.standard_normal((5, 7))
    want = da * apply(fastkernels.DERIVATIVE[name], np.ones(35), a.ravel()).reshape(5, 7)
    fastkernels.DERIVATIVE[name](a, da)
    assert_bitwise_equal(a, out)
    assert_bitwise_equal(da, want)


@pytest.mark.parametrize("name", ["identity", "relu", "leaky_relu"])
def test_piecewise_maps_equal_numpy_bitwise(name):
    # the non-smooth maps are exact in both paths: the same bits as NumPy's
    from mlpckpt.core import _activations as activations

    rng = np.random.default_rng(5)
    z = np.concatenate([rng.standard_normal((4, 50)) * 1e3, np.array([[0.0, -0.0, np.nan, np.inf, -np.inf] * 10] * 4)], axis=1)
    b = rng.standard_normal((4, 1))
    want = activations.ACTIVATIONS[name][0](z + b)
    got = z.copy()
    fastkernels.FORWARD[name](got, b)
    assert_bitwise_equal(got, want)
    if name == "identity":
        return
    da = rng.standard_normal(got.shape)
    want_da = activations.ACTIVATIONS[name][1](want.copy(), da.copy())
    fastkernels.DERIVATIVE[name](got, da)
    assert_bitwise_equal(da, want_da)
    assert fastmath.LEAKY_SLOPE == activations.LEAKY_SLOPE
