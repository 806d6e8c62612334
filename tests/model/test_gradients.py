"""loss_and_grad and forward against independent references: central
differences in float64 and a plain NumPy forward; dtypes."""

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.core._losses import output_for
from mlpckpt.testing import make_data

SMOOTH = ["identity", "sigmoid", "tanh", "softplus"]


@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
@pytest.mark.parametrize("activation", SMOOTH + ["relu", "leaky_relu"])
def test_gradients_match_central_differences(activation, loss, central_diff_grads):
    sizes = [3, 5, 4, 2]
    net = mc.MLP(sizes, activation=activation, output=output_for(loss), seed=1)
    for b in net.biases:  # non-zero biases exercise eq. 5
        b += 0.1
    X, Y = make_data(sizes, 6, loss, seed=2)
    _, grads = net.loss_and_grad(X, Y, loss)
    num_w, num_b = central_diff_grads(net, X, Y, loss)
    # relu kinks: with these seeds no pre-activation lies within h of 0
    for g, n in zip(grads.weights + grads.biases, num_w + num_b):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("output", ["identity", "sigmoid", "softmax"])
def test_mse_with_every_output(output, central_diff_grads):
    sizes = [4, 3, 3]
    net = mc.MLP(sizes, activation="tanh", output=output, seed=3)
    X, Y = make_data(sizes, 5, "mse", seed=4)
    _, grads = net.loss_and_grad(X, Y, "mse")
    num_w, num_b = central_diff_grads(net, X, Y, "mse")
    for g, n in zip(grads.weights + grads.biases, num_w + num_b):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-10)


def test_float32_computation_stays_float32():
    sizes = [4, 8, 2]
    net = mc.MLP(sizes, dtype="float32", seed=0)
    X, Y = make_data(sizes, 5, "mse")  # float64 input is cast
    out = net.forward(X)
    loss, grads = net.loss_and_grad(X, Y, "mse")
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.weights + grads.biases)
    net64 = mc.MLP(sizes, dtype="float64", seed=0)
    loss64, _ = net64.loss_and_grad(X, Y, "mse")
    assert loss == pytest.approx(loss64, rel=1e-5)


def test_integer_input_is_cast():
    net = mc.MLP([2, 3, 1], seed=0)
    X = np.array([[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(net.forward(X), net.forward(X.astype(float)))


def test_forward_matches_a_plain_reference():
    sizes = [3, 4, 4, 2]
    net = mc.MLP(sizes, activation=["tanh", "sigmoid"], output="softmax", seed=5)
    X, _ = make_data(sizes, 7, "mse")
    a = X
    for W, b, f in zip(net.weights[:-1], net.biases[:-1], [np.tanh, lambda z: 1 / (1 + np.exp(-z))]):
        a = f(W @ a + b)
    z = net.weights[-1] @ a + net.biases[-1]
    e = np.exp(z - z.max(axis=0))
    np.testing.assert_allclose(net.forward(X), e / e.sum(axis=0), rtol=1e-14)
