"""loss_and_grad: gradients against central differences (float64), out=,
dtype, and bitwise equality across strategies."""

import numpy as np
import pytest

import mlpckpt as mc
from conftest import OUTPUT_FOR, central_diff_grads, make_data

SMOOTH = ["identity", "sigmoid", "tanh", "softplus"]


@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
@pytest.mark.parametrize("activation", SMOOTH + ["relu", "leaky_relu"])
def test_gradients_match_central_differences(activation, loss):
    sizes = [3, 5, 4, 2]
    net = mc.MLP(sizes, activation=activation, output=OUTPUT_FOR[loss], seed=1)
    for b in net.biases:  # non-zero biases exercise eq. 5
        b += 0.1
    X, Y = make_data(sizes, 6, loss, seed=2)
    _, grads = net.loss_and_grad(X, Y, loss)
    num_w, num_b = central_diff_grads(net, X, Y, loss)
    # relu kinks: with these seeds no pre-activation lies within h of 0
    for g, n in zip(grads.weights + grads.biases, num_w + num_b):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("output", ["identity", "sigmoid", "softmax"])
def test_mse_with_every_output(output):
    sizes = [4, 3, 3]
    net = mc.MLP(sizes, activation="tanh", output=output, seed=3)
    X, Y = make_data(sizes, 5, "mse", seed=4)
    _, grads = net.loss_and_grad(X, Y, "mse")
    num_w, num_b = central_diff_grads(net, X, Y, "mse")
    for g, n in zip(grads.weights + grads.biases, num_w + num_b):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-10)


def test_out_buffers_are_written_in_place():
    sizes = [4, 6, 3]
    net = mc.MLP(sizes, output="softmax", seed=0)
    X, Y = make_data(sizes, 8, "cross_entropy")
    loss, fresh = net.loss_and_grad(X, Y, "cross_entropy")
    out = net.zeros_like_grads()
    ids = [id(a) for a in out.weights + out.biases]
    loss2, got = net.loss_and_grad(X, Y, "cross_entropy", out=out)
    assert got is out and [id(a) for a in got.weights + got.biases] == ids
    assert loss2 == loss
    for a, b in zip(fresh.weights + fresh.biases, out.weights + out.biases):
        assert np.array_equal(a, b)


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


@pytest.mark.parametrize("strategy", [mc.Sqrt(), mc.Segments(1), mc.Segments(2), mc.Segments(7), mc.Segments(50)])
@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
def test_strategies_are_bitwise_equal_to_store_all(strategy, loss):
    sizes = [5] + [6, 4, 7, 7, 3, 6] + [3]
    net = mc.MLP(sizes, activation="tanh", output=OUTPUT_FOR[loss], seed=0)
    X, Y = make_data(sizes, 9, loss)
    ref_loss, ref = net.loss_and_grad(X, Y, loss)
    got_loss, got = net.loss_and_grad(X, Y, loss, strategy=strategy)
    assert got_loss == ref_loss
    for a, b in zip(ref.weights + ref.biases, got.weights + got.biases):
        assert np.array_equal(a, b)
