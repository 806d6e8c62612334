"""Mean-field signal propagation in wide random MLPs (paper_notes/meanfield.md).

For nets drawn with ``init=mc.Gaussian(sigma_w2, sigma_b2)`` and one hidden
activation, as the width goes to infinity: the length map and its fixed
point ``q*`` (MF1, MF2), the correlation map and ``c*`` (MF3, MF4),
``chi1`` (MF5) and the depth scales ``xi_q, xi_c`` (MF7) of Poole et al.
(2016) and Schoenholz et al. (2017). identity, relu and leaky_relu have
closed forms (MF8-MF10); tanh, sigmoid and softplus are integrated by the
trapezoidal rule with a step sized from the nearest singularity (MF11),
correct to a few ulp. ``phi`` and ``phi'`` are the library's own.

Every function takes scalars and returns floats.
"""

import math

import numpy as np
from scipy.optimize import brentq

from ..core import _activations as act
from ..core._validate import check_choice, check_int, check_positive_float

__all__ = [
    "length_map",
    "length_path",
    "q_star",
    "correlation_map",
    "c_star",
    "chi1",
    "depth_scales",
]

#: phi(x) = alpha x + (1 - alpha) relu(x): closed forms (MF8-MF10)
HOMOGENEOUS = {"identity": 1.0, "relu": 0.0, "leaky_relu": act.LEAKY_SLOPE}
#: distance of phi's nearest complex singularity from the real axis (MF11)
STRIP = {"tanh": math.pi / 2, "sigmoid": math.pi, "softplus": math.pi}
assert set(HOMOGENEOUS) | set(STRIP) == set(act.ACTIVATIONS)

_TAIL = 10.0  # |z| > 10 carries e^-50 of the Gaussian mass
_DIGITS = 40.0  # exponent of the discretisation error bound (MF11)
_CHUNK = 256  # rows of the 2-D rule evaluated at once


def _check(activation, sigma_w2, sigma_b2):
    check_choice("activation", activation, act.ACTIVATIONS)
    return check_positive_float("sigma_w2", sigma_w2), _check_real("sigma_b2", sigma_b2, 0.0, math.inf)


def _check_real(name, value, low, high):
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not (low <= value <= high):
        raise ValueError(f"{name}: expected a finite real in [{low}, {high}], got {value!r}")
    return float(value)


def _rule(activation, q):
    """Trapezoid nodes ``z`` and weights ``w`` with ``sum(w g(z)) ~ E[g(z)]`` (MF11)."""
    a = min(0.9 * STRIP[activation] / math.sqrt(q), 6.0) if q > 0 else 6.0
    h = 2.0 * math.pi * a / (_DIGITS + a * a / 2.0)
    z = np.arange(-math.ceil(_TAIL / h), math.ceil(_TAIL / h) + 1) * h
    return z, h * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _phi(activation, x):
    return act.forward(activation, x)


def _dphi(activation, x):
    return act.derivative(activation, act.forward(activation, x))


def _expect1(activation, q, which):
    """E[F(sqrt(q) z)] for F = phi^2 ("phi2"), phi'^2 ("dphi2") or MF6's z phi phi'/sqrt(q)."""
    z, w = _rule(activation, q)
    x = math.sqrt(q) * z
    if which == "phi2":
        return float(w @ _phi(activation, x) ** 2)
    d = _dphi(activation, x)
    if which == "dphi2":
        return float(w @ d**2)
    return float(w @ (z * _phi(activation, x) * d)) / math.sqrt(q)


def _expect2(activation, q, c, fn):
    """E[fn(u1) fn(u2)], u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2) (MF3)."""
    z, w = _rule(activation, q)
    s, r = math.sqrt(q), math.sqrt(max(0.0, 1.0 - c * c))
    f1 = fn(activation, s * z)
    total = 0.0
    for i in range(0, z.size, _CHUNK):
        zi = z[i : i + _CHUNK, None]
        f2 = fn(activation, s * (c * zi + r * z[None, :]))
        total += float((w[i : i + _CHUNK] * f1[i : i + _CHUNK]) @ (f2 @ w))
    return total


