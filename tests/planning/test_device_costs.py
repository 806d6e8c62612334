"""The device memory model (mlpckpt.planning._device_costs) against what PyTorch allocates:
on the CPU through the profiler's memory events (the only count PyTorch
keeps there), on CUDA through its caching allocator's peak (skipped without
a GPU; benchmarks/gpu_check.py runs it). The contract is NumPy's:
measured <= predicted <= 1.05 * measured + 64 KiB, for every strategy."""

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.planning import _device_costs as devcosts
from mlpckpt.bench.devmeasure import device_peak

torch = pytest.importorskip("torch")

CASES = [  # sizes, activation, output, loss, Y form
    ([4] + [64] * 16 + [3], "tanh", "identity", "mse", "dense"),
    ([4] + [96] * 24 + [10], "relu", "softmax", "cross_entropy", "labels"),
    ([4] + [48] * 12 + [10], "leaky_relu", "softmax", "cross_entropy", "onehot"),
    ([4] + [32] * 40 + [2], "softplus", "sigmoid", "bce", "dense"),
    ([4] + [40, 80] * 6 + [5], "sigmoid", "softmax", "mse", "dense"),
]


def _batch(sizes, batch, form, dtype, device="cpu"):
    rng = np.random.default_rng(0)
    X = torch.asarray(rng.standard_normal((sizes[0], batch)).astype(dtype), device=device)
    if form == "labels":
        return X, torch.asarray(rng.integers(0, sizes[-1], batch), device=device)
    Y = rng.random((sizes[-1], batch)).astype(dtype)
    if form == "onehot":
        Y = np.eye(sizes[-1], dtype=dtype)[:, rng.integers(0, sizes[-1], batch)]
    return X, torch.asarray(np.ascontiguousarray(Y), device=device)  # the layout the contract assumes


def _check(net, X, Y, loss, out):
    batch = X.shape[1]
    kw = dict(loss=loss, out=out, targets="labels" if Y.ndim == 1 else "onehot")
    sqrt_peak = mc.plan(net, batch, mc.Sqrt(), **kw).peak_bytes
    for strategy in (mc.StoreAll(), mc.Segments(3), mc.Sqrt(), mc.Revolve(1), mc.Revolve(3),
                     mc.Budget(sqrt_peak)):
        grads = net.zeros_like_grads() if out else None
        net.loss_and_grad(X, Y, loss, strategy=strategy, out=grads)  # warm: schedule compiled
        measured = device_peak(net.backend, lambda: net.loss_and_grad(X, Y, loss, strategy=strategy, out=grads))
        predicted = mc.plan(net, batch, strategy, **kw).peak_bytes
        assert measured <= predicted <= 1.05 * measured + 64 * 1024, (strategy, measured, predicted)
        if isinstance(strategy, mc.Budget):
            assert measured <= sqrt_peak


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes,activation,output,loss,form", CASES)
def test_torch_cpu_peak_is_predicted(sizes, activation, output, loss, form, dtype):
    net = mc.MLP(sizes, activation=activation, output=output, dtype=dtype, seed=1, backend="torch")
    X, Y = _batch(sizes, 384, form, dtype)
    _check(net, X, Y, loss, out=False)


@pytest.mark.parametrize("sizes,activation,output,loss,form", CASES[:2])
def test_torch_cpu_peak_is_predicted_with_out_buffers(sizes, activation, output, loss, form):
    net = mc.MLP(sizes, activation=activation, output=output, seed=1, backend="torch")
    X, Y = _batch(sizes, 256, form, "float64")
    _check(net, X, Y, loss, out=True)


def test_the_model_is_the_devices_and_rounds_each_block():
    net = mc.MLP([8, 3, 3, 2], backend="torch")
    p = mc.plan(net, 5, mc.StoreAll())
    assert p.peak_bytes % 64 == 0  # every block a multiple of 64 bytes on the CPU
    assert devcosts.array_bytes(1, "torch:cuda") == 512 and devcosts.array_bytes(513, "cupy:cuda") == 1024
    assert devcosts.array_bytes(0, "torch:cuda") == 0
    numpy_peak = mc.plan(net.to("numpy"), 5, mc.StoreAll()).peak_bytes
    assert numpy_peak > p.peak_bytes + 10_000  # NumPy's counts Python objects, the device's do not


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("sizes,activation,output,loss,form", CASES)
def test_torch_cuda_peak_is_predicted(sizes, activation, output, loss, form):
    net = mc.MLP(sizes, activation=activation, output=output, seed=1, backend="torch", device="cuda")
    X, Y = _batch(sizes, 1024, form, "float32", device="cuda")
    _check(net, X, Y, loss, out=False)
