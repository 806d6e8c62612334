"""The checkpoint engine: schedules, exactness, counting honesty and memory."""

import math
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from conftest import OUTPUT_FOR, make_data, net_spec
from mlpckpt import layers
from mlpckpt.bench import traced_peak
from mlpckpt.actions import BACKWARD, FORWARD, LOSS, count_forward_evals
from mlpckpt.plan import Call, compile_actions
from mlpckpt.strategies import griewank_t, revolve_actions, segment_bounds


def _c(n):
    return Call(sizes=(4,) * (n + 1), batch=1, dtype="float64", activations=("tanh",) * (n - 1))

KIB = 1024


# -- schedules as data -------------------------------------------------------


def test_actions_are_tuples_of_ints():
    for strategy in (mc.StoreAll(), mc.Sqrt(), mc.Segments(3), mc.Revolve(2)):
        for action in compile_actions(strategy, _c(17)):
            assert isinstance(action, tuple) and all(type(x) is int for x in action)


def test_segment_lengths_longer_last():
    assert segment_bounds(10, 3) == [0, 3, 6, 10]
    assert segment_bounds(11, 3) == [0, 3, 7, 11]
    for n in range(1, 60):
        for k in range(1, n + 1):
            b = segment_bounds(n, k)
            lengths = np.diff(b)
            assert b[-1] == n and set(lengths) <= {n // k, -(-n // k)}
            assert list(lengths) == sorted(lengths)


@pytest.mark.parametrize("n", list(range(1, 120)) + [1000, 1024])
def test_segments_forward_evals_closed_form(n):
    for k in sorted({min(k, n) for k in (1, 2, 3, 5, math.isqrt(n), n - 1, n)} - {0}):
        m = math.ceil(n / k)
        actions = mc.Segments(k).actions(_c(n))
        assert count_forward_evals(actions) == 2 * n - k - (m - 1)
    k = math.ceil(math.sqrt(n))
    assert count_forward_evals(mc.Sqrt().actions(_c(n))) == 2 * n - k - (math.ceil(n / k) - 1)


def test_segments_more_than_layers_is_plain_backprop():
    assert mc.Segments(50).actions(_c(7)) == mc.Segments(7).actions(_c(7))
    assert count_forward_evals(mc.Segments(50).actions(_c(7))) == 7


def test_griewank_examples_from_design():
    assert griewank_t(101, 10) == 225
    assert count_forward_evals(revolve_actions(100, 9)) == 225
    assert count_forward_evals(revolve_actions(1000, 9)) == 3640
    # the textbook taped Revolve spends n + t(n, slots + 1)
    assert 100 + griewank_t(100, 10) == 322


@lru_cache(maxsize=None)
def _G(length, s):
    if length == 1:
        return 0
    if s == 0:
        return length * (length - 1) // 2
    return min(j + _G(length - j, s - 1) + _G(j, s) for j in range(1, length))


@lru_cache(maxsize=None)
def _H(length, s):
    if length == 1:
        return 1
    if s == 0:
        return length * (length + 1) // 2
    return min(j + _H(length - j, s - 1) + _G(j, s) for j in range(1, length))


@pytest.mark.parametrize("s", range(0, 7))
def test_revolve_matches_the_recurrences(s):
    for n in range(1, 61):
        assert _H(n, s) == griewank_t(n + 1, s + 1)
        assert count_forward_evals(revolve_actions(n, s)) == _H(n, s)


@pytest.mark.parametrize("slots", [1, 2, 3, 5, 9, 25])
def test_revolve_forward_evals_every_n_up_to_2000(slots):
    for n in range(1, 2001):
        assert count_forward_evals(revolve_actions(n, slots)) <= griewank_t(n + 1, slots + 1)


@pytest.mark.parametrize("slots", [0, 1, 2, 3, 5, 9])
def test_revolve_max_stored_bound(slots):
    # memory.simulate checks the schedule is consistent (every needed a[k] held)
    for n in list(range(1, 150)) + [300, 511]:
        sched = mc.plan(net_spec([4] * (n + 1)), 2, mc.Revolve(slots))
        assert sched.max_stored <= slots + 3, (n, slots)
        assert sched.forward_evals == griewank_t(n + 1, slots + 1)


def test_revolve_edges():
    for n in (1, 2, 5, 40):
        assert count_forward_evals(revolve_actions(n, n - 1 if n > 1 else 0)) == n
        assert count_forward_evals(revolve_actions(n, n + 10)) == n
        assert count_forward_evals(revolve_actions(n, 0)) == n * (n + 1) // 2


def test_plan_at_ten_thousand_layers():
    spec = net_spec([64] * 10_001)
    sqrt = mc.plan(spec, 256, mc.Sqrt())
    assert sqrt.forward_evals == 2 * 10_000 - 100 - 99
    rev = mc.plan(spec, 256, mc.Revolve(8))
    assert rev.forward_evals == griewank_t(10_001, 9) and rev.max_stored <= 11
    assert len(rev.actions) < rev.forward_evals  # ranges, not one action per evaluation


# -- exactness ------------------------------------------------------------------

STRATEGIES = [mc.Sqrt(), mc.Segments(1), mc.Segments(2), mc.Segments(3), mc.Revolve(0), mc.Revolve(1), mc.Revolve(2), mc.Revolve(5)]


def _assert_bitwise_equal(net, X, Y, loss, strategy):
    ref_loss, ref = net.loss_and_grad(X, Y, loss)
    got_loss, got = net.loss_and_grad(X, Y, loss, strategy=strategy)
    assert got_loss == ref_loss
    for a, b in zip(ref.weights + ref.biases, got.weights + got.biases):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("depth", [1, 2, 3, 7, 100])
@pytest.mark.parametrize("loss", ["mse", "bce", "cross_entropy"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_strategy_bitwise_equal(depth, loss, dtype):
    rng = np.random.default_rng(depth)
    sizes = [int(x) for x in rng.integers(2, 9, size=depth + 1)]  # uneven widths
    acts = [["tanh", "sigmoid", "relu", "leaky_relu", "softplus", "identity"][i % 6] for i in range(depth - 1)]
    net = mc.MLP(sizes, activation=acts, output=OUTPUT_FOR[loss], dtype=dtype, seed=depth)
    X, Y = make_data(sizes, 5, loss, seed=depth, dtype=dtype)
    for strategy in STRATEGIES + [mc.Revolve(depth), mc.Segments(depth + 3)]:
        _assert_bitwise_equal(net, X, Y, loss, strategy)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    depth=st.integers(1, 40),
    width=st.lists(st.integers(1, 7), min_size=41, max_size=41),
    batch=st.integers(1, 6),
    activation=st.sampled_from(sorted(mc.activations.ACTIVATIONS)),
    loss=st.sampled_from(["mse", "bce", "cross_entropy"]),
    which=st.integers(0, 3),
    param=st.integers(0, 12),
)
def test_random_configurations_bitwise_equal(depth, width, batch, activation, loss, which, param):
    sizes = width[: depth + 1]
    strategy = [mc.Sqrt(), mc.Segments(param + 1), mc.Revolve(param), mc.StoreAll()][which]
    net = mc.MLP(sizes, activation=activation, output=OUTPUT_FOR[loss], seed=param)
    X, Y = make_data(sizes, batch, loss, seed=depth)
    _assert_bitwise_equal(net, X, Y, loss, strategy)


def test_ten_thousand_layers_run():
    net = mc.MLP([2] * 10_001, activation="tanh", init="orthogonal", seed=0)
    X, Y = make_data(net.sizes, 2, "mse")
    loss, grads = net.loss_and_grad(X, Y, "mse", strategy=mc.Sqrt())
    loss2, grads2 = net.loss_and_grad(X, Y, "mse", strategy=mc.Revolve(8))
    assert loss == loss2 and np.array_equal(grads.weights[0], grads2.weights[0])


@pytest.mark.parametrize("strategy", [mc.StoreAll(), mc.Sqrt(), mc.Segments(2), mc.Revolve(1)])
def test_fit_with_every_strategy_identical(strategy):
    sizes = [3, 6, 6, 6, 2]
    X, labels = make_data(sizes, 40, "cross_entropy")
    ref = mc.MLP(sizes, output="softmax", seed=0)
    ref.fit(X, labels, loss="cross_entropy", epochs=3, batch_size=16, optimizer="adam")
    net = mc.MLP(sizes, output="softmax", seed=0)
    net.fit(X, labels, loss="cross_entropy", epochs=3, batch_size=16, optimizer="adam", strategy=strategy)
    for a, b in zip(ref.weights, net.weights):
        assert np.array_equal(a, b)


# -- counting honesty -----------------------------------------------------------


@pytest.fixture
def count_forwards(monkeypatch):
    calls = []
    real = layers.layer_forward

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(layers, "layer_forward", counting)
    return calls


@pytest.mark.parametrize("n", [1, 2, 3, 10, 33, 100])
@pytest.mark.parametrize("strategy", [mc.StoreAll(), mc.Sqrt(), mc.Segments(4), mc.Revolve(0), mc.Revolve(2), mc.Revolve(9)])
def test_counted_forward_evals_equal_plan(n, strategy, count_forwards):
    net = mc.MLP([3] * (n + 1), seed=0)
    X, Y = make_data(net.sizes, 2, "mse")
    predicted = mc.plan(net, 2, strategy).forward_evals
    count_forwards.clear()
    net.loss_and_grad(X, Y, "mse", strategy=strategy)
    assert len(count_forwards) == predicted


# -- memory: plan against tracemalloc --------------------------------------------


def measured_peak(net, X, Y, loss, strategy, out):
    grads = net.zeros_like_grads() if out else None
    net.loss_and_grad(X, Y, loss, strategy=strategy, out=grads)  # schedule cached
    return traced_peak(lambda: net.loss_and_grad(X, Y, loss, strategy=strategy, out=grads))


MEMORY_CASES = [
    # sizes, batch, loss, activation, output
    ([64] * 65, 256, "mse", "tanh", "identity"),
    ([32] + [48] * 30 + [10], 128, "cross_entropy", "relu", "softmax"),
    ([10, 50, 20, 40, 7], 300, "cross_entropy", "leaky_relu", "softmax"),
    ([16] * 120, 64, "bce", "sigmoid", "sigmoid"),
    ([8] * 200, 16, "mse", "softplus", "softmax"),
    ([3, 5, 4, 2], 6, "mse", "tanh", "sigmoid"),
]


@pytest.mark.parametrize("case", range(len(MEMORY_CASES)))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_plan_predicts_tracemalloc_peak(case, dtype):
    sizes, batch, loss, activation, output = MEMORY_CASES[case]
    net = mc.MLP(sizes, activation=activation, output=output, dtype=dtype, seed=0)
    X, Y = make_data(sizes, batch, loss, dtype=dtype)
    n = len(sizes) - 1
    for strategy in [mc.StoreAll(), mc.Sqrt(), mc.Segments(3), mc.Revolve(0 if n < 70 else 4), mc.Revolve(3)]:
        for out in (False, True):
            measured = measured_peak(net, X, Y, loss, strategy, out)
            predicted = mc.plan(net, batch, strategy, loss, out=out).peak_bytes
            assert measured <= predicted <= 1.05 * measured + 64 * KIB, (strategy, out, measured, predicted)


def test_plan_onehot_targets():
    sizes = [20, 30, 30, 10]
    net = mc.MLP(sizes, output="softmax", seed=0)
    X, labels = make_data(sizes, 200, "cross_entropy")
    onehot = np.ascontiguousarray(np.eye(10)[:, labels])  # plan assumes C order
    for targets, Y in (("labels", labels), ("onehot", onehot)):
        measured = measured_peak(net, X, Y, "cross_entropy", mc.Sqrt(), False)
        predicted = mc.plan(net, 200, mc.Sqrt(), "cross_entropy", targets=targets).peak_bytes
        assert measured <= predicted <= 1.05 * measured + 64 * KIB


@pytest.mark.slow
def test_memory_grows_as_promised():
    """Width 64, batch 256, gradients preallocated: Sqrt ~ sqrt(n), StoreAll ~ n,
    Revolve flat (measured with tracemalloc)."""
    depths = [64, 128, 256, 512, 1024]
    peaks = {"sqrt": [], "storeall": [], "revolve": []}
    for n in depths:
        net = mc.MLP([64] * (n + 1), seed=0, init="normal")
        X, Y = make_data(net.sizes, 256, "mse")
        for name, strategy in (("sqrt", mc.Sqrt()), ("revolve", mc.Revolve(8))):
            peaks[name].append(measured_peak(net, X, Y, "mse", strategy, True))
        if n <= 512:
            peaks["storeall"].append(measured_peak(net, X, Y, "mse", mc.StoreAll(), True))
    slope = lambda ys, xs: np.polyfit(np.log(xs), np.log(ys), 1)[0]  # noqa: E731
    assert slope(peaks["sqrt"], depths) <= 0.55
    assert peaks["sqrt"][-1] <= 8.31 * 2**20
    assert 0.95 <= slope(peaks["storeall"], depths[:4]) <= 1.05
    assert abs(slope(peaks["revolve"], depths)) <= 0.05  # flat: 16x the depth, < 15% more bytes


# -- command line -----------------------------------------------------------------


def test_cli_plan(capsys):
    from mlpckpt.cli import main

    assert main(["plan", "--width", "64", "--depth", "1000", "--batch", "256", "--strategy", "revolve:8"]) == 0
    text = capsys.readouterr().out
    assert f"forward evals     {griewank_t(1001, 9)}" in text and "MiB" in text
    assert main(["plan", "--sizes", "8,16,16,3", "--strategy", "sqrt", "--actions"]) == 0
    text = capsys.readouterr().out
    assert "forward layers" in text and "backward layers" in text
    assert main(["plan", "--sizes", "8,16", "--strategy", "revolve:x"]) == 2
    assert "--strategy" in capsys.readouterr().err


def test_bad_schedules_are_refused_before_running():
    from mlpckpt.actions import check_actions

    with pytest.raises(ValueError, match=r"actions\[2\]"):
        check_actions(((FORWARD, 0, 1, 1), (LOSS,), (9, 0)), 1)
    with pytest.raises(ValueError, match="left over"):
        check_actions(((FORWARD, 0, 2, 1), (LOSS,), (BACKWARD, 0, 2), (FORWARD, 0, 1, 1)), 2)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 80), min_size=2, max_size=30),
    batch=st.integers(1, 300),
    activation=st.sampled_from(sorted(mc.activations.ACTIVATIONS)),
    loss=st.sampled_from(["mse", "bce", "cross_entropy"]),
    which=st.integers(0, 4),
    param=st.integers(0, 6),
    out=st.booleans(),
    dtype=st.sampled_from(["float64", "float32"]),
)
def test_random_configurations_plan_bounds_tracemalloc(widths, batch, activation, loss, which, param, out, dtype):
    n = len(widths) - 1
    strategy = [mc.StoreAll(), mc.Sqrt(), mc.Segments(param + 1), mc.Revolve(param), None][which]
    net = mc.MLP(widths, activation=activation, output=OUTPUT_FOR[loss], dtype=dtype, seed=param)
    X, Y = make_data(widths, batch, loss, seed=n, dtype=dtype)
    measured = measured_peak(net, X, Y, loss, strategy, out)
    predicted = mc.plan(net, batch, strategy, loss, out=out).peak_bytes
    assert measured <= predicted <= 1.05 * measured + 64 * KIB
