"""Mean-field theory (mlpckpt/experiments/meanfield.py, paper_notes/meanfield.md).

References are independent of the module: closed forms written out here,
and scipy.integrate's adaptive Gauss-Kronrod quadrature on the textbook
integrands (with phi'' where MF6's second form needs it).
"""

import math

import numpy as np
import pytest
from scipy import integrate, optimize

import mlpckpt as mc
from mlpckpt import meanfield as mf

SQ2PI = math.sqrt(2.0 * math.pi)


def _pdf(z):
    return math.exp(-0.5 * z * z) / SQ2PI


def _sech2(x):
    e = math.exp(-2.0 * abs(x))
    return 4.0 * e / (1.0 + e) ** 2


#: textbook phi, phi', phi'' (written independently of mlpckpt.core._activations)
PHI = {
    "tanh": (math.tanh, _sech2, lambda x: -2.0 * math.tanh(x) * _sech2(x)),
    "sigmoid": (lambda x: 0.5 * (1.0 + math.tanh(x / 2.0)),
                lambda x: 0.25 * _sech2(x / 2.0),
                lambda x: -0.25 * math.tanh(x / 2.0) * _sech2(x / 2.0)),
    "softplus": (lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),
                 lambda x: 0.5 * (1.0 + math.tanh(x / 2.0)),
                 lambda x: 0.25 * _sech2(x / 2.0)),
}


def _E1(f):
    return integrate.quad(lambda z: f(z) * _pdf(z), -np.inf, np.inf, epsabs=1e-14, epsrel=1e-13, limit=400)[0]


def _E2(f1, f2, q, c):
    s, r = math.sqrt(q), math.sqrt(1.0 - c * c)
    val = integrate.dblquad(
        lambda z2, z1: f1(s * z1) * f2(s * (c * z1 + r * z2)) * _pdf(z1) * _pdf(z2),
        -11.0, 11.0, -11.0, 11.0, epsabs=1e-13, epsrel=1e-12,
    )[0]
    return val


def _E2_kinked(f1, f2, q, c):
    """As _E2, split along the kinks u1 = 0 and u2 = 0 so that each piece is smooth."""
    s, r = math.sqrt(q), math.sqrt(1.0 - c * c)
    g = lambda z2, z1: f1(s * z1) * f2(s * (c * z1 + r * z2)) * _pdf(z1) * _pdf(z2)  # noqa: E731
    edge = lambda z1: -c * z1 / r  # noqa: E731  u2 = 0
    total = 0.0
    for lo1, hi1 in ((-11.0, 0.0), (0.0, 11.0)):
        total += integrate.dblquad(g, lo1, hi1, -11.0, edge, epsabs=1e-13, epsrel=1e-12)[0]
        total += integrate.dblquad(g, lo1, hi1, edge, 11.0, epsabs=1e-13, epsrel=1e-12)[0]
    return total


def _quad_V(name, q, sw, sb):
    phi = PHI[name][0]
    return sw * _E1(lambda z: phi(math.sqrt(q) * z) ** 2) + sb


def _quad_qstar(name, sw, sb):
    return optimize.brentq(lambda q: _quad_V(name, q, sw, sb) - q, 1e-9, 1e3, xtol=1e-15, rtol=1e-15)


SMOOTH_POINTS = [("tanh", 1.7, 0.05), ("tanh", 0.9, 0.3), ("tanh", 4.0, 0.3),
                 ("sigmoid", 3.0, 0.1), ("sigmoid", 30.0, 0.5), ("softplus", 1.5, 0.2)]


# ---- closed forms (1e-10) -------------------------------------------------------------

@pytest.mark.parametrize("name,alpha", [("relu", 0.0), ("leaky_relu", 0.01), ("identity", 1.0)])
@pytest.mark.parametrize("sw,sb", [(0.5, 0.1), (1.5, 0.3), (0.9, 0.0), (1.99, 1.0)])
def test_homogeneous_closed_forms(name, alpha, sw, sb):
    m = (1.0 + alpha * alpha) / 2.0
    if sw * m >= 1.0:
        with pytest.raises(ValueError, match="sigma_w2"):
            mf.q_star(name, sw, sb)
        return
    assert mf.chi1(name, sw, sb) == pytest.approx(sw * m, rel=1e-10, abs=0)
    assert mf.q_star(name, sw, sb) == pytest.approx(sb / (1.0 - sw * m), rel=1e-10, abs=1e-300)
    assert mf.length_map(name, 2.5, sw, sb) == pytest.approx(sw * m * 2.5 + sb, rel=1e-10)
    assert mf.c_star(name, sw, sb) == 1.0
    xi = -1.0 / math.log(sw * m)
    assert mf.depth_scales(name, sw, sb) == pytest.approx((xi, xi), rel=1e-10)


