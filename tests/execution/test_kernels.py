"""Choosing the elementwise kernels: configuration, fallbacks, and that every
strategy stays bitwise equal and within its predicted memory on each."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.core import _activations as activations
from mlpckpt.execution import _kernels as kernels, _layers as layers
from mlpckpt.testing import assert_bitwise_equal, make_data

ROOT = pathlib.Path(__file__).resolve().parents[2]

AVAILABLE = ["numpy"] + (["numba"] if kernels._compiled is not None else [])
STRATEGIES = [mc.StoreAll(), mc.Sqrt(), mc.Segments(3), mc.Revolve(2), mc.Revolve(0)]


@pytest.fixture(params=AVAILABLE)
def kernel(request):
    previous = kernels.set_kernels(request.param)
    yield request.param
    kernels.set_kernels(previous)


def test_bad_setting_is_a_value_error_naming_kernels():
    with pytest.raises(ValueError, match=r"^kernels: got 'fast'"):
        kernels.set_kernels("fast")
    assert kernels.get_kernels()[0] in kernels.KERNELS


@pytest.mark.slow
@pytest.mark.parametrize("value, expect", [("numpy", "('numpy', 'numpy')"), ("bogus", "MLPCKPT_KERNELS: got 'bogus'")])
def test_environment_variable(value, expect):
    env = dict(os.environ, MLPCKPT_KERNELS=value)
    run = subprocess.run([sys.executable, "-c", "import mlpckpt.execution._kernels as k; print(k.get_kernels())"],
                         env=env, capture_output=True, text=True)
    assert expect in run.stdout + run.stderr


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus", "relu", "leaky_relu"])
def test_strategies_bitwise_equal_and_memory_predicted(kernel, activation, measured_peak):
    net = mc.MLP([12] + [8] * 40 + [3], activation=activation, output="softmax", seed=1)
    X, Y = make_data(net.sizes, 33, "cross_entropy")
    ref_loss, ref = net.loss_and_grad(X, Y, "cross_entropy")
    for strategy in STRATEGIES:
        loss, g = net.loss_and_grad(X, Y, "cross_entropy", strategy=strategy)
        assert loss == ref_loss
        assert_bitwise_equal(ref.weights + ref.biases, g.weights + g.biases)
        sched = mc.plan(net, 33, strategy, "cross_entropy")
        assert sched.details.get("kernels", kernel) == kernel
        peak = measured_peak(lambda: net.loss_and_grad(X, Y, "cross_entropy", strategy=strategy))
        assert peak <= sched.peak_bytes <= 1.05 * peak + 64 * 1024, (strategy, peak, sched.peak_bytes)


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="numba not installed")
def test_kernels_agree_to_rounding():
    net = mc.MLP([10] + [16] * 20 + [2], activation="tanh", seed=4)
    X, Y = make_data(net.sizes, 17, "mse")
    results = {}
    for name in AVAILABLE:
        previous = kernels.set_kernels(name)
        try:
            results[name] = net.loss_and_grad(X, Y, strategy=mc.Sqrt())
        finally:
            kernels.set_kernels(previous)
    (l0, g0), (l1, g1) = results["numpy"], results["numba"]
    assert abs(l0 - l1) <= 1e-14 * abs(l0)
    for a, b in zip(g0.weights + g0.biases, g1.weights + g1.biases):
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(a))


def test_layouts_and_dtypes_outside_the_kernels_fall_back(kernel):
    rng = np.random.default_rng(2)
    W, b, a = rng.standard_normal((5, 4)), rng.standard_normal((5, 1)), rng.standard_normal((4, 6))
    want = np.tanh(W @ a + b)
    for out in (np.empty((5, 6)), np.empty((5, 6), order="F"), np.empty((6, 5)).T):
        layers.layer_forward(W, b, a, "tanh", out)
        np.testing.assert_allclose(out, want, rtol=1e-15, atol=0)
    out32 = np.empty((5, 6), dtype=np.float32)
    layers.layer_forward(W.astype(np.float32), b.astype(np.float32), a.astype(np.float32), "tanh", out32)
    np.testing.assert_allclose(out32, want, rtol=1e-5)
    z = (W @ a + b).astype(complex) + 1e-20j
    np.testing.assert_allclose(activations.forward("tanh", z).real, want, rtol=1e-15)


def test_fortran_ordered_input(kernel):
    net = mc.MLP([6, 9, 9, 2], activation="softplus", seed=3)
    X, Y = make_data(net.sizes, 7, "mse")
    ref_loss, ref = net.loss_and_grad(X, Y)
    loss, g = net.loss_and_grad(np.asfortranarray(X), Y, strategy=mc.Revolve(1))
    assert loss == ref_loss
    assert_bitwise_equal(ref.weights, g.weights)


# -- mc.set_kernels and MLPCKPT_KERNELS (from the review of issue 13) -------
@pytest.mark.parametrize("bad", [None, 1, "NUMBA", "", b"numba", ["numba"], "numba "])
def test_set_kernels_bad_input(bad, kernel_setting):
    with pytest.raises(ValueError, match=r"^kernels: "):
        mc.set_kernels(bad)
    assert mc.get_kernels()[0] == "auto"


def test_bad_environment_variable_names_it():
    env = dict(os.environ, MLPCKPT_KERNELS="NUMPY")
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", "import mlpckpt"], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "ValueError: MLPCKPT_KERNELS: got 'NUMPY'" in proc.stderr


def test_switching_kernels_between_calls_keeps_plans_apart(kernel_setting, assert_same_result):
    if kernels._compiled is None:
        pytest.skip("numba not installed")
    net = mc.MLP([6, 40, 40, 3], activation="leaky_relu", seed=0)
    X, Y = make_data(net.sizes, 500, "mse", seed=1)
    seen = {}
    for name in ("numba", "numpy", "numba", "numpy"):
        mc.set_kernels(name)
        sched = mc.plan(net, 500, mc.Sqrt(), workspace=True)
        assert sched.details["kernels"] == name
        seen.setdefault(name, sched.peak_bytes)
        assert seen[name] == sched.peak_bytes
        ws = mc.Workspace()
        got = net.loss_and_grad(X, Y, strategy=mc.Sqrt(), workspace=ws)
        assert_same_result(net.loss_and_grad(X, Y), got)
    mc.set_kernels("numpy")
    assert net.loss_and_grad(X, Y.astype(np.float64))[0] == net.loss_and_grad(X, Y, workspace=mc.Workspace())[0]
