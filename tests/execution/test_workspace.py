"""Workspaces: the same bits, buffers reused, and memory as plan predicts
(the call that fills one, the bytes it holds, and later calls)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mlpckpt as mc
from mlpckpt.bench import traced_peak
from mlpckpt.testing import assert_bitwise_equal, make_data

KIB = 1024
STRATEGIES = [mc.StoreAll(), mc.Sqrt(), mc.Segments(3), mc.Revolve(0), mc.Revolve(2)]
ACTS = ["identity", "tanh", "sigmoid", "softplus", "relu", "leaky_relu"]
HEADS = [("mse", "identity"), ("bce", "sigmoid"), ("cross_entropy", "softmax")]


def within(measured, predicted):
    return measured <= predicted <= 1.05 * measured + 64 * KIB


@pytest.mark.parametrize("sizes", [[16] * 30, [12, 8, 16, 8, 8, 30, 8, 8, 16, 3], [5, 40, 3, 40, 2]],
                         ids=["uniform", "uneven", "bottleneck"])
@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
@pytest.mark.parametrize("out", [False, True])
def test_bitwise_and_memory_predicted(sizes, strategy, out, assert_same_result):
    net = mc.MLP(sizes, activation="tanh", output="softmax", seed=2)
    X, Y = make_data(sizes, 24, "cross_entropy")
    ref = net.loss_and_grad(X, Y, "cross_entropy", strategy=strategy)
    g = net.zeros_like_grads() if out else None
    net.loss_and_grad(X, Y, "cross_entropy", strategy=strategy, out=g, workspace=mc.Workspace())  # compiled
    sched = mc.plan(net, 24, strategy, "cross_entropy", out=out, workspace=True)
    ws = mc.Workspace()
    results = []
    cold = traced_peak(lambda: results.append(net.loss_and_grad(X, Y, "cross_entropy", strategy=strategy, out=g,
                                                              workspace=ws)))
    assert_same_result(ref, results[-1])
    assert within(cold, sched.peak_bytes), (cold, sched.peak_bytes)
    assert ws.nbytes <= sched.details["workspace_bytes"] <= 1.05 * ws.nbytes + 64 * KIB
    held = ws.nbytes
    warm = traced_peak(lambda: results.append(net.loss_and_grad(X, Y, "cross_entropy", strategy=strategy, out=g,
                                                              workspace=ws)))
    assert_same_result(ref, results[-1])
    assert ws.nbytes == held  # nothing new
    assert within(warm, sched.details["warm_peak_bytes"]), (warm, sched.details["warm_peak_bytes"])


def test_buffers_are_reused_and_a_smaller_batch_served_from_them(assert_same_result):
    net = mc.MLP([8] * 21, seed=0)
    ws = mc.Workspace()
    X, Y = make_data(net.sizes, 32, "mse")
    net.loss_and_grad(X, Y, strategy=mc.Sqrt(), workspace=ws)
    held = ws.nbytes
    small = (X[:, :5].copy(), Y[:, :5].copy())
    ref = net.loss_and_grad(*small, strategy=mc.Sqrt())
    assert_same_result(ref, net.loss_and_grad(*small, strategy=mc.Sqrt(), workspace=ws))
    assert ws.nbytes == held  # served from the full batch's buffers
    big = make_data(net.sizes, 64, "mse", seed=1)
    assert_same_result(net.loss_and_grad(*big), net.loss_and_grad(*big, workspace=ws))
    assert ws.nbytes > held  # grew for the larger batch
    assert "Workspace(nbytes=" in repr(ws)


def test_bad_workspace_is_a_value_error():
    net = mc.MLP([4, 4, 2], seed=0)
    X, Y = make_data(net.sizes, 3, "mse")
    with pytest.raises(ValueError, match=r"^workspace: expected a mlpckpt.Workspace or None, got dict"):
        net.loss_and_grad(X, Y, workspace={})
    with pytest.raises(ValueError, match=r"^workspace: expected True or False"):
        mc.plan(net, 3, workspace="yes")


@pytest.mark.slow
def test_budget_counts_the_workspace(assert_same_result):
    rng = np.random.default_rng(7)
    sizes = [int(x) for x in rng.integers(8, 48, size=41)]
    net = mc.MLP(sizes, seed=0)
    X, Y = make_data(sizes, 16, "mse")
    g = net.zeros_like_grads()
    low = mc.plan(net, 16, mc.Revolve(0), out=True, workspace=True).peak_bytes
    top = mc.plan(net, 16, mc.StoreAll(), out=True, workspace=True).peak_bytes
    ref = net.loss_and_grad(X, Y)
    for frac in (0.1, 0.4, 0.8):
        budget = mc.Budget(int(low + frac * (top - low)))
        sched = mc.plan(net, 16, budget, out=True, workspace=True)
        assert sched.peak_bytes <= budget.max_bytes
        ws = mc.Workspace()
        net.loss_and_grad(X, Y, strategy=budget, out=g, workspace=mc.Workspace())  # compiled
        cold = traced_peak(lambda: net.loss_and_grad(X, Y, strategy=budget, out=g, workspace=ws))
        assert cold <= budget.max_bytes
        assert_same_result(ref, net.loss_and_grad(X, Y, strategy=budget, out=g, workspace=ws))


def test_fit_keeps_one_workspace_and_matches_plan():
    X, Y = make_data([6] + [10] * 12 + [2], 50, "mse")

    def run(**kw):
        net = mc.MLP([6] + [10] * 12 + [2], seed=1)
        net.fit(X, Y, epochs=2, batch_size=16, **kw)  # 16, 16, 16 and 2
        return net

    a = run(strategy=mc.StoreAll())
    for kw in ({"strategy": mc.Sqrt()}, {"strategy": mc.Revolve(1), "fuse_update": True}):
        b = run(**kw)
        assert_bitwise_equal(a.weights + a.biases, b.weights + b.biases)


@settings(max_examples=25, deadline=None)
@given(widths=st.lists(st.integers(1, 12), min_size=2, max_size=9), batch=st.integers(1, 9),
       slots=st.integers(0, 4), seed=st.integers(0, 2**16))
def test_any_net_same_bits_with_and_without(widths, batch, slots, seed, assert_same_result):
    net = mc.MLP(widths, activation="sigmoid", seed=seed)
    X, Y = make_data(widths, batch, "mse", seed=seed)
    ws = mc.Workspace()
    ref = net.loss_and_grad(X, Y)
    for strategy in (mc.Revolve(slots), mc.Sqrt(), mc.StoreAll()):
        assert_same_result(ref, net.loss_and_grad(X, Y, strategy=strategy, workspace=ws))


# -- from the review of issue 13: one workspace shared across nets, batches, dtypes; uneven widths
@settings(max_examples=40, deadline=None)
@given(widths=st.lists(st.integers(1, 20), min_size=2, max_size=7), batch=st.sampled_from([1, 2, 7, 33]),
       act=st.sampled_from(ACTS), head=st.sampled_from(HEADS), dtype=st.sampled_from(["float64", "float32"]),
       out=st.booleans(), fortran=st.booleans(), seed=st.integers(0, 2**16))
def test_same_bits_any_net_one_shared_workspace(widths, batch, act, head, dtype, out, fortran, seed,
                                                assert_same_result):
    loss, output = head
    if loss == "cross_entropy" and widths[-1] < 2:
        widths = widths[:-1] + [2]
    net = mc.MLP(widths, activation=act, output=output, dtype=dtype, seed=seed)
    X, Y = make_data(widths, batch, loss, seed=seed, dtype=dtype)
    if fortran:
        X = np.asfortranarray(X)
    ws = SHARED  # one workspace across every example: nets, batches and dtypes change
    ref = net.loss_and_grad(X, Y, loss)
    for strategy in (mc.StoreAll(), mc.Sqrt(), mc.Revolve(0), mc.Segments(2), mc.Budget("64MiB")):
        g = net.zeros_like_grads() if out else None
        got = net.loss_and_grad(X, Y, loss, strategy=strategy, out=g, workspace=ws)
        assert_same_result(ref, got)
        held = [b for d in ws._free.values() for bs in d.values() for b in bs]
        assert not any(np.shares_memory(a, b) for a in got[1].weights + got[1].biases for b in held)


SHARED = mc.Workspace()


def test_alternating_nets_and_batches_on_one_workspace(assert_same_result):
    rng = np.random.default_rng(0)
    nets = [mc.MLP([5, 9, 9, 3], activation="softplus", seed=1), mc.MLP([5, 30, 2, 3], activation="relu", seed=2)]
    ws = mc.Workspace()
    results = []
    for batch in (4, 40, 4, 1, 40):
        for net in nets:
            X, Y = make_data(net.sizes, batch, "mse", seed=rng)
            got = net.loss_and_grad(X, Y, strategy=mc.Revolve(1), workspace=ws)
            results.append(got)
            assert_same_result(net.loss_and_grad(X, Y), got)
    # earlier results are not overwritten by later calls (no aliasing)
    firsts = [r[1].weights[0].copy() for r in results]
    net = nets[0]
    X, Y = make_data(net.sizes, 40, "mse", seed=rng)
    net.loss_and_grad(X, Y, workspace=ws)
    assert_bitwise_equal(firsts, [r[1].weights[0] for r in results])


@pytest.mark.parametrize("bad", [{}, [], object(), True, "ws", mc.Workspace])
def test_non_workspace_is_a_value_error(bad):
    net = mc.MLP([3, 4, 2], seed=0)
    X, Y = make_data(net.sizes, 3, "mse", seed=0)
    with pytest.raises(ValueError, match=r"^workspace: "):
        net.loss_and_grad(X, Y, workspace=bad)


UNEVEN = [3, 200, 7, 150, 150, 2]


@pytest.mark.parametrize("loss,output", [("cross_entropy", "softmax"), ("mse", "identity")])
@pytest.mark.parametrize("strategy", [mc.StoreAll(), mc.Sqrt()], ids=repr)
def test_cold_call_and_workspace_bytes_uneven(loss, output, strategy):
    net = mc.MLP(UNEVEN, activation="leaky_relu", output=output, seed=1)
    X, Y = make_data(UNEVEN, 64, loss, seed=1)
    net.loss_and_grad(X, Y, loss, strategy=strategy, workspace=mc.Workspace())  # compiled
    sched = mc.plan(net, 64, strategy, loss, workspace=True)
    ws = mc.Workspace()
    cold = traced_peak(lambda: net.loss_and_grad(X, Y, loss, strategy=strategy, workspace=ws))
    assert cold <= sched.peak_bytes <= 1.05 * cold + 64 * KIB
    assert ws.nbytes <= sched.details["workspace_bytes"] <= 1.05 * ws.nbytes + 64 * KIB


def test_workspace_stops_growing_as_predicted():
    # best fit may add a buffer on the second call (issue 13 review, D1); from
    # the third on nothing, and plan's figures bound every call
    net = mc.MLP(UNEVEN, activation="tanh", seed=1)
    X, Y = make_data(UNEVEN, 64, "mse", seed=0)
    net.loss_and_grad(X, Y, strategy=mc.Segments(2), workspace=mc.Workspace())  # compiled
    sched = mc.plan(net, 64, mc.Segments(2), workspace=True)
    ws = mc.Workspace()
    for _ in range(2):
        before = ws.nbytes
        peak = traced_peak(lambda: net.loss_and_grad(X, Y, strategy=mc.Segments(2), workspace=ws))
        assert before + peak <= sched.peak_bytes
    held = ws.nbytes
    for _ in range(2):
        warm = traced_peak(lambda: net.loss_and_grad(X, Y, strategy=mc.Segments(2), workspace=ws))
        assert ws.nbytes == held and warm <= sched.details["warm_peak_bytes"]
    assert held <= sched.details["workspace_bytes"] <= 1.05 * held + 64 * KIB


def test_budget_bounds_every_call_on_a_workspace():
    net = mc.MLP(UNEVEN, activation="tanh", seed=1)
    X, Y = make_data(UNEVEN, 64, "mse", seed=0)
    g = net.zeros_like_grads()
    budget = mc.Budget(mc.plan(net, 64, mc.Revolve(0), out=True, workspace=True).peak_bytes)
    net.loss_and_grad(X, Y, strategy=budget, out=g, workspace=mc.Workspace())  # compiled
    ws = mc.Workspace()
    assert traced_peak(lambda: net.loss_and_grad(X, Y, strategy=budget, out=g, workspace=ws)) <= budget.max_bytes
    before = ws.nbytes
    warm = traced_peak(lambda: net.loss_and_grad(X, Y, strategy=budget, out=g, workspace=ws))
    assert before + warm <= budget.max_bytes


def test_budget_with_workspace_monotone():
    # a budget that works with a workspace keeps working when it grows (D3)
    net = mc.MLP(UNEVEN, activation="tanh", seed=1)
    floor = mc.plan(net, 64, mc.Revolve(0), out=True, workspace=True).peak_bytes
    for budget in (floor, int(floor * 1.02), 447821, 452570, int(floor * 1.3), int(floor * 2)):
        sched = mc.plan(net, 64, mc.Budget(budget), out=True, workspace=True)
        assert sched.peak_bytes <= budget


def test_failing_call_does_not_grow_workspace():
    net = mc.MLP([3, 50, 50, 2], seed=1)
    X, Y = make_data(net.sizes, 64, "mse", seed=0)
    ws = mc.Workspace()
    net.loss_and_grad(X, Y, workspace=ws)
    held = ws.nbytes
    net.biases[0][0, 0] = np.nan
    for _ in range(3):
        with pytest.raises(ValueError, match=r"biases\[0\] holds NaN"):
            net.loss_and_grad(X, Y, workspace=ws)
    assert ws.nbytes == held
