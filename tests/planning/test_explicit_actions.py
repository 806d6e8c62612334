"""mc.Actions: an explicit schedule as a strategy. Refused before any work
when it is wrong (naming the first bad action), and when it is right,
exactly the schedule it says: same plan figures as the strategy it came
from, bitwise the same results as StoreAll."""

import numpy as np
import pytest

import mlpckpt as mc
import mlpckpt.execution._layers
from mlpckpt.testing import assert_bitwise_equal, make_data


F, L, B = 0, 1, 2

# (schedule, message): built on mc.Actions, each names what is wrong first
BAD = [
    # used before computed
    ([(F, 1, 2, 1), (L,), (B, 0, 2)], r"actions\[0\]: .*starts from a\[1\], which is not held"),
    ([(F, 0, 1, 1), (F, 2, 3, 1), (L,), (B, 0, 3)], r"actions\[1\]: .*starts from a\[2\]"),
    # used after it was consumed by a backward step
    ([(F, 0, 4, 1), (L,), (B, 2, 4), (F, 3, 4, 0), (B, 0, 2)],
     r"actions\[3\]: .*starts from a\[3\], which is not held"),
    # freed as an intermediate of a keep-0 range, then used
    ([(F, 0, 3, 0), (F, 1, 2, 1), (L,), (B, 0, 3)], r"actions\[1\]: .*starts from a\[1\]"),
    # computed while held
    ([(F, 0, 2, 1), (F, 0, 1, 0), (L,), (B, 0, 2)], r"actions\[1\]: .*recomputes the held a\[1\]"),
    ([(F, 0, 3, 0), (F, 0, 3, 0), (L,), (B, 0, 3)], r"actions\[1\]: .*recomputes the held a\[3\]"),
    # backward out of order
    ([(F, 0, 3, 1), (L,), (B, 0, 2), (B, 2, 3)], r"actions\[2\]: .*out of order: the next backward step is layer 2"),
    ([(F, 0, 3, 1), (L,), (B, 2, 3), (B, 2, 3), (B, 0, 2)], r"actions\[3\]: .*out of order"),
    # backward without its input
    ([(F, 0, 3, 0), (L,), (B, 2, 3), (B, 0, 2)], r"actions\[2\]: .*layer 2 needs a\[2\], which is not held"),
    ([(F, 0, 1, 1), (F, 1, 3, 0), (L,), (B, 2, 3), (B, 0, 2)], r"actions\[3\]: .*needs a\[2\]"),
    # backward before the loss
    ([(F, 0, 2, 1), (B, 1, 2), (L,), (B, 0, 1)], r"actions\[1\]: .*comes before the loss"),
    # no loss
    ([(F, 0, 2, 1)], r"^actions: the schedule has no loss"),
    # loss twice
    ([(F, 0, 2, 1), (L,), (L,), (B, 0, 2)], r"actions\[2\]: a second loss"),
    # loss without a[n]
    ([(F, 0, 1, 1), (L,), (F, 1, 2, 1), (B, 0, 2)], r"actions\[1\]: the loss needs a\[2\]"),
    ([(L,), (F, 0, 1, 1), (B, 0, 1)], r"actions\[0\]: the loss needs a\[1\]"),
    # left over
    ([(F, 0, 2, 1), (L,), (B, 0, 2), (F, 0, 1, 1)], r"^actions: activations \[1\] are left over"),
    ([(F, 0, 3, 1), (L,), (B, 1, 3)], r"^actions: the backward pass stops at layer 1, not 0"),
    # recompute a[n] after the loss
    ([(F, 0, 2, 1), (L,), (F, 1, 2, 0), (B, 0, 2)], r"actions\[2\]: .*recomputes a\[2\] after the loss"),
    # malformed
    ([(F, 0, 1, 1), (L,), (B, 0)], r"actions\[2\]: \(2, 0\) is not \(0, start, stop, keep\)"),
    ([(F, 0, 1, 1), (), (B, 0, 1)], r"actions\[1\]: expected a tuple of ints"),
    ([(F, 0, 1, 1), (L, 0), (B, 0, 1)], r"actions\[1\]: \(1, 0\) is not"),
    ([(7, 0, 1, 1), (L,), (B, 0, 1)], r"actions\[0\]: \(7, 0, 1, 1\) is not"),
    ([(F, 0, 1, 1), (L,), (B, 0, 1), 5], r"actions\[3\]: expected a tuple of ints"),
    ([(F, 0, 1.0, 1), (L,), (B, 0, 1)], r"actions\[0\]: expected a tuple of ints"),
    # bools
    ([(F, 0, 1, True), (L,), (B, 0, 1)], r"actions\[0\]: expected a tuple of ints"),
    ([(F, False, 1, 1), (L,), (B, 0, 1)], r"actions\[0\]: expected a tuple of ints"),
    # negative indices
    ([(F, -1, 1, 1), (L,), (B, 0, 1)], r"actions\[0\]: .*needs 0 <= start < stop"),
    ([(F, 0, 1, 1), (L,), (B, -1, 1)], r"actions\[2\]: .*needs 0 <= start < stop"),
    # empty ranges
    ([(F, 0, 1, 1), (F, 1, 1, 0), (L,), (B, 0, 1)], r"actions\[1\]: .*needs 0 <= start < stop"),
    # keep=2
    ([(F, 0, 1, 2), (L,), (B, 0, 1)], r"actions\[0\]: .*keep 0 or 1"),
    # strings
    ([(F, 0, 1, 1), "(1,)", (B, 0, 1)], r"actions\[1\]: expected a tuple of ints"),
    ([(F, 0, "1", 1), (L,), (B, 0, 1)], r"actions\[0\]: expected a tuple of ints"),
    ("((0, 0, 1, 1), (1,), (2, 0, 1))", r"^actions: expected a sequence of action tuples"),
    (None, r"^actions: expected a sequence of action tuples"),
]