def test_relu_chi1_is_half_sigma_w2_and_he_point_is_critical():
    for sw in (0.3, 1.0, 1.7):
        assert mf.chi1("relu", sw, 0.1) == pytest.approx(sw / 2.0, rel=1e-12)
    assert mf.chi1("relu", 2.0, 0.0) == 1.0
    assert mf.depth_scales("relu", 2.0, 0.0) == (math.inf, math.inf)
    with pytest.raises(ValueError, match="sigma_w2: got 2.0 .*every q is a fixed point"):
        mf.q_star("relu", 2.0, 0.0)


@pytest.mark.parametrize("c", [-1.0, -0.6, 0.0, 0.3, 0.95, 1.0])
def test_relu_correlation_map_is_the_arccosine_kernel(c):
    sw, sb = 1.2, 0.2
    q = sb / (1.0 - sw / 2.0)
    theta = math.acos(c)
    kernel = q * (math.sin(theta) + (math.pi - theta) * c) / (2.0 * math.pi)
    expected = (sw * kernel + sb) / q
    assert mf.correlation_map("relu", c, sw, sb) == pytest.approx(expected, rel=1e-12)
    # and the kernel against adaptive quadrature (an independent check of MF9)
    if abs(c) < 1.0:
        relu = lambda x: max(x, 0.0)  # noqa: E731
        assert kernel == pytest.approx(_E2_kinked(relu, relu, q, c), abs=1e-8)


def test_leaky_relu_correlation_map_against_quadrature():
    sw, sb, c = 1.4, 0.1, 0.4
    q = mf.q_star("leaky_relu", sw, sb)
    leaky = lambda x: x if x > 0 else 0.01 * x  # noqa: E731
    expected = (sw * _E2_kinked(leaky, leaky, q, c) + sb) / q
    assert mf.correlation_map("leaky_relu", c, sw, sb) == pytest.approx(expected, abs=1e-8)


def test_tanh_without_bias_is_critical_at_sigma_w2_one():
    assert mf.chi1("tanh", 1.0, 0.0) == pytest.approx(1.0, abs=1e-10)
    assert mf.q_star("tanh", 1.0, 0.0) == 0.0
    for sw in (0.3, 0.8, 0.999):
        assert mf.q_star("tanh", sw, 0.0) == 0.0
        assert mf.chi1("tanh", sw, 0.0) == pytest.approx(sw, abs=1e-12)
    assert mf.depth_scales("tanh", 1.0, 0.0) == (math.inf, math.inf)
    # just above 1, q* is small and positive: V(q) ~ sigma_w2 (q - 2q^2) gives (sigma_w2 - 1)/(2 sigma_w2)
    q = mf.q_star("tanh", 1.001, 0.0)
    assert q == pytest.approx(0.001 / 2.002, rel=1e-2)
    assert mf.chi1("tanh", 1.001, 0.0) > 1.0  # the chaotic side


# ---- smooth activations against adaptive quadrature (1e-8) --------------------------

@pytest.mark.parametrize("name", sorted(PHI))
@pytest.mark.parametrize("q", [1e-8, 0.02, 0.7, 3.0, 40.0, 400.0])
def test_length_map_against_quad(name, q):
    assert mf.length_map(name, q, 1.3, 0.1) == pytest.approx(_quad_V(name, q, 1.3, 0.1), rel=1e-8)