def length_map(activation, q, sigma_w2, sigma_b2=0.0):
    """One step of the length map, ``V(q) = sigma_w2 E[phi(sqrt(q) z)^2] + sigma_b2`` (MF1).

    Parameters
    ----------
    activation : str
        One of the library's activations.
    q : float, >= 0
        Variance of a pre-activation entry of layer k.
    sigma_w2, sigma_b2 : float
        Weight variance times fan-in (> 0) and bias variance (>= 0).

    Returns
    -------
    float
        The variance of a pre-activation entry of layer k + 1.
    """
    sigma_w2, sigma_b2 = _check(activation, sigma_w2, sigma_b2)
    q = _check_real("q", q, 0.0, math.inf)
    if activation in HOMOGENEOUS:
        alpha = HOMOGENEOUS[activation]
        return sigma_w2 * q * (1.0 + alpha * alpha) / 2.0 + sigma_b2  # MF8
    return sigma_w2 * _expect1(activation, q, "phi2") + sigma_b2


def length_path(activation, q1, depth, sigma_w2, sigma_b2=0.0):
    """``q^1, ..., q^depth`` of MF1 from ``q^1 = q1``: the predicted variance of ``z[k]``.

    Parameters
    ----------
    q1 : float, >= 0
        Variance of ``z[1]``: ``sigma_w2 * mean(X**2 over features) + sigma_b2`` for one input.
    depth : int, >= 1

    Returns
    -------
    ndarray, shape (depth,)
        Entry ``k - 1`` is the variance of an entry of ``z[k]``.
    """
    depth = check_int("depth", depth)
    out = np.empty(depth)
    out[0] = _check_real("q1", q1, 0.0, math.inf)
    for k in range(1, depth):
        out[k] = length_map(activation, out[k - 1], sigma_w2, sigma_b2)
    return out


def q_star(activation, sigma_w2, sigma_b2=0.0):
    """The stable fixed point of the length map (MF2).

    Raises
    ------
    ValueError
        Naming ``sigma_w2`` when the map has no finite stable fixed point,
        or when every ``q`` is fixed (relu at ``sigma_w2 = 2, sigma_b2 = 0``).
    """
    sigma_w2, sigma_b2 = _check(activation, sigma_w2, sigma_b2)
    if activation in HOMOGENEOUS:
        alpha = HOMOGENEOUS[activation]
        slope = sigma_w2 * (1.0 + alpha * alpha) / 2.0  # MF8
        limit = 2.0 / (1.0 + alpha * alpha)
        if slope < 1.0:
            return sigma_b2 / (1.0 - slope)
        if slope == 1.0 and sigma_b2 == 0.0:
            raise ValueError(
                f"sigma_w2: got {sigma_w2!r} with sigma_b2=0 for {activation}: every q is a "
                "fixed point of the length map (it is the identity); q* is not defined"
            )
        raise ValueError(
            f"sigma_w2: got {sigma_w2!r}; the length map of {activation} with sigma_b2={sigma_b2!r} "
            f"has no finite stable fixed point (expected sigma_w2 < {limit!r})"
        )
    if activation == "softplus" and sigma_w2 >= 2.0:  # softplus >= relu: V(q) > q (MF8)
        raise ValueError(
            f"sigma_w2: got {sigma_w2!r}; the length map of softplus has no finite fixed "
            "point (expected sigma_w2 < 2.0)"
        )
    g = lambda q: length_map(activation, q, sigma_w2, sigma_b2) - q  # noqa: E731
    lo = 0.0
    if g(0.0) == 0.0:  # phi(0) = 0 and sigma_b2 = 0: q = 0 is fixed
        if sigma_w2 * _dphi(activation, np.zeros(1))[0] ** 2 <= 1.0:
            return 0.0  # and stable (MF6 at q = 0): the only fixed point, V being concave
        lo = sigma_w2  # V(q) > q just above 0: halve down to such a q
        while g(lo) <= 0.0:
            lo /= 2.0
    hi = max(1.0, 2.0 * lo)
    while g(hi) > 0.0:  # V grows at most linearly; a slope >= 1 at infinity means no root
        hi *= 2.0
        if hi > 1e8:
            raise ValueError(
                f"sigma_w2: got {sigma_w2!r}; the length map of {activation} with sigma_b2="
                f"{sigma_b2!r} has no fixed point below q = 1e8"
            )
    return brentq(g, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)  # MF12


