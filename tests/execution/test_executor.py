"""The executor: every strategy bitwise equal to plain backprop, at any depth,
and it counts the forward evaluations plan predicts."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from mlpckpt.core import _activations as activations
from mlpckpt.core._losses import output_for
from mlpckpt.testing import assert_bitwise_equal, make_data

STRATEGIES = [mc.Sqrt(), mc.Segments(1), mc.Segments(2), mc.Segments(3), mc.Revolve(0), mc.Revolve(1),
              mc.Revolve(2), mc.Revolve(5)]


def _assert_same_as_plain_backprop(net, X, Y, loss, strategy):
    ref_loss, ref = net.loss_and_grad(X, Y, loss)
    got_loss, got = net.loss_and_grad(X, Y, loss, strategy=strategy)
    assert got_loss == ref_loss, strategy
    assert_bitwise_equal(ref.weights + ref.biases, got.weights + got.biases, err_msg=repr(strategy))


@pytest.mark.parametrize("depth", [1, 2, 3, 7, 100])
@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_strategy_bitwise_equal(depth, loss, dtype):
    rng = np.random.default_rng(depth)
    sizes = [int(x) for x in rng.integers(2, 9, size=depth + 1)]  # uneven widths
    acts = [["tanh", "sigmoid", "relu", "leaky_relu", "softplus", "identity"][i % 6] for i in range(depth - 1)]
    net = mc.MLP(sizes, activation=acts, output=output_for(loss), dtype=dtype, seed=depth)
    X, Y = make_data(sizes, 5, loss, seed=depth, dtype=dtype)
    for strategy in STRATEGIES + [mc.Revolve(depth), mc.Segments(depth + 3)]:
        _assert_same_as_plain_backprop(net, X, Y, loss, strategy)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    depth=st.integers(1, 40),
    width=st.lists(st.integers(1, 7), min_size=41, max_size=41),
    batch=st.integers(1, 6),
    activation=st.sampled_from(sorted(activations.ACTIVATIONS)),
    loss=st.sampled_from(["mse", "bce", "cross_entropy"]),
    which=st.integers(0, 3),
    param=st.integers(0, 12),
)
def test_random_configurations_bitwise_equal(depth, width, batch, activation, loss, which, param):
    sizes = width[: depth + 1]
    strategy = [mc.Sqrt(), mc.Segments(param + 1), mc.Revolve(param), mc.StoreAll()][which]
    net = mc.MLP(sizes, activation=activation, output=output_for(loss), seed=param)
    X, Y = make_data(sizes, batch, loss, seed=depth)
    _assert_same_as_plain_backprop(net, X, Y, loss, strategy)


def test_ten_thousand_layers_run():
    net = mc.MLP([2] * 10_001, activation="tanh", init="orthogonal", seed=0)
    X, Y = make_data(net.sizes, 2, "mse")
    loss, grads = net.loss_and_grad(X, Y, "mse", strategy=mc.Sqrt())
    loss2, grads2 = net.loss_and_grad(X, Y, "mse", strategy=mc.Revolve(8))
    assert loss == loss2
    assert_bitwise_equal(grads.weights[0], grads2.weights[0])


@pytest.mark.parametrize("n", [1, 2, 3, 10, 33, 100])
@pytest.mark.parametrize(
    "strategy", [mc.StoreAll(), mc.Sqrt(), mc.Segments(4), mc.Revolve(0), mc.Revolve(2), mc.Revolve(9)]
)
def test_counted_forward_evals_equal_plan(n, strategy, run_schedule):
    net = mc.MLP([3] * (n + 1), seed=0)
    X, Y = make_data(net.sizes, 2, "mse")
    result = run_schedule(net, X, Y, "mse", strategy)
    assert result.forward_evals == mc.plan(net, 2, strategy).forward_evals
    ref = net.loss_and_grad(X, Y, "mse", strategy=strategy)  # the same run as loss_and_grad's
    assert result.loss == ref[0]
    assert_bitwise_equal(result.dW, ref[1].weights)


def test_the_count_is_of_layer_evaluations_not_of_actions(run_schedule):
    """Revolve(0) recomputes from the input: n(n + 1)/2 evaluations, counted
    one by one, for n forward actions' worth of ranges."""
    n = 12
    net = mc.MLP([3] * (n + 1), seed=0)
    X, Y = make_data(net.sizes, 2, "mse")
    assert run_schedule(net, X, Y, "mse", mc.Revolve(0)).forward_evals == n * (n + 1) // 2
    assert run_schedule(net, X, Y, "mse", mc.StoreAll()).forward_evals == n
