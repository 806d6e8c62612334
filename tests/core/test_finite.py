"""Non-finite values are never silent: a non-finite loss, output or gradient
raises ValueError saying what was non-finite (a parameter block, or an
overflow from finite values), fit names the epoch and batch and leaves the
model as after the last good step, and no RuntimeWarning escapes.

(X and Y holding NaN or inf are refused by the input checks: test_mlp.)"""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from mlpckpt.testing import assert_bitwise_equal, make_data

pytestmark = pytest.mark.filterwarnings("error")  # a RuntimeWarning fails the test

STRATEGIES = [None, mc.Sqrt(), mc.Segments(2), mc.Revolve(1), mc.Budget("1MiB")]

# (net kwargs, loss): NaN propagates through every activation; inf through
# linear layers (tanh would saturate it to a finite value)
CASES = {
    "nan": (np.nan, dict(activation="tanh"), "NaN"),
    "inf": (np.inf, dict(activation="identity"), "inf"),
}


def _poisoned(which, k, value, sizes=(3, 5, 4, 2), **kw):
    net = mc.MLP(list(sizes), seed=1, **kw)
    getattr(net, which)[k][1, 0] = value
    return net


def _snapshot(net):
    return [x.copy() for x in net.weights + net.biases]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("which", ["weights", "biases"])
@pytest.mark.parametrize("k", [0, 1, 2])
@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_loss_and_grad_names_the_block(case, which, k, strategy):
    value, kw, kind = CASES[case]
    net = _poisoned(which, k, value, **kw)
    X, Y = make_data(net.sizes, 7, "mse")
    with pytest.raises(ValueError, match=rf"^loss is (nan|-?inf): {which}\[{k}\] holds {kind}"):
        net.loss_and_grad(X, Y, strategy=strategy)
    with pytest.raises(ValueError, match=rf"{which}\[{k}\] holds {kind}"):
        net.loss_and_grad(X, Y, strategy=strategy, out=net.zeros_like_grads())


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("which", ["weights", "biases"])
@pytest.mark.parametrize("k", [0, 2])
@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_fit_names_epoch_batch_and_block_and_changes_nothing(case, which, k, fuse, strategy):
    value, kw, kind = CASES[case]
    net = _poisoned(which, k, value, **kw)
    X, Y = make_data(net.sizes, 10, "mse")
    before = _snapshot(net)
    with pytest.raises(ValueError, match=rf"^epoch 1/3, batch 1/3: loss is .*{which}\[{k}\] holds {kind}"):
        net.fit(X, Y, epochs=3, batch_size=4, strategy=strategy, fuse_update=fuse,
                optimizer="momentum")
    assert_bitwise_equal(_snapshot(net), before)


@pytest.mark.parametrize("output, loss", [("identity", "mse"), ("sigmoid", "bce"),
                                          ("softmax", "cross_entropy")])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("which", ["weights", "biases"])
def test_forward_predict_predict_proba_name_the_block(output, loss, case, which):
    value, kw, kind = CASES[case]
    net = _poisoned(which, 2, value, output=output, **kw)  # the last layer: no saturation
    X, _ = make_data(net.sizes, 6, loss)
    calls = [net.forward, net.predict] + ([net.predict_proba] if output != "identity" else [])
    for call in calls:
        with pytest.raises(ValueError, match=rf"^logits hold (NaN|inf): {which}\[2\] holds {kind}"):
            call(X)


def test_nan_hidden_weight_no_longer_predicts_class_0(net, data):
    X, _ = data
    net.weights[0][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"weights\[0\] holds NaN"):
        net.predict(X)


def test_mse_targets_that_overflow_the_loss():
    net = mc.MLP([3, 4, 2], seed=0)
    X, _ = make_data(net.sizes, 5, "mse")
    Y = np.full((2, 5), 1e200)
    for strategy in STRATEGIES:
        with pytest.raises(ValueError, match=r"^loss is inf: overflow in the computation \(the "
                                             r"weights, biases and inputs are finite\)"):
            net.loss_and_grad(X, Y, strategy=strategy)
    before = _snapshot(net)
    with pytest.raises(ValueError, match=r"^epoch 1/2, batch 1/1: loss is inf: overflow"):
        net.fit(X, Y, epochs=2, batch_size=None)
    assert_bitwise_equal(_snapshot(net), before)


def test_forward_overflow_from_finite_values():
    net = mc.MLP([2, 3, 1], activation="identity", seed=0)
    net.weights[1][...] = 1e300
    with pytest.raises(ValueError, match=r"^logits hold (inf|NaN): overflow in the computation"):
        net.forward(np.full((2, 4), 1e10))


@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("batch_size, where", [(None, (25, 1)), (8, (12, 2)), (4, (6, 4))])
def test_huge_learning_rate_stops_at_the_last_good_step(fuse, batch_size, where):
    sizes = [3, 5, 5, 2]
    X, Y = make_data(sizes, 16, "mse", seed=0 if batch_size else 3)
    net = mc.MLP(sizes, seed=0)
    with pytest.raises(ValueError) as err:
        net.fit(X, Y, lr=1e6, epochs=200, batch_size=batch_size, shuffle=False, fuse_update=fuse)
    m = re.match(r"^epoch (\d+)/200, batch (\d+)/(\d+): loss is (nan|-?inf)", str(err.value))
    assert m, str(err.value)
    epoch, batch, n_batches = map(int, m.groups()[:3])
    assert (epoch, batch) == where  # this data's first non-finite loss (not batch 1 only)
    assert all(np.isfinite(x).all() for x in net.weights + net.biases)
    # the same good steps again (plain SGD keeps no state across fit calls)
    ref = mc.MLP(sizes, seed=0)
    ref.fit(X, Y, lr=1e6, epochs=epoch - 1, batch_size=batch_size, shuffle=False)
    if batch > 1:
        cols = slice(0, (batch - 1) * batch_size)
        ref.fit(X[:, cols], Y[:, cols], lr=1e6, epochs=1, batch_size=batch_size, shuffle=False)
    assert_bitwise_equal(_snapshot(net), _snapshot(ref))