@pytest.mark.parametrize("steps,message", BAD)
def test_actions_refuses_a_bad_schedule_naming_the_first_bad_action(steps, message):
    with pytest.raises(ValueError, match=message):
        mc.Actions(steps)


def test_the_bad_list_is_long_and_each_entry_is_bad_only_where_it_says():
    assert len(BAD) >= 15
    # the good schedules these were made from are accepted
    for good in ([(F, 0, 3, 1), (L,), (B, 0, 3)], [(F, 0, 2, 1), (L,), (B, 0, 2)],
                 [(F, 0, 3, 0), (L,), (F, 0, 2, 1), (B, 0, 3)], [(F, 0, 1, 1), (L,), (B, 0, 1)]):
        assert mc.Actions(good).steps == tuple(good)


SCHEDULE3 = [(F, 0, 3, 0), (L,), (F, 0, 1, 1), (F, 1, 2, 0), (B, 1, 3), (B, 0, 1)]


def test_wrong_depth_is_refused_at_plan_time():
    net = mc.MLP([4, 5, 3], seed=0)  # 2 layers, the schedule is for 3
    with pytest.raises(ValueError, match=r"^strategy: Actions is a schedule for 3 layers, the net has 2"):
        mc.plan(net, 8, mc.Actions(SCHEDULE3))


@pytest.mark.parametrize("where", ["loss_and_grad", "fit"])
@pytest.mark.parametrize("sizes", [[4, 5, 3], [4, 5, 5, 6, 3]])  # shallower and deeper
def test_wrong_depth_fails_before_any_layer_and_leaves_the_weights(monkeypatch, where, sizes):
    net = mc.MLP(sizes, seed=1)
    X, Y = make_data(sizes, 8, "mse", seed=2)
    before = [w.copy() for w in net.weights] + [b.copy() for b in net.biases]
    calls = []
    real = mlpckpt.execution._layers.layer_forward
    monkeypatch.setattr(mlpckpt.execution._layers, "layer_forward", lambda *a: calls.append(1) or real(*a))
    strat = mc.Actions(SCHEDULE3)
    with pytest.raises(ValueError, match=r"Actions is a schedule for 3 layers, the net has"):
        if where == "fit":
            net.fit(X, Y, loss="mse", epochs=1, batch_size=4, strategy=strat)
        else:
            net.loss_and_grad(X, Y, loss="mse", strategy=strat)
    assert calls == []
    after = list(net.weights) + list(net.biases)
    assert_bitwise_equal(before, after)
    # the counter counts: the right depth evaluates layers through it
    net.loss_and_grad(X, Y, loss="mse", strategy=mc.StoreAll())
    assert len(calls) == len(sizes) - 1