@pytest.mark.parametrize("name,sw,sb", SMOOTH_POINTS)
def test_fixed_point_chi1_and_xi_q_against_quad(name, sw, sb):
    phi, dphi, d2phi = PHI[name]
    q = _quad_qstar(name, sw, sb)
    assert mf.q_star(name, sw, sb) == pytest.approx(q, rel=1e-8)
    s = math.sqrt(q)
    x1 = sw * _E1(lambda z: dphi(s * z) ** 2)
    assert mf.chi1(name, sw, sb) == pytest.approx(x1, rel=1e-8)
    slope = x1 + sw * _E1(lambda z: phi(s * z) * d2phi(s * z))  # MF6's second form
    xi_q, xi_c = mf.depth_scales(name, sw, sb)
    assert xi_q == pytest.approx(-1.0 / math.log(slope), rel=1e-8)
    if x1 < 1.0:
        assert mf.c_star(name, sw, sb) == 1.0
        assert xi_c == pytest.approx(-1.0 / math.log(x1), rel=1e-8)


@pytest.mark.parametrize("c", [-0.5, 0.2, 0.9])
def test_tanh_correlation_map_against_dblquad(c):
    sw, sb = 2.5, 0.1
    q = mf.q_star("tanh", sw, sb)
    expected = (sw * _E2(math.tanh, math.tanh, q, c) + sb) / q
    assert mf.correlation_map("tanh", c, sw, sb) == pytest.approx(expected, abs=1e-8)


def test_chaotic_tanh_c_star_and_xi_c_against_dblquad():
    sw, sb = 4.0, 0.3
    q = mf.q_star("tanh", sw, sb)
    cs = mf.c_star("tanh", sw, sb)
    assert 0.0 < cs < 1.0
    # c* is a fixed point of the independently integrated map
    assert (sw * _E2(math.tanh, math.tanh, q, cs) + sb) / q == pytest.approx(cs, abs=1e-8)
    dphi = PHI["tanh"][1]
    chi_c = sw * _E2(dphi, dphi, q, cs)
    assert chi_c < 1.0  # the stable root
    assert mf.depth_scales("tanh", sw, sb)[1] == pytest.approx(-1.0 / math.log(chi_c), rel=1e-7)


def test_odd_activation_without_bias_decorrelates_to_zero():
    assert mf.c_star("tanh", 1.5, 0.0) == 0.0
    assert mf.correlation_map("tanh", 0.0, 1.5, 0.0) == pytest.approx(0.0, abs=1e-15)


def test_length_path_iterates_to_q_star_and_critical_line_is_where_xi_c_diverges():
    path = mf.length_path("tanh", 2.0, 200, 1.7, 0.05)
    assert path.shape == (200,) and path[0] == 2.0
    assert path[-1] == pytest.approx(mf.q_star("tanh", 1.7, 0.05), rel=1e-12)
    # Schoenholz et al. fig. 1: at sigma_b2 = 0.05 the edge of chaos is near sigma_w2 = 1.76
    edge = optimize.brentq(lambda s: mf.chi1("tanh", s, 0.05) - 1.0, 1.5, 2.0, xtol=1e-12)
    assert 1.74 < edge < 1.78
    assert mf.depth_scales("tanh", edge - 0.01, 0.05)[1] > 100
    assert mf.depth_scales("tanh", edge + 0.01, 0.05)[1] > 100
    assert mf.depth_scales("tanh", 1.0, 0.05)[1] < 10


# ---- no fixed point, bad arguments ---------------------------------------------------

@pytest.mark.parametrize("name,sw,sb", [("relu", 2.5, 0.1), ("relu", 2.0, 0.1), ("identity", 1.5, 0.0),
                                        ("leaky_relu", 2.5, 0.0), ("softplus", 2.0, 0.1), ("softplus", 3.0, 0.0)])
def test_no_finite_fixed_point_names_sigma_w2(name, sw, sb):
    for fn in (mf.q_star, mf.chi1, mf.depth_scales, mf.c_star):
        with pytest.raises(ValueError, match="sigma_w2"):
            fn(name, sw, sb)


