"""Adversarial review of issue 13 (compiled kernels, workspaces).

What held is tested plainly; each defect found is a strict xfail with the
smallest reproduction found."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mlpckpt as mc
from mlpckpt.execution import _kernels as kernels
from mlpckpt.bench import traced_peak

KIB = 1024
ACTS = ["identity", "tanh", "sigmoid", "softplus", "relu", "leaky_relu"]
HEADS = [("mse", "identity"), ("bce", "sigmoid"), ("cross_entropy", "softmax")]


traced = traced_peak  # peak above what was allocated before fn


def data(rng, sizes, batch, loss, dtype):
    X = rng.standard_normal((sizes[0], batch)).astype(dtype)
    if loss == "cross_entropy":
        return X, rng.integers(0, sizes[-1], size=batch)
    if loss == "bce":
        return X, rng.random((sizes[-1], batch)).astype(dtype)
    return X, rng.standard_normal((sizes[-1], batch)).astype(dtype)


def same(ref, got):
    return ref[0] == got[0] and all(np.array_equal(a, b) for a, b in zip(
        ref[1].weights + ref[1].biases, got[1].weights + got[1].biases))


@pytest.fixture
def kernel_setting():
    previous = mc.set_kernels("auto")
    yield
    mc.set_kernels(previous)


# -- promise 1: the same bits with and without a workspace -------------------
@settings(max_examples=40, deadline=None)
@given(widths=st.lists(st.integers(1, 20), min_size=2, max_size=7), batch=st.sampled_from([1, 2, 7, 33]),
       act=st.sampled_from(ACTS), head=st.sampled_from(HEADS), dtype=st.sampled_from(["float64", "float32"]),
       out=st.booleans(), fortran=st.booleans(), seed=st.integers(0, 2**16))
def test_same_bits_any_net_one_shared_workspace(widths, batch, act, head, dtype, out, fortran, seed):
    loss, output = head
    if loss == "cross_entropy" and widths[-1] < 2:
        widths = widths[:-1] + [2]
    rng = np.random.default_rng(seed)
    net = mc.MLP(widths, activation=act, output=output, dtype=dtype, seed=seed)
    X, Y = data(rng, widths, batch, loss, dtype)
    if fortran:
        X = np.asfortranarray(X)
    ws = SHARED  # one workspace across every example: nets, batches and dtypes change
    ref = net.loss_and_grad(X, Y, loss)
    for strategy in (mc.StoreAll(), mc.Sqrt(), mc.Revolve(0), mc.Segments(2), mc.Budget("64MiB")):
        g = net.zeros_like_grads() if out else None
        got = net.loss_and_grad(X, Y, loss, strategy=strategy, out=g, workspace=ws)
        assert same(ref, got)
        held = [b for d in ws._free.values() for bs in d.values() for b in bs]
        assert not any(np.shares_memory(a, b) for a in got[1].weights + got[1].biases for b in held)


SHARED = mc.Workspace()


def test_alternating_nets_and_batches_on_one_workspace():
    rng = np.random.default_rng(0)
    nets = [mc.MLP([5, 9, 9, 3], activation="softplus", seed=1), mc.MLP([5, 30, 2, 3], activation="relu", seed=2)]
    ws = mc.Workspace()
    results = []
    for batch in (4, 40, 4, 1, 40):
        for net in nets:
            X, Y = data(rng, net.sizes, batch, "mse", "float64")
            got = net.loss_and_grad(X, Y, strategy=mc.Revolve(1), workspace=ws)
            results.append(got)
            assert same(net.loss_and_grad(X, Y), got)
    # earlier results are not overwritten by later calls (no aliasing)
    firsts = [r[1].weights[0].copy() for r in results]
    net = nets[0]
    X, Y = data(rng, net.sizes, 40, "mse", "float64")
    net.loss_and_grad(X, Y, workspace=ws)
    assert all(np.array_equal(a, r[1].weights[0]) for a, r in zip(firsts, results))


@pytest.mark.parametrize("bad", [{}, [], object(), True, "ws", mc.Workspace])
def test_non_workspace_is_a_value_error(bad):
    net = mc.MLP([3, 4, 2], seed=0)
    X, Y = data(np.random.default_rng(0), net.sizes, 3, "mse", "float64")
    with pytest.raises(ValueError, match=r"^workspace: "):
        net.loss_and_grad(X, Y, workspace=bad)


# -- promise 2: memory as plan predicts --------------------------------------
UNEVEN = [3, 200, 7, 150, 150, 2]


@pytest.mark.parametrize("loss,output", [("cross_entropy", "softmax"), ("mse", "identity")])
@pytest.mark.parametrize("strategy", [mc.StoreAll(), mc.Sqrt()], ids=repr)
def test_cold_call_and_workspace_bytes_uneven(loss, output, strategy):
    net = mc.MLP(UNEVEN, activation="leaky_relu", output=output, seed=1)
    X, Y = data(np.random.default_rng(1), UNEVEN, 64, loss, "float64")
    net.loss_and_grad(X, Y, loss, strategy=strategy, workspace=mc.Workspace())  # compiled
    sched = mc.plan(net, 64, strategy, loss, workspace=True)
    ws = mc.Workspace()
    cold = traced(lambda: net.loss_and_grad(X, Y, loss, strategy=strategy, workspace=ws))
    assert cold <= sched.peak_bytes <= 1.05 * cold + 64 * KIB
    assert ws.nbytes <= sched.details["workspace_bytes"] <= 1.05 * ws.nbytes + 64 * KIB


def test_workspace_stops_growing_as_predicted():
    # best fit may add a buffer on the second call (issue 13 review, D1); from
    # the third on nothing, and plan's figures bound every call
    net = mc.MLP(UNEVEN, activation="tanh", seed=1)
    X, Y = data(np.random.default_rng(0), UNEVEN, 64, "mse", "float64")
    net.loss_and_grad(X, Y, strategy=mc.Segments(2), workspace=mc.Workspace())  # compiled
    sched = mc.plan(net, 64, mc.Segments(2), workspace=True)
    ws = mc.Workspace()
    for _ in range(2):
        before = ws.nbytes
        peak = traced(lambda: net.loss_and_grad(X, Y, strategy=mc.Segments(2), workspace=ws))
        assert before + peak <= sched.peak_bytes
    held = ws.nbytes
    for _ in range(2):
        warm = traced(lambda: net.loss_and_grad(X, Y, strategy=mc.Segments(2), workspace=ws))
        assert ws.nbytes == held and warm <= sched.details["warm_peak_bytes"]
    assert held <= sched.details["workspace_bytes"] <= 1.05 * held + 64 * KIB


def test_budget_bounds_every_call_on_a_workspace():
    net = mc.MLP(UNEVEN, activation="tanh", seed=1)
    X, Y = data(np.random.default_rng(0), UNEVEN, 64, "mse", "float64")
    g = net.zeros_like_grads()
    budget = mc.Budget(mc.plan(net, 64, mc.Revolve(0), out=True, workspace=True).peak_bytes)
    net.loss_and_grad(X, Y, strategy=budget, out=g, workspace=mc.Workspace())  # compiled
    ws = mc.Workspace()
    assert traced(lambda: net.loss_and_grad(X, Y, strategy=budget, out=g, workspace=ws)) <= budget.max_bytes
    before = ws.nbytes
    warm = traced(lambda: net.loss_and_grad(X, Y, strategy=budget, out=g, workspace=ws))
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
    X, Y = data(np.random.default_rng(0), net.sizes, 64, "mse", "float64")
    ws = mc.Workspace()
    net.loss_and_grad(X, Y, workspace=ws)
    held = ws.nbytes
    net.biases[0][0, 0] = np.nan
    for _ in range(3):
        with pytest.raises(ValueError, match=r"biases\[0\] holds NaN"):
            net.loss_and_grad(X, Y, workspace=ws)
    assert ws.nbytes == held


# -- promise 3: NaN and inf through the compiled path -----------------------
@pytest.mark.parametrize("name", ACTS)
def test_compiled_maps_keep_nan_in_every_lane(name):
    fastkernels = pytest.importorskip("mlpckpt.execution._compiled")
    for lane in range(17):  # vector body and scalar remainder
        z = np.linspace(-3, 3, 17).reshape(1, -1)
        z[0, lane] = np.nan
        fastkernels.FORWARD[name](z, np.zeros((1, 1)))
        assert np.isnan(z[0, lane]) and np.isfinite(np.delete(z[0], lane)).all()
        if name == "identity":
            continue
        a = np.abs(np.linspace(-0.9, 0.9, 17)).reshape(1, -1)
        a[0, lane] = np.nan
        da = np.ones_like(a)
        fastkernels.DERIVATIVE[name](a, da)
        assert np.isnan(da[0, lane])


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("which", ["weights", "biases"])
def test_nan_parameter_is_named_on_the_compiled_path(act, which, kernel_setting):
    if kernels._compiled is None:
        pytest.skip("numba not installed")
    mc.set_kernels("numba")
    net = mc.MLP([3, 5, 4, 2], activation=act, seed=1)
    getattr(net, which)[0][1, 0] = np.nan
    X, Y = data(np.random.default_rng(0), net.sizes, 7, "mse", "float64")
    for ws in (None, mc.Workspace()):
        with pytest.raises(ValueError, match=rf"{which}\[0\] holds NaN"):
            net.loss_and_grad(X, Y, workspace=ws)
    with pytest.raises(ValueError, match=rf"{which}\[0\] holds NaN"):
        net.forward(X)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("act", ["identity", "relu", "softplus", "leaky_relu"])
def test_inf_weight_is_named_on_the_compiled_path(act, kernel_setting):
    if kernels._compiled is None:
        pytest.skip("numba not installed")
    mc.set_kernels("numba")
    net = mc.MLP([3, 5, 4, 2], activation=act, seed=1)
    net.weights[0][1, 0] = np.inf
    X, Y = data(np.random.default_rng(0), net.sizes, 7, "mse", "float64")
    with pytest.raises(ValueError, match=r"weights\[0\] holds inf"):
        net.loss_and_grad(X, Y, workspace=mc.Workspace())


# -- promise 4: the kernel setting -------------------------------------------
@pytest.mark.parametrize("bad", [None, 1, "NUMBA", "", b"numba", ["numba"], "numba "])
def test_set_kernels_bad_input(bad, kernel_setting):
    with pytest.raises(ValueError, match=r"^kernels: "):
        mc.set_kernels(bad)
    assert mc.get_kernels()[0] == "auto"


def test_bad_environment_variable_names_it():
    env = dict(os.environ, MLPCKPT_KERNELS="NUMPY")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root
    proc = subprocess.run([sys.executable, "-c", "import mlpckpt"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "ValueError: MLPCKPT_KERNELS: got 'NUMPY'" in proc.stderr


def test_switching_kernels_between_calls_keeps_plans_apart(kernel_setting):
    if kernels._compiled is None:
        pytest.skip("numba not installed")
    net = mc.MLP([6, 40, 40, 3], activation="leaky_relu", seed=0)
    X, Y = data(np.random.default_rng(1), net.sizes, 500, "mse", "float64")
    seen = {}
    for name in ("numba", "numpy", "numba", "numpy"):
        mc.set_kernels(name)
        sched = mc.plan(net, 500, mc.Sqrt(), workspace=True)
        assert sched.details["kernels"] == name
        seen.setdefault(name, sched.peak_bytes)
        assert seen[name] == sched.peak_bytes
        ws = mc.Workspace()
        got = net.loss_and_grad(X, Y, strategy=mc.Sqrt(), workspace=ws)
        assert same(net.loss_and_grad(X, Y), got)
    mc.set_kernels("numpy")
    assert net.loss_and_grad(X, Y.astype(np.float64))[0] == net.loss_and_grad(X, Y, workspace=mc.Workspace())[0]
