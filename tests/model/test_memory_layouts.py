"""The result never depends on memory layout (issue 11, item 2): weights are
built C-contiguous, X and Y canonicalised once per call, so every strategy,
with and without out=, is bitwise equal to the plain call on C-ordered
inputs, for any layout of X and Y, with one BLAS thread and with two; a
weight set by the user that the net cannot use as it is is refused."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlpckpt as mc
from mlpckpt.core import _params as params
from mlpckpt.core._params import INITS
from mlpckpt.testing import assert_bitwise_equal

ROOT = Path(__file__).resolve().parents[2]
LAYOUTS = ("C", "F", "strided", "reversed")


def in_layout(A, kind):
    """An array equal to ``A`` laid out as ``kind``."""
    if kind == "C":
        return np.ascontiguousarray(A)
    if kind == "F":
        return np.asfortranarray(A)
    if A.ndim == 1:
        A2 = A[None]
        return in_layout(A2, kind)[0]
    if kind == "strided":  # every other column of a wider array
        wide = np.full((A.shape[0], 2 * A.shape[1]), 7, dtype=A.dtype)
        wide[:, ::2] = A
        return wide[:, ::2]
    return np.ascontiguousarray(A[::-1, ::-1])[::-1, ::-1]  # negative strides


def test_in_layout_gives_the_layouts():
    A = np.arange(12.0).reshape(3, 4)
    for kind in LAYOUTS:
        B = in_layout(A, kind)
        assert np.array_equal(A, B)
        assert B.flags.c_contiguous == (kind == "C")
    assert in_layout(A, "F").flags.f_contiguous and in_layout(A, "reversed").strides[0] < 0


STRATEGIES = st.one_of(
    st.just(mc.StoreAll()),
    st.just(mc.Sqrt()),
    st.integers(1, 6).map(mc.Segments),
    st.integers(0, 5).map(mc.Revolve),
)


@st.composite
def cases(draw):
    depth = draw(st.integers(1, 12))
    sizes = draw(st.lists(st.integers(1, 9), min_size=depth + 1, max_size=depth + 1))
    loss = draw(st.sampled_from(["mse", "cross_entropy"]))
    return dict(
        sizes=sizes,
        init=draw(st.sampled_from(sorted(INITS))),
        dtype=draw(st.sampled_from(["float64", "float32"])),
        loss=loss,
        batch=draw(st.integers(1, 6)),
        strategy=draw(STRATEGIES),
        out=draw(st.booleans()),
        x_layout=draw(st.sampled_from(LAYOUTS)),
        y_layout=draw(st.sampled_from(LAYOUTS)),
        labels=loss == "cross_entropy" and draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def run_case(c):
    """(reference, result) for one case: the plain call on C-ordered inputs,
    then the case's strategy, out= and layouts."""
    sizes = c["sizes"]
    output = "softmax" if c["loss"] == "cross_entropy" else "identity"
    net = mc.MLP(sizes, activation="tanh", output=output, init=c["init"], dtype=c["dtype"],
                 seed=c["seed"])
    rng = np.random.default_rng(c["seed"])
    X = rng.standard_normal((sizes[0], c["batch"])).astype(c["dtype"])
    if c["loss"] == "cross_entropy":
        labels = rng.integers(0, sizes[-1], size=c["batch"])
        Y = labels if c["labels"] else np.eye(sizes[-1], dtype=c["dtype"])[:, labels]
    else:
        Y = rng.standard_normal((sizes[-1], c["batch"])).astype(c["dtype"])
    ref = net.loss_and_grad(np.ascontiguousarray(X), np.ascontiguousarray(Y), c["loss"])
    out = net.zeros_like_grads() if c["out"] else None
    got = net.loss_and_grad(in_layout(X, c["x_layout"]), in_layout(Y, c["y_layout"]), c["loss"],
                            strategy=c["strategy"], out=out)
    return ref, got


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_layout_strategy_and_out_is_bitwise_the_plain_call(assert_same_result, c):  # given fills c
    ref, got = run_case(c)
    assert_same_result(ref, got, err_msg=repr(c))


@pytest.mark.parametrize("x_layout", LAYOUTS)
def test_fit_does_not_depend_on_the_layout_of_the_data(x_layout):
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((6, 40)), rng.standard_normal((3, 40))
    nets = [mc.MLP([6, 9, 2, 7, 3], init="orthogonal", seed=1) for _ in range(2)]
    nets[0].fit(X, Y, epochs=2, batch_size=8)
    nets[1].fit(in_layout(X, x_layout), in_layout(Y, "F"), epochs=2, batch_size=8,
                strategy=mc.Sqrt())
    assert_bitwise_equal(nets[0].weights, nets[1].weights)
    assert np.array_equal(nets[0].forward(X), nets[1].forward(in_layout(X, x_layout)))