@pytest.mark.parametrize("kwargs,word", [
    (dict(activation="swish"), "activation"), (dict(sigma_w2=0.0), "sigma_w2"),
    (dict(sigma_w2=-1.0), "sigma_w2"), (dict(sigma_w2=float("nan")), "sigma_w2"),
    (dict(sigma_w2=True), "sigma_w2"), (dict(sigma_w2="1"), "sigma_w2"),
    (dict(sigma_b2=-0.1), "sigma_b2"), (dict(sigma_b2=float("inf")), "sigma_b2"),
])
def test_bad_arguments_are_named(kwargs, word):
    args = dict(activation="tanh", sigma_w2=1.5, sigma_b2=0.1) | kwargs
    for fn in (mf.q_star, mf.chi1, mf.depth_scales):
        with pytest.raises(ValueError, match=word):
            fn(**args)
    with pytest.raises(ValueError, match=word):
        mf.length_map(args["activation"], 1.0, args["sigma_w2"], args["sigma_b2"])


def test_bad_q_c_depth_are_named():
    with pytest.raises(ValueError, match="q: expected"):
        mf.length_map("tanh", -1.0, 1.5, 0.1)
    with pytest.raises(ValueError, match="q: expected"):
        mf.length_map("tanh", float("nan"), 1.5, 0.1)
    with pytest.raises(ValueError, match="c: expected"):
        mf.correlation_map("tanh", 1.5, 1.5, 0.1)
    with pytest.raises(ValueError, match="depth"):
        mf.length_path("tanh", 1.0, 0, 1.5, 0.1)
    with pytest.raises(ValueError, match="sigma_w2.*q\\* = 0"):
        mf.correlation_map("tanh", 0.5, 0.5, 0.0)


# ---- the theory against a wide random net -------------------------------------------

@pytest.mark.slow
def test_wide_net_variance_follows_the_length_map():
    """Width 2000, 20 tanh layers, mc.Gaussian(1.5, 0): mean(z[k]^2) within 3% of q^k.

    256 inputs of mean(x^2) = 4; without a bias they stay decorrelated (c* = 0), so the
    estimate averages width x batch nearly independent terms: its relative error is about
    sqrt(2 / (2000 * 256)) = 0.3% per layer (paper_notes/meanfield.md, section 4; 0.4-0.9%
    at worst over 20 layers for four seeds). A bias correlates the inputs and leaves one
    net's estimate about sqrt(2 / 2000) = 3% noisy per layer.
    """
    sw, sb, width, depth, batch = 1.5, 0.0, 2000, 20, 256
    net = mc.MLP([width] * (depth + 1), activation="tanh", init=mc.Gaussian(sw, sb), seed=7)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((width, batch))
    X *= 2.0 / np.sqrt(np.mean(X * X, axis=0))  # every input with mean(x^2) = 4
    predicted = mf.length_path("tanh", sw * 4.0 + sb, depth, sw, sb)
    a, measured = X, []
    for W, b in zip(net.weights, net.biases):
        z = W @ a + b
        measured.append(np.mean(z * z))
        a = np.tanh(z)
    measured = np.array(measured)
    assert np.all(np.abs(measured / predicted - 1.0) < 0.03), measured / predicted
    # and the test can tell a wrong theory apart: the prediction for sigma_w2 = 1.6 misses
    wrong = mf.length_path("tanh", 1.6 * 4.0 + sb, depth, 1.6, sb)
    assert np.any(np.abs(measured / wrong - 1.0) > 0.03)


@pytest.mark.slow
def test_just_above_the_edge_of_chaos_and_maps_stay_correlations():
    # c' rounds to c just below 1: c* is 1 within rounding, not a bracketing error
    for sw, sb in ((1.00000001, 0.0), (1.0 + 2e-16, 0.0)):
        assert 0.0 <= mf.c_star("tanh", sw, sb) <= 1.0
        xi_q, xi_c = mf.depth_scales("tanh", sw, sb)
        assert xi_q > 1e6 and xi_c > 1e6
    for name, c, sw, sb in (("tanh", 1.0, 1e4, 1.0), ("tanh", -1.0, 2.5, 0.0), ("sigmoid", 1.0, 1e-8, 0.0)):
        out = mf.correlation_map(name, c, sw, sb)
        assert -1.0 <= out <= 1.0
        mf.correlation_map(name, out, sw, sb)  # iterating the map stays in its domain
    for bad in (math.inf, -math.inf):
        with pytest.raises(ValueError, match="q: expected a finite real"):
            mf.length_map("tanh", bad, 1.0)
        with pytest.raises(ValueError, match="q1: expected a finite real"):
            mf.length_path("relu", bad, 3, 1.0)
