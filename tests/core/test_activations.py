"""Activation table: forward values, derivatives from outputs, stability,
complex safety."""

import numpy as np
import pytest

from mlpckpt.core import _activations as A

NAMES = sorted(A.ACTIVATIONS)
REFERENCE = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": lambda z: (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z)),
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "softplus": lambda z: np.log(1.0 + np.exp(z)),
}


@pytest.fixture
def z():
    # away from the relu kink so central differences are valid
    rng = np.random.default_rng(0)
    v = rng.uniform(-4, 4, size=(7, 5))
    v[np.abs(v) < 1e-3] = 0.5
    return v


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_reference(name, z):
    np.testing.assert_allclose(A.forward(name, z), REFERENCE[name](z), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_from_output_matches_central_difference(name, z):
    h = 1e-6
    numeric = (REFERENCE[name](z + h) - REFERENCE[name](z - h)) / (2 * h)
    analytic = A.derivative(name, A.forward(name, z))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_in_place(name, z):
    buf = z.copy()
    out = A.ACTIVATIONS[name][0](buf)
    assert out is buf or np.shares_memory(out, buf)


def test_sigmoid_stable_for_large_arguments():
    z = np.array([[-1000.0, -745.0, -40.0, 0.0, 40.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = A.forward("sigmoid", z)
    assert np.all(np.isfinite(s))
    assert s[0, 0] == 0.0 and s[0, -1] == 1.0 and s[0, 3] == 0.5
    # relative accuracy for very negative z: sigma(-40) = e^-40 / (1 + e^-40)
    assert abs(s[0, 2] / (np.exp(-40.0) / (1 + np.exp(-40.0))) - 1) < 1e-13


def test_softplus_stable_for_large_arguments():
    z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    with np.errstate(over="raise"):
        s = A.forward("softplus", z)
    np.testing.assert_allclose(s, [[0.0, np.exp(-50.0), np.log(2.0), 50.0, 1000.0]], rtol=1e-15)


@pytest.mark.parametrize("name", sorted(A.SMOOTH))
def test_smooth_activations_are_complex_safe(name, z):
    # complex step: Im f(z + ih) / h equals f'(z) to rounding error
    h = 1e-30
    f = A.forward(name, z + 1j * h)
    np.testing.assert_allclose(f.real, A.forward(name, z), rtol=1e-14, atol=1e-300)
    analytic = A.derivative(name, A.forward(name, z))
    np.testing.assert_allclose(f.imag / h, analytic, rtol=1e-13, atol=1e-300)
    # the derivative from a complex output is the analytic continuation too
    d = A.derivative(name, f)
    np.testing.assert_allclose(d.real, analytic, rtol=1e-11, atol=1e-300)  # 1 - a^2 cancels


@pytest.mark.parametrize("name", ["sigmoid", "softplus"])
def test_complex_paths_do_not_overflow(name):
    z = np.array([[-800.0 + 1e-20j, 800.0 + 1e-20j]])
    with np.errstate(over="raise", invalid="raise"):
        f = A.forward(name, z)
    assert np.all(np.isfinite(f))


def test_output_softmax_columns_sum_to_one():
    z = np.random.default_rng(1).standard_normal((4, 6)) * 300
    p = A.output_forward("softmax", z.copy())
    np.testing.assert_allclose(p.sum(axis=0), 1.0, rtol=1e-15)
    assert np.all(p >= 0)


def test_leaky_relu_chunks_cover_large_arrays():
    z = np.random.default_rng(2).standard_normal((70, 300))  # > CHUNK elements
    np.testing.assert_array_equal(A.forward("leaky_relu", z), np.where(z > 0, z, 0.01 * z))