TWO_THREADS = textwrap.dedent(
    """
    import numpy as np, mlpckpt as mc
    from mlpckpt.testing import assert_bitwise_equal
    from test_memory_layouts import in_layout, LAYOUTS
    bad = []
    for seed, sizes in enumerate([[64, 200, 40, 150, 8], [90, 30, 120, 30, 5], [7, 3, 9, 2]]):
        net = mc.MLP(sizes, init="orthogonal", seed=seed)
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((sizes[0], 256))
        Y = rng.standard_normal((sizes[-1], 256))
        ref = net.loss_and_grad(X, Y)
        for strategy in (mc.StoreAll(), mc.Sqrt(), mc.Revolve(1)):
            for layout in LAYOUTS:
                got = net.loss_and_grad(in_layout(X, layout), in_layout(Y, layout),
                                        strategy=strategy, out=net.zeros_like_grads())
                try:
                    assert ref[0] == got[0], "loss"
                    assert_bitwise_equal(ref[1].weights + ref[1].biases, got[1].weights + got[1].biases)
                except AssertionError as error:
                    bad.append((sizes, strategy, layout, str(error)))
    assert not bad, bad
    """
)


@pytest.mark.slow
def test_two_blas_threads():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests" / "model")]))
    proc = subprocess.run([sys.executable, "-c", TWO_THREADS], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


# -- the net's own arrays ----------------------------------------------------


@pytest.mark.parametrize("init", sorted(INITS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_init_weights_are_c_contiguous(init, dtype):
    net = mc.MLP([5, 9, 2, 7, 7, 1, 3], init=init, dtype=dtype, seed=3)  # widen and narrow
    for W in net.weights:
        assert W.flags.c_contiguous and W.dtype == dtype
    g = net.zeros_like_grads()
    assert all(a.flags.c_contiguous and a.dtype == dtype for a in g.weights + g.biases)


def test_zeros_like_grads_is_c_contiguous_for_a_net_of_fortran_arrays():
    net = mc.MLP([3, 5, 2], seed=0)
    net.weights = [np.asfortranarray(W) for W in net.weights]
    g = net.zeros_like_grads()
    assert all(a.flags.c_contiguous for a in g.weights)


BAD_WEIGHTS = [
    ("F", lambda W: np.asfortranarray(W), r"Fortran-ordered float64 array of shape \(2, 5\)"),
    ("strided", lambda W: np.repeat(W, 2, axis=1)[:, ::2], r"non-contiguous float64"),
    ("dtype", lambda W: W.astype(np.float32), r"C-contiguous float32 array of shape \(2, 5\)"),
    ("shape", lambda W: np.zeros((2, 4)), r"C-contiguous float64 array of shape \(2, 4\)"),
    ("list", lambda W: W.tolist(), r"list$"),
]


def call(entry, net, X, Y):
    if entry == "loss_and_grad":
        return net.loss_and_grad(X, Y)
    if entry == "loss_and_grad_out":
        return net.loss_and_grad(X, Y, out=mc.MLP(net.sizes).zeros_like_grads())
    if entry == "fit":
        return net.fit(X, Y, epochs=1, batch_size=2)
    if entry == "fit_fused":
        return net.fit(X, Y, epochs=1, batch_size=2, fuse_update=True, strategy=mc.Sqrt())
    if entry == "fit_lbfgs":
        return net.fit_lbfgs(X, Y, maxiter=2)
    return net.predict(X)


@pytest.mark.parametrize("entry", ["loss_and_grad", "loss_and_grad_out", "fit", "fit_fused",
                                   "fit_lbfgs", "predict"])
@pytest.mark.parametrize("kind", range(len(BAD_WEIGHTS)))
def test_a_weight_the_net_cannot_use_is_refused(entry, kind):
    name, make, pattern = BAD_WEIGHTS[kind]
    net = mc.MLP([3, 5, 2, 4], seed=0)
    X, Y = np.ones((3, 6)), np.ones((4, 6))
    net.weights[1] = make(net.weights[1])
    before = [np.array(w, copy=True) for w in net.weights] + [b.copy() for b in net.biases]
    with pytest.raises(ValueError, match=r"^weights\[1\]: expected a C-contiguous float64 array "
                                         r"of shape \(2, 5\), got .*" + pattern):
        call(entry, net, X, Y)
    after = [np.asarray(w) for w in net.weights] + net.biases
    assert_bitwise_equal(before, after)


@pytest.mark.parametrize("entry", ["loss_and_grad", "fit", "predict"])
def test_a_bias_or_list_the_net_cannot_use_is_refused(entry):
    X, Y = np.ones((3, 6)), np.ones((4, 6))
    net = mc.MLP([3, 5, 2, 4], seed=0)
    net.biases[2] = np.zeros(4)
    with pytest.raises(ValueError, match=r"^biases\[2\]: expected a C-contiguous float64 array "
                                         r"of shape \(4, 1\), got .* shape \(4,\)"):
        call(entry, net, X, Y)
    net = mc.MLP([3, 5, 2, 4], seed=0)
    net.weights = net.weights[:2]
    with pytest.raises(ValueError, match=r"^weights: expected a list of 3 arrays, got 2"):
        call(entry, net, X, Y)


def test_a_c_contiguous_view_as_weight_is_used_as_it_is(assert_same_result):
    # Views of one flat vector are C-contiguous: accepted, and bitwise the same.
    net = mc.MLP([3, 5, 2, 4], seed=0)
    X, Y = np.random.default_rng(0).standard_normal((3, 6)), np.ones((4, 6))
    ref = net.loss_and_grad(X, Y)
    flat = params.flatten(net.weights, net.biases)
    net.weights, net.biases = params.unflatten(flat, net.sizes)
    assert_same_result(ref, net.loss_and_grad(X, Y, out=net.zeros_like_grads()))