def correlation_map(activation, c, sigma_w2, sigma_b2=0.0):
    """``c'`` of MF3 for two inputs at the fixed length ``q*``.

    Parameters
    ----------
    c : float in [-1, 1]
        Correlation of two inputs' pre-activations at layer k.

    Returns
    -------
    float
        Their correlation at layer k + 1.
    """
    q = q_star(activation, sigma_w2, sigma_b2)
    c = _check_real("c", c, -1.0, 1.0)
    sigma_w2, sigma_b2 = float(sigma_w2), float(sigma_b2)
    if q == 0.0:
        raise ValueError(f"sigma_w2: got {sigma_w2!r}; q* = 0, so the correlation map is not defined")
    if activation in HOMOGENEOUS:  # MF9
        alpha = HOMOGENEOUS[activation]
        theta = math.acos(c)
        k = q * (math.sin(theta) + (math.pi - theta) * c) / (2.0 * math.pi)
        e = alpha * q * c + (1.0 - alpha) ** 2 * k
    else:
        e = _expect2(activation, q, c, _phi)
    return min(1.0, max(-1.0, (sigma_w2 * e + sigma_b2) / q))  # a correlation: rounding must not leave [-1, 1]


def c_star(activation, sigma_w2, sigma_b2=0.0):
    """The stable fixed point of the correlation map (MF4): 1 when ``chi1 <= 1``."""
    if chi1(activation, sigma_w2, sigma_b2) <= 1.0:
        return 1.0
    g = lambda c: correlation_map(activation, c, sigma_w2, sigma_b2) - c  # noqa: E731
    hi, step = 1.0, 1.0 / 1024
    while g(hi - step) >= 0.0:  # chaotic: c' < c just below 1
        step /= 2.0
        if step < 1e-12:  # chi1 - 1 within rounding: the map does not fall below c = 1 measurably
            return 1.0
    if g(0.0) <= 0.0:  # c'(0) = (sigma_w2 E[phi]^2 + sigma_b2)/q* >= 0: 0 when phi is odd, sigma_b2 = 0
        return 0.0
    return brentq(g, 0.0, hi - step, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)


def chi1(activation, sigma_w2, sigma_b2=0.0):
    """``chi1 = sigma_w2 E[phi'(sqrt(q*) z)^2]`` (MF5): 1 at the edge of chaos.

    For identity, relu and leaky_relu it does not depend on ``q*`` (MF8), so
    it is defined (1) at the marginal point where every ``q`` is fixed (relu
    at ``sigma_w2 = 2, sigma_b2 = 0``); where no finite ``q*`` exists it
    raises ``ValueError`` naming ``sigma_w2``, as :func:`q_star` does.
    """
    sigma_w2, sigma_b2 = _check(activation, sigma_w2, sigma_b2)
    if activation in HOMOGENEOUS:
        alpha = HOMOGENEOUS[activation]
        x1 = sigma_w2 * (1.0 + alpha * alpha) / 2.0
        if x1 != 1.0 or sigma_b2 != 0.0:  # the marginal map needs no q*; otherwise q* must exist
            q_star(activation, sigma_w2, sigma_b2)
        return x1
    q = q_star(activation, sigma_w2, sigma_b2)
    if q == 0.0:
        return sigma_w2 * float(_dphi(activation, np.zeros(1))[0]) ** 2
    return sigma_w2 * _expect1(activation, q, "dphi2")


def _depth(slope):
    # MF7: -1/ln(slope); infinite at slope 1 (criticality)
    return math.inf if slope >= 1.0 else (0.0 if slope <= 0.0 else -1.0 / math.log(slope))


def depth_scales(activation, sigma_w2, sigma_b2=0.0):
    """The depth scales ``(xi_q, xi_c)`` of MF7.

    Returns
    -------
    (float, float)
        ``xi_q = -1/ln V'(q*)`` and ``xi_c = -1/ln chi_c``; ``inf`` at criticality.
    """
    x1 = chi1(activation, sigma_w2, sigma_b2)
    if activation in HOMOGENEOUS:  # V' = chi1 and c* = 1 (MF8, paper_notes 2)
        return _depth(x1), _depth(x1)
    q = q_star(activation, sigma_w2, sigma_b2)
    sigma_w2 = float(sigma_w2)
    slope = x1 if q == 0.0 else sigma_w2 * _expect1(activation, q, "mf6")  # MF6
    if q == 0.0 or x1 <= 1.0:
        return _depth(slope), _depth(x1)
    c = c_star(activation, sigma_w2, sigma_b2)
    return _depth(slope), _depth(sigma_w2 * _expect2(activation, q, c, _dphi))
