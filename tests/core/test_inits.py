"""mc.Gaussian: weights of variance sigma_w2 / fan_in and biases of variance
sigma_b2 (the mean-field parametrisation), drawn from the seed's Generator,
saved and loaded exactly, refused by name when not finite and positive."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mlpckpt as mc
from mlpckpt.core._inits import Gaussian, check_init, init_name
from mlpckpt.core._params import INITS
from mlpckpt.testing import assert_bitwise_equal


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_draws_are_the_generators_normals_scaled(dtype):
    sizes, sw2, sb2 = [5, 7, 3], 1.7, 0.05
    net = mc.MLP(sizes, init=mc.Gaussian(sigma_w2=sw2, sigma_b2=sb2), dtype=dtype, seed=11)
    rng = np.random.default_rng(11)  # the reference: layer by layer, W then b
    for k in range(len(sizes) - 1):
        W = (rng.standard_normal((sizes[k + 1], sizes[k])) * math.sqrt(sw2 / sizes[k])).astype(dtype)
        b = (rng.standard_normal((sizes[k + 1], 1)) * math.sqrt(sb2)).astype(dtype)
        assert_bitwise_equal([net.weights[k], net.biases[k]], [W, b], err_msg=f"layer {k}")
        assert net.weights[k].flags.c_contiguous and net.weights[k].dtype == np.dtype(dtype)


def test_the_variances_are_the_theorys():
    net = mc.MLP([1000, 1000, 1000], init=mc.Gaussian(2.0, 0.3), seed=0)
    W, b = net.weights[0], net.biases[0]
    assert abs(W.var() * 1000 / 2.0 - 1) < 0.01  # 10^6 samples: the relative s.e. is 0.0014
    assert abs(b.var() / 0.3 - 1) < 0.15 and abs(W.mean()) < 1e-3  # 1000 biases: s.e. 0.045


def test_zero_bias_variance_gives_exact_zeros():
    net = mc.MLP([3, 4, 2], init=mc.Gaussian(1.0), seed=1)
    assert all(np.array_equal(b, np.zeros_like(b)) and not np.signbit(b).any() for b in net.biases)


def test_saved_and_loaded_exactly_and_on_other_backends(tmp_path):
    net = mc.MLP([4, 6, 6, 2], init=mc.Gaussian(1.3, 0.02), seed=3)
    net.save(tmp_path / "g.npz")
    back = mc.load(tmp_path / "g.npz")
    assert back.init == net.init == Gaussian(1.3, 0.02)
    assert_bitwise_equal(net.weights + net.biases, back.weights + back.biases)
    torch = pytest.importorskip("torch")
    tnet = mc.MLP([4, 6, 6, 2], init=mc.Gaussian(1.3, 0.02), seed=3, backend="torch")
    assert all(torch.equal(t, torch.asarray(a)) for t, a in zip(tnet.weights + tnet.biases,
                                                                net.weights + net.biases))


@settings(max_examples=50, deadline=None, derandomize=True)
@given(sw2=st.floats(1e-300, 1e300), sb2=st.one_of(st.just(0.0), st.floats(1e-300, 1e300)))
def test_the_file_string_reads_back_to_the_same_bits(sw2, sb2):
    g = Gaussian(sw2, sb2)
    assert check_init(init_name(g), INITS) == g


@pytest.mark.parametrize("kwargs,name", [
    (dict(sigma_w2=0.0), "sigma_w2"), (dict(sigma_w2=-1.0), "sigma_w2"), (dict(sigma_w2=math.inf), "sigma_w2"),
    (dict(sigma_w2=math.nan), "sigma_w2"), (dict(sigma_w2="1"), "sigma_w2"), (dict(sigma_w2=True), "sigma_w2"),
    (dict(sigma_w2=1.0, sigma_b2=-0.1), "sigma_b2"), (dict(sigma_w2=1.0, sigma_b2=math.nan), "sigma_b2"),
])
def test_bad_variances_are_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected a finite real"):
        Gaussian(**kwargs)


@pytest.mark.parametrize("init", ["gaussian:1", "gaussian:a:b", "gaussian:1:2:3", "gaussian:0:1", 3, None])
def test_bad_init_values_are_refused(init):
    with pytest.raises(ValueError, match=r"init|sigma_w2"):
        mc.MLP([2, 2], init=init)
