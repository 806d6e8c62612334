"""The compiled elementwise kernels (mlpckpt.execution._compiled): NaN kept
in every lane of the vector body and the scalar remainder, and a non-finite
parameter named on the compiled path, with and without a workspace."""

import numpy as np
import pytest

import mlpckpt as mc
from mlpckpt.execution import _kernels as kernels
from mlpckpt.testing import make_data

ACTS = ["identity", "tanh", "sigmoid", "softplus", "relu", "leaky_relu"]


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
    X, Y = make_data(net.sizes, 7, "mse", seed=0)
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
    X, Y = make_data(net.sizes, 7, "mse", seed=0)
    with pytest.raises(ValueError, match=r"weights\[0\] holds inf"):
        net.loss_and_grad(X, Y, workspace=mc.Workspace())