def fixed(n):
    return [mc.StoreAll(), mc.Sqrt()] + [mc.Segments(k) for k in range(1, n + 1)] + [
        mc.Revolve(s) for s in range(n)]


CASES = [
    ([6, 9, 4, 7, 7, 3], "tanh", "identity", "mse", "float64"),
    ([5, 8, 8, 8, 8, 8, 4], "leaky_relu", "softmax", "cross_entropy", "float32"),
    ([3, 2, 11, 2, 1], "relu", "sigmoid", "bce", "float64"),
]


@pytest.mark.parametrize("sizes,act,output,loss,dtype", CASES)
def test_actions_of_a_plan_plans_and_runs_like_the_strategy(sizes, act, output, loss, dtype):
    net = mc.MLP(sizes, activation=act, output=output, dtype=dtype, seed=3)
    X, Y = make_data(sizes, 6, loss, seed=4, dtype=dtype)
    ref_loss, ref = net.loss_and_grad(X, Y, loss=loss, strategy=mc.StoreAll())
    n = len(sizes) - 1
    for strat in fixed(n):
        for kw in (dict(), dict(out=True), dict(fuse_update=True)):
            s = mc.plan(net, 6, strat, loss, **kw)
            a = mc.plan(net, 6, mc.Actions(s.actions), loss, **kw)
            assert a.actions == s.actions
            assert (a.forward_evals, a.peak_bytes, a.max_stored, a.activation_bytes) == (
                s.forward_evals, s.peak_bytes, s.max_stored, s.activation_bytes), strat
        got_loss, got = net.loss_and_grad(X, Y, loss=loss, strategy=mc.Actions(s.actions))
        assert np.array_equal(got_loss, ref_loss), strat
        assert_bitwise_equal(got.weights + got.biases, ref.weights + ref.biases, err_msg=repr(strat))


def test_fit_with_actions_is_bitwise_fit_with_store_all():
    sizes = [5, 7, 3, 7, 4]
    X, Y = make_data(sizes, 12, "mse", seed=5)
    for fuse in (False, True):
        base = mc.MLP(sizes, seed=6)
        base.fit(X, Y, loss="mse", epochs=2, batch_size=4, seed=0, strategy=mc.StoreAll(),
                 fuse_update=fuse)
        for strat in fixed(4):
            net = mc.MLP(sizes, seed=6)
            acts = mc.plan(net, 4, strat, "mse", fuse_update=fuse).actions
            hist = net.fit(X, Y, loss="mse", epochs=2, batch_size=4, seed=0,
                           strategy=mc.Actions(acts), fuse_update=fuse)
            assert len(hist) == 2
            assert_bitwise_equal(net.weights + net.biases, base.weights + base.biases, err_msg=repr((strat, fuse)))


def test_numpy_ints_and_lists_are_accepted():
    steps = [[np.int64(0), np.int32(0), np.int16(3), np.uint8(0)], [np.int64(1)],
             (np.intp(0), 0, 2, 1), [2, 0, np.int64(3)]]
    a = mc.Actions(steps)
    assert a.steps == ((0, 0, 3, 0), (1,), (0, 0, 2, 1), (2, 0, 3))
    assert all(type(x) is int for step in a.steps for x in step)
    assert a == mc.Actions(tuple(tuple(int(x) for x in s) for s in steps))
    assert hash(a) == hash(mc.Actions(a.steps))
    net = mc.MLP([2, 3, 3, 2], seed=0)
    assert mc.plan(net, 4, a).forward_evals == 5
    # a generator of tuples is a sequence too
    assert mc.Actions(iter([(0, 0, 1, 1), (1,), (2, 0, 1)])).n_layers == 1


def test_repr_is_short_for_long_schedules():
    net = mc.MLP([3] * 401, seed=0)
    acts = mc.plan(net, 2, mc.Revolve(0)).actions
    a = mc.Actions(acts)
    assert len(acts) > 700
    assert len(repr(a)) < 80 and "400 layers" in repr(a) and str(len(acts)) in repr(a)