def test_refused_step_leaves_the_optimiser_state_alone():
    net = mc.MLP([3, 4, 2], seed=0)
    X, _ = make_data(net.sizes, 5, "mse")
    opt = mc.Adam()
    net.fit(X, np.zeros((2, 5)), optimizer=opt, epochs=2, batch_size=None)
    assert opt.t == 2
    for fuse in (False, True):
        with pytest.raises(ValueError, match="overflow"):
            net.fit(X, np.full((2, 5), 1e200), optimizer=opt, epochs=1, batch_size=None,
                    fuse_update=fuse)
        assert opt.t == 2


def _backward_overflow_net():
    """Finite loss, gradient overflow: the last layer's weights are huge but
    see a zero input (relu of a very negative pre-activation), so the forward
    pass is finite; backward, W3.T @ dz overflows, and relu' = 0 turns the inf
    into NaN in layer 2's gradient."""
    net = mc.MLP([2, 3, 3, 3, 2], activation="relu", seed=0)
    net.biases[2][...] = -1e3  # a[3] = relu(...) = 0
    net.weights[3][...] = 1e308
    X = np.random.default_rng(0).standard_normal((2, 4))
    Y = net.forward(X) - 100.0  # dz = 2 * 100 / 8 per entry: W3.T @ dz overflows
    return net, X, Y


def test_backward_overflow_in_loss_and_grad():
    net, X, Y = _backward_overflow_net()
    for strategy in STRATEGIES:
        with pytest.raises(ValueError, match=r"^gradient dW\[0\] holds NaN: overflow in the "
                                             r"backward pass"):
            net.loss_and_grad(X, Y, strategy=strategy)


def test_backward_overflow_unfused_fit_changes_nothing():
    net, X, Y = _backward_overflow_net()
    before = _snapshot(net)
    with pytest.raises(ValueError, match=r"^epoch 1/1, batch 1/1: gradient dW\[\d\] holds NaN: "
                                         r"overflow in the backward pass"):
        net.fit(X, Y, epochs=1, batch_size=None)
    assert_bitwise_equal(_snapshot(net), before)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_backward_overflow_fused_names_the_updated_layers(strategy):
    net, X, Y = _backward_overflow_net()
    before = _snapshot(net)
    with pytest.raises(ValueError, match=r"^epoch 1/1, batch 1/1: gradient dW\[2\] holds NaN: "
                                         r"overflow in the backward pass .*; layers 2\.\.0 were "
                                         r"not updated, layers 3\.\.3 were already updated"):
        net.fit(X, Y, epochs=1, batch_size=None, fuse_update=True, strategy=strategy)
    after = _snapshot(net)
    n = net.n_layers
    # blocks W0, W1, W2, W3, b0, b1, b2, b3: layers 0..2 untouched, b3 updated
    for i in (0, 1, 2, n, n + 1, n + 2):
        assert_bitwise_equal(after[i], before[i], err_msg=f"block {i}")
    assert not np.array_equal(after[2 * n - 1], before[2 * n - 1])


@pytest.mark.parametrize("strategy", STRATEGIES[1:], ids=repr)
@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
def test_finite_values_bitwise_unchanged(strategy, loss):
    from mlpckpt.core._losses import output_for

    net = mc.MLP([4, 6, 6, 6, 3], output=output_for(loss), seed=2)
    X, Y = make_data(net.sizes, 9, loss)
    ref_loss, ref = net.loss_and_grad(X, Y, loss, strategy=mc.StoreAll())
    got_loss, got = net.loss_and_grad(X, Y, loss, strategy=strategy)
    assert got_loss == ref_loss
    assert_bitwise_equal(ref.weights + ref.biases, got.weights + got.biases)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 5), min_size=2, max_size=6),
       poison=st.lists(st.tuples(st.booleans(), st.integers(0, 10**6)), min_size=1, max_size=4),
       dtype=st.sampled_from(["float64", "float32"]),
       activation=st.sampled_from(["tanh", "relu", "sigmoid", "softplus", "leaky_relu"]),
       strategy=st.sampled_from(STRATEGIES), batch=st.integers(1, 6), seed=st.integers(0, 99))
def test_nan_anywhere_is_named_first_weights_then_biases(sizes, poison, dtype, activation,
                                                         strategy, batch, seed):
    net = mc.MLP(sizes, activation=activation, dtype=dtype, seed=seed)
    n = net.n_layers
    hit = {"weights": set(), "biases": set()}
    for is_weight, pos in poison:
        which = "weights" if is_weight else "biases"
        k = pos % n
        block = getattr(net, which)[k]
        block.reshape(-1)[pos % block.size] = np.nan
        hit[which].add(k)
    name = (f"weights[{min(hit['weights'])}]" if hit["weights"] else f"biases[{min(hit['biases'])}]")
    X, Y = make_data(sizes, batch, "mse", seed=seed, dtype=dtype)
    with pytest.raises(ValueError, match=rf"^loss is nan: {re.escape(name)} holds NaN$"):
        net.loss_and_grad(X, Y, strategy=strategy)
    with pytest.raises(ValueError, match=rf"^logits hold NaN: {re.escape(name)} holds NaN$"):
        net.forward(X)
